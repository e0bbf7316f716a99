"""The values that pass between a recipe and the shared loop: proposed tasks, dropped rows, role training inputs.

A recipe's task makers produce `ProposedTask`s (a 4-option question about
one image) or `MalformedTask`s (output that did not parse, or whose image
could not be made: a dropped row with its reason, never silently lost). For
each task-maker role a recipe hands the loop a `RoleTraining`: GRPO rows and
TRL-contract reward functions. Task-set rows have the columns in
`TASK_COLUMNS`; a recipe may add its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The columns every task-set row has (the GX gate checks them); `meta` is JSON of the recipe's own fields.
TASK_COLUMNS = ["task_id", "iteration", "image_id", "question", "options", "answers", "majority", "c", "kept", "reason"]
# Reasons the core loop itself gives; a recipe declares its own (`Recipe.drop_reasons`) and its keep rule's.
CORE_REASONS = ("kept", "malformed", "duplicate", "no_majority")


@dataclass
class ProposedTask:
    """A well-formed task from the task makers: a 4-option question about one image."""

    image_id: str
    question: str
    options: list[str]
    meta: dict = field(default_factory=dict)  # recipe-specific (e.g. V-Zero's fast answer)


@dataclass
class MalformedTask:
    """Task-maker output that did not parse (or whose image could not be made): a dropped row with its reason.

    `kind` becomes the row's `reason` ("malformed", or one of the recipe's declared drop reasons, e.g.
    MM-Zero's "render_failed"); `reason` goes to its `detail`. `image_id` is "" when there is no image at all.
    """

    image_id: str
    raw: str
    reason: str
    kind: str = "malformed"
    meta: dict = field(default_factory=dict)  # what is known anyway (e.g. the Proposer text of an unrendered program)


@dataclass
class RoleTraining:
    """A role's GRPO inputs: dataset rows and TRL-contract reward functions."""

    rows: list[dict]
    reward_funcs: list[Callable]
    reward_weights: list[float] | None = None
    stats: dict = field(default_factory=dict)  # filled by stateful rewards during training (e.g. malformed rate)
    # Non-empty: the role does not train this iteration (e.g. Vision-Zero's inactive Iterative-SPO phase);
    # the loop publishes the parent's weights unchanged as this iteration's checkpoint, 0 steps, with this reason.
    skip_reason: str = ""
    # Recipe state stored in the checkpoint card under "recipe_state" (what the next iteration reads back).
    metadata: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The reward functions' running statistics (those that keep any), merged."""
        out = {"skipped": self.skip_reason} if self.skip_reason else {}
        for f in self.reward_funcs:
            if hasattr(f, "summary"):
                out.update(f.summary())
        return out
