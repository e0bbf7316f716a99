"""zeroforge.recipes: the self-evolution recipes as plug-ins over one loop.

A recipe declares its roles, their training order, each role's prompt, parser
and reward, and how its task set is built (`recipes.base`). The shared loop
(sample -> pseudo-label -> filter -> GRPO -> evaluate) is written once and
lives outside any recipe. Importing this package registers the built-in
recipes; a new recipe is one module plus its `@register_recipe` line here.
Plain library code: no dagster imports.
"""

from recipes.base import RECIPES, Recipe, get_recipe, register_recipe  # noqa: F401
from recipes import vzero  # noqa: F401  (registers "vzero")
from recipes import activezero  # noqa: F401  (registers "activezero" and "activezero_passive")
from recipes import visionzero  # noqa: F401  (registers "visionzero")
from recipes import mmzero  # noqa: F401  (registers "mmzero")
