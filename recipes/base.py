"""What a recipe is: roles, their training order, and the hooks the shared loop calls.

The loop (sampling, majority voting, filtering, GRPO, checkpoint storage,
evaluation) is the same for every recipe; what differs is declared here.
A recipe subclasses `Recipe`, fills in its roles and hooks, and registers
itself with `@register_recipe("name")`, so adding a fifth recipe is one new
module and one import line in `recipes/__init__.py`.

    recipe = get_recipe("vzero")
    recipe.roles          # ("questioner", "solver"), in training order
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from models.warmstart import SupervisedExample

RECIPES: dict[str, type["Recipe"]] = {}


def register_recipe(name: str):
    def deco(cls: type["Recipe"]) -> type["Recipe"]:
        if name in RECIPES and RECIPES[name] is not cls:
            raise ValueError(f"recipe {name!r} is already registered by {RECIPES[name].__module__}")
        cls.name = name
        RECIPES[name] = cls
        return cls

    return deco


def get_recipe(name: str) -> "Recipe":
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; registered: {sorted(RECIPES)}")
    return RECIPES[name]()


class Recipe(ABC):
    name: ClassVar[str] = "?"
    # Roles in training order within one iteration; every role starts from the
    # previous iteration's checkpoint of that role (iteration 1: the base model).
    roles: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        """Templated examples of this recipe's task-maker formats, for the warm start.

        The warm start teaches the *asking* formats so the base model's first
        generated tasks are well-formed most of the time, not always.
        """
