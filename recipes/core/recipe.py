"""What a recipe is: everything it declares about itself, and the hooks the shared loop calls.

The loop (`recipes.core.loop`) is the same for every recipe; what differs is
declared on a `Recipe` subclass in the recipe's own package, registered with
`@register_recipe("name")`:

- `roles`, in training order (task makers first, the Solver last), and the
  foundation assets it `requires` beyond the base model and the pool;
- `config_class` (a typed `LoopConfig` subclass) and `profiles` (plain data);
- `keep_rule(cfg)`: which labeled tasks train the Solver (the gate checks it);
- `drop_reasons`: the row reasons it gives beyond the core's and its rule's;
- `generated_sources`: the pool sources of images its iterations generate
  (they are stored with the iteration, never in the foundation pool);
- `warm_start_formats()`: the task-maker formats the base model must learn;
- hooks: `role_training`, `propose_tasks` (or `build_task_set`),
  `solver_training`, `validate_task_set`, `task_set_metadata`.

A new recipe is one package plus its import line in `recipes/__init__.py`;
its assets, job, checks and sensor are generated.

    recipe = get_recipe("vzero")
    recipe.roles          # ("questioner", "solver"), in training order
    recipe.task_makers    # ("questioner",)
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd

from models.warmstart import SupervisedExample
from recipes.core import loop, validation
from recipes.core.config import LoopConfig
from recipes.core.context import IterationContext
from recipes.core.keep import KeepRule
from recipes.core.types import CORE_REASONS, RoleTraining

FormatBuilder = Callable[[Sequence, random.Random], list[SupervisedExample]]


class Recipe(ABC):
    name: ClassVar[str] = "?"
    # Roles in training order within one iteration; the last is always "solver".
    # Every role starts from its own previous-iteration checkpoint (iteration 1: the base model).
    roles: ClassVar[tuple[str, ...]] = ()
    # Foundation assets this recipe reads beyond base_model and image_pool (e.g. Active-Zero's "embedder").
    requires: ClassVar[tuple[str, ...]] = ()
    config_class: ClassVar[type[LoopConfig]] = LoopConfig
    profiles: ClassVar[dict[str, dict]] = {}
    # Row reasons this recipe gives beyond the core's ("kept", "malformed", "duplicate", "no_majority") and its rule's.
    drop_reasons: ClassVar[tuple[str, ...]] = ()
    # Sources of the images its iterations generate (stored with the iteration's curriculum, not in the pool).
    generated_sources: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    @property
    def task_makers(self) -> tuple[str, ...]:
        return tuple(r for r in self.roles if r != "solver")

    # ---- declarations with defaults -------------------------------------------------------------------------

    def default_config(self, profile: str) -> LoopConfig:
        return self.config_class.from_profile(self.profiles, profile)

    def config_from_dict(self, data: dict) -> LoopConfig:
        return self.config_class.from_dict(data)

    def keep_rule(self, cfg: LoopConfig) -> KeepRule:
        """Default: the consistency band [band_low, band_high] on c."""
        return KeepRule.band(cfg.band_low, cfg.band_high)

    def reasons(self, cfg: LoopConfig) -> tuple[str, ...]:
        """Every reason a task-set row of this recipe may carry (what the gate accepts)."""
        return tuple(dict.fromkeys([*CORE_REASONS, *self.keep_rule(cfg).drop_reasons(), *self.drop_reasons]))

    def warm_start_formats(self) -> dict[str, FormatBuilder]:
        """{format name: example builder}: the task-maker formats the warm start teaches for this recipe.

        Formats are named so that recipes sharing one (the Questioner's) teach it once in a joint base.
        """
        return {}

    # ---- hooks ----------------------------------------------------------------------------------------------

    @abstractmethod
    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        """Dataset and rewards for training task-maker `role` in iteration `ctx` (rewards may call other roles)."""

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        """Tasks from this iteration's trained task makers: `ProposedTask` or `MalformedTask` items."""
        raise NotImplementedError(f"{self.name} builds its task set in build_task_set, not from proposals")

    def build_task_set(self, ctx: IterationContext, maker_dirs: dict[str, Path]) -> pd.DataFrame:
        """The iteration's task set; default: `propose_tasks`, then the previous Solver's majority vote and the keep rule."""
        return loop.label_proposals(ctx, maker_dirs)

    def solver_training(self, ctx: IterationContext, task_set: pd.DataFrame) -> RoleTraining:
        """The Solver's GRPO dataset and rewards; default: kept tasks, 0.9 * accuracy vs pseudo-label + 0.1 * format."""
        return loop.default_solver_training(ctx, task_set)

    def validate_task_set(self, df: pd.DataFrame, cfg: LoopConfig, resolvable: Callable[[str], bool]) -> validation.ValidationReport:
        """The blocking great-expectations gate on the task set: the declared rule and reasons."""
        return validation.validate_task_set(df, self.keep_rule(cfg), resolvable, self.reasons(cfg))

    def task_set_metadata(self, df: pd.DataFrame, ctx: IterationContext) -> dict:
        """Extra, recipe-specific metadata of an iteration's task set (e.g. what a Searcher retrieved, game transcripts).

        Plain values only (no dagster here): numbers, markdown strings, or JSON-able dicts/lists. Default: none.
        """
        return {}
