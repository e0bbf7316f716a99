"""zeroforge.recipes: the self-evolution recipes as packages over one core loop.

`recipes.core` holds what every recipe shares (the loop, the vote, the gate,
the warm start) and names no recipe; each recipe is a package that declares
everything about itself (roles, typed config and profiles, keep rule, drop
reasons, generated image sources, warm-start formats, rewards, report) and
registers itself with `@register_recipe`. A new recipe is one package plus its
import line below; its Dagster assets, job, checks and sensor are generated.
Plain library code: no dagster imports.
"""

from recipes import activezero, mmzero, visionzero, vzero  # noqa: F401,E402  (each registers itself)
from recipes.core.registry import RECIPES, get_recipe, recipe_names, register_recipe  # noqa: F401
