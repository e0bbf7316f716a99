"""What a recipe is: roles, their training order, and the hooks the shared loop calls.

The loop (`recipes.loop`: sampling, majority voting, filtering, GRPO, checkpoint
storage, evaluation) is the same for every recipe; what differs is declared
here. A recipe subclasses `Recipe`, fills in its roles and hooks, and
registers itself with `@register_recipe("name")`, so adding a fifth recipe is
one new module and one import line in `recipes/__init__.py`.

    recipe = get_recipe("vzero")
    recipe.roles          # ("questioner", "solver"), in training order
    recipe.task_makers    # ("questioner",)
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass
class RoleTraining:
    """A task-maker role's GRPO inputs: dataset rows and TRL-contract reward functions."""

    rows: list[dict]
    reward_funcs: list[Callable]
    reward_weights: list[float] | None = None
    stats: dict = field(default_factory=dict)  # filled by stateful rewards during training (e.g. malformed rate)


class Recipe(ABC):
    name: ClassVar[str] = "?"
    # Roles in training order within one iteration; the last is always "solver".
    # Every role starts from its own previous-iteration checkpoint (iteration 1: the base model).
    roles: ClassVar[tuple[str, ...]] = ()

    @property
    def task_makers(self) -> tuple[str, ...]:
        return tuple(r for r in self.roles if r != "solver")

    @abstractmethod
    def default_config(self, profile: str):
        """A `recipes.loop.LoopConfig`: "paper" (published defaults) or "embedded" (tiny model on CPU)."""

    @abstractmethod
    def role_training(self, role: str, ctx) -> RoleTraining:
        """Dataset and rewards for training task-maker `role` in iteration `ctx` (rewards may call other roles)."""

    @abstractmethod
    def propose_tasks(self, ctx, makers: dict) -> list:
        """Tasks from this iteration's trained task makers: `ProposedTask` or `MalformedTask` items."""

    def keep(self, cfg) -> Callable[[dict], str] | None:
        """The keep filter on a labeled task row; None means the consistency band [band_low, band_high]."""
        return None

    def task_set_metadata(self, df, ctx) -> dict:
        """Extra task-set metadata for the asset page (Dagster-free): numbers, or markdown strings.

        Called after the task set is labeled; the default adds nothing.
        """
        return {}

    @abstractmethod
    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        """Templated examples of this recipe's task-maker formats, for the warm start.

        The warm start teaches the *asking* formats so the base model's first
        generated tasks are well-formed most of the time, not always.
        """
