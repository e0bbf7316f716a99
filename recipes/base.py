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
    # Non-empty: the role does not train this iteration (e.g. Vision-Zero's inactive Iterative-SPO phase);
    # the loop publishes the parent's weights unchanged as this iteration's checkpoint, 0 steps, with this reason.
    skip_reason: str = ""
    # Recipe state stored in the checkpoint card under "recipe_state" (what the next iteration reads back).
    metadata: dict = field(default_factory=dict)


class Recipe(ABC):
    name: ClassVar[str] = "?"
    # Roles in training order within one iteration; the last is always "solver".
    # Every role starts from its own previous-iteration checkpoint (iteration 1: the base model).
    roles: ClassVar[tuple[str, ...]] = ()
    # Foundation assets this recipe reads beyond base_model and image_pool (e.g. Active-Zero's "embedder").
    requires: ClassVar[tuple[str, ...]] = ()

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

    # ---- optional hooks; the defaults are the shared loop's behaviour (V-Zero uses them all) ----

    def build_task_set(self, ctx, maker_dirs: dict):
        """The iteration's task set as a DataFrame; default: `propose_tasks`, then the previous Solver's majority vote."""
        from recipes.loop import label_proposals

        return label_proposals(self, ctx, maker_dirs)

    def solver_training(self, ctx, task_set) -> RoleTraining:
        """The Solver's GRPO dataset and rewards; default: kept 4-option tasks, 0.9 * accuracy vs pseudo-label + 0.1 * format."""
        from recipes.loop import solver_rows
        from recipes.rewards import choice_format, solver_accuracy

        return RoleTraining(rows=solver_rows(ctx, task_set), reward_funcs=[solver_accuracy, choice_format], reward_weights=[0.9, 0.1])

    def validate_task_set(self, df, cfg, resolvable: Callable[[str], bool]):
        """The blocking great-expectations gate on the task set (a `recipes.validation.ValidationReport`)."""
        from recipes.validation import validate_task_set

        return validate_task_set(df, (cfg.band_low, cfg.band_high), resolvable)

    def task_set_metadata(self, df, ctx) -> dict:
        """Extra, recipe-specific metadata of an iteration's task set (e.g. what a Searcher retrieved, game transcripts).

        Plain values only (no dagster here): numbers, markdown strings, or JSON-able dicts/lists. Default: none.
        """
        return {}

    @abstractmethod
    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        """Templated examples of this recipe's task-maker formats, for the warm start.

        The warm start teaches the *asking* formats so the base model's first
        generated tasks are well-formed most of the time, not always.
        """
