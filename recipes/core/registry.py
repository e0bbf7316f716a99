"""The recipe registry: a recipe is a package that registers one class under a name.

`@register_recipe("name")` on a `Recipe` subclass is the only registration a
new recipe needs (plus importing its package, see `recipes/__init__.py`); the
Dagster assets, jobs, checks and sensors are generated from what the registry
holds, and the shared loop receives the recipe *object*, never a name.

    @register_recipe("myrecipe")
    class MyRecipe(Recipe): ...

    get_recipe("myrecipe").roles
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry only stores classes; importing Recipe here would be a cycle
    from recipes.core.recipe import Recipe

RECIPES: dict[str, type[Recipe]] = {}


def register_recipe(name: str):
    """Class decorator: register a `Recipe` subclass under `name` (a Dagster-safe identifier)."""
    if not name.isidentifier():
        raise ValueError(f"recipe names become Dagster asset prefixes and must be identifiers, got {name!r}")

    def deco(cls: type[Recipe]) -> type[Recipe]:
        if name in RECIPES and RECIPES[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"recipe {name!r} is already registered by {RECIPES[name].__module__}")
        cls.name = name
        RECIPES[name] = cls
        return cls

    return deco


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; registered: {sorted(RECIPES)}")
    return RECIPES[name]()


def recipe_names() -> tuple[str, ...]:
    """Registered names, sorted."""
    return tuple(sorted(RECIPES))
