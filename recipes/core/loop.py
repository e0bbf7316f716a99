"""The shared self-evolution loop, written once and naming no recipe.

The recipe object (`recipes.core.recipe.Recipe`) declares what differs: its
roles, the task makers' datasets and rewards, how tasks are proposed, its
keep rule and its drop reasons. Everything else is here and identical for
every recipe:

1. each task-maker role trains with GRPO from its previous checkpoint
   (`train_task_maker`);
2. the task makers propose tasks; the previous Solver samples m answers per
   task; the majority vote gives the pseudo-label and c; the recipe's keep
   rule decides which tasks train the Solver (`label_proposals`; every
   dropped task keeps its reason);
3. the Solver trains with GRPO on the kept tasks, 0.9 * accuracy against the
   pseudo-label + 0.1 * format (`train_solver`); with `open_twin_share` a
   share of them is also asked without its options, the majority option's
   text as the label (`open_twin`), so training on 4-option questions does
   not erode the open answer form;
4. evaluation on the procedural held-out set (the assets' `benchmark_scores`).

Each step is a plain function of an `IterationContext`, so the Dagster assets
stay thin and a notebook or `accelerate launch` script can call the same code.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from models.formats import LETTERS, normalize_answer, solver_prompt
from models.generation import InferenceEngine, build_messages
from models.grpo import GRPOResult, skip_training, train_grpo
from recipes.core.context import IterationContext
from recipes.core.keep import KeepRule
from recipes.core.rewards import choice_format, solver_accuracy
from recipes.core.types import CORE_REASONS, MalformedTask, ProposedTask, RoleTraining
from recipes.core.voting import solver_request, vote


def _question_key(image_id: str, question: str, options: Sequence[str]) -> str:
    return f"{image_id}|{' '.join(question.lower().split())}|{'|'.join(o.lower() for o in options)}"


def label_tasks(ctx: IterationContext, proposals: Sequence[ProposedTask | MalformedTask], solver: InferenceEngine,
                rule: KeepRule, image: Callable[[str], Image.Image] | None = None) -> pd.DataFrame:
    """Majority-vote pseudo-labels and the keep decision for every proposal; one row each, nothing dropped silently.

    `image(id)` reads a proposal's image (default: the iteration's images); the pseudo-label audit passes its own.
    """
    image = image or ctx.image
    cfg = ctx.config
    rows: list[dict] = []
    seen: set[str] = set()
    well_formed: list[dict] = []
    for i, p in enumerate(proposals):
        base = {"task_id": f"{ctx.partition}-{i:05d}", "iteration": ctx.iteration, "image_id": p.image_id}
        if isinstance(p, MalformedTask):
            rows.append({**base, "question": "", "options": [], "answers": [], "majority": None, "c": 0.0,
                         "kept": False, "reason": p.kind, "detail": p.reason, "raw": p.raw, "meta": dict(p.meta)})
            continue
        row = {**base, "question": p.question, "options": list(p.options), "answers": [], "majority": None,
               "c": 0.0, "kept": False, "reason": "", "detail": "", "raw": p.meta.get("raw", ""),
               "meta": {k: v for k, v in p.meta.items() if k != "raw"}}
        key = _question_key(p.image_id, p.question, p.options)
        if key in seen:
            row["reason"] = "duplicate"
        else:
            seen.add(key)
            well_formed.append(row)
        rows.append(row)
    requests = [solver_request(image(r["image_id"]), r["question"], r["options"]) for r in well_formed]
    votes = vote(solver, requests, cfg.m, max_new_tokens=cfg.vote_max_new_tokens, seed=cfg.seed + ctx.iteration)
    labeled = []
    for r, v in zip(well_formed, votes):
        r["answers"], r["majority"], r["c"] = list(v.answers), v.label, v.c
        if v.label is None:
            r["reason"] = "no_majority"
        else:
            labeled.append(r)
    for r, reason in zip(labeled, rule.decide(labeled)):
        r["reason"] = reason
    for r in rows:
        r["kept"] = r["reason"] == "kept"
    df = pd.DataFrame(rows)
    # recipe-specific fields vary by recipe (and are empty for malformed rows): one JSON column keeps the schema fixed
    df["meta"] = df["meta"].map(lambda d: json.dumps(d, sort_keys=True, default=str))
    return df


def label_proposals(ctx: IterationContext, maker_dirs: dict[str, Path]) -> pd.DataFrame:
    """Proposals from this iteration's task makers, labeled by the previous Solver's majority vote."""
    makers = {role: ctx.engine(d) for role, d in maker_dirs.items()}
    proposals = ctx.recipe.propose_tasks(ctx, makers)
    return label_tasks(ctx, proposals, ctx.engine(ctx.parents["solver"]), ctx.recipe.keep_rule(ctx.config))


def open_twin(question: str, options: Sequence[str], label: str | None) -> tuple[str, str] | None:
    """The open form of a labeled 4-option task: (Solver prompt without the options, the label's option text).

    The label is still the majority of the 4-option vote, never a true answer; None when it is not a letter
    or its option text is empty.

        >>> from models.formats import kind_of_prompt
        >>> prompt, label = open_twin("What color is the circle?", ["red", "blue", "green", "pink"], "B")
        >>> prompt.splitlines()[0], kind_of_prompt(prompt), label
        ('What color is the circle?', 'open', 'blue')
    """
    if label not in LETTERS or len(options) != len(LETTERS):
        return None
    text = normalize_answer(str(options[LETTERS.index(label)]))
    return (solver_prompt(question, None, "open"), text) if text else None


def takes_twin(task_id: str, share: float, seed: int) -> bool:
    """Whether a kept task also trains in the open form: a fixed draw per task and seed, not per run."""
    return share > 0 and zlib.crc32(f"{task_id}|{seed}".encode()) / 2**32 < share


def solver_rows(ctx: IterationContext, task_set: pd.DataFrame) -> list[dict]:
    """Kept tasks as a GRPO dataset: conversational prompt, image, pseudo-label (never a true label).

    With `open_twin_share` > 0 that share of the kept tasks is also asked openly (`open_twin`), as a row of its
    own with `task_id` + "-open"; the rows keep the task set's order, each twin after its task.
    """
    rows = []
    share = ctx.config.open_twin_share
    for _, t in task_set[task_set["kept"]].iterrows():
        image = ctx.image(t["image_id"])
        req = solver_request(image, t["question"], list(t["options"]))
        rows.append({"prompt": build_messages(req.prompt, 1), "image": req.images[0], "pseudo_label": t["majority"],
                     "task_id": t["task_id"]})
        twin = open_twin(t["question"], list(t["options"]), t["majority"]) if takes_twin(t["task_id"], share, ctx.config.seed) else None
        if twin:
            rows.append({"prompt": build_messages(twin[0], 1), "image": image, "pseudo_label": twin[1],
                         "task_id": f"{t['task_id']}-open"})
    return rows


def default_solver_training(ctx: IterationContext, task_set: pd.DataFrame) -> RoleTraining:
    """Kept 4-option tasks, rewarded 0.9 * accuracy against the pseudo-label + 0.1 * format."""
    return RoleTraining(rows=solver_rows(ctx, task_set), reward_funcs=[solver_accuracy, choice_format], reward_weights=[0.9, 0.1])


def train_role(ctx: IterationContext, role: str, training: RoleTraining, out_dir: Path, callbacks=()) -> GRPOResult:
    """GRPO for one role from its parent, or, when the recipe skips the role this iteration, the parent unchanged."""
    metadata = {"recipe": ctx.recipe.name, "role": role, "partition": ctx.partition, "loop_config": ctx.config.to_dict()}
    if training.metadata:
        metadata["recipe_state"] = training.metadata
    hp = ctx.config.role_hp(role)
    if training.skip_reason:
        return skip_training(ctx.parents[role], out_dir, hp, training.skip_reason, metadata)
    return train_grpo(ctx.parents[role], out_dir, training.rows, training.reward_funcs, hp,
                      reward_weights=training.reward_weights, device=ctx.device, metadata=metadata, callbacks=callbacks)


def train_task_maker(ctx: IterationContext, role: str, out_dir: Path, callbacks=()) -> tuple[GRPOResult, dict]:
    """GRPO for one task-maker role; returns the result and the reward's running statistics."""
    training = ctx.recipe.role_training(role, ctx)
    return train_role(ctx, role, training, out_dir, callbacks), training.summary()


def train_solver(ctx: IterationContext, task_set: pd.DataFrame, out_dir: Path, callbacks=()) -> GRPOResult:
    """Solver GRPO on the recipe's Solver dataset (default: kept tasks against their pseudo-labels)."""
    return train_role(ctx, "solver", ctx.recipe.solver_training(ctx, task_set), out_dir, callbacks)


def task_set_stats(df: pd.DataFrame, reasons: Sequence[str], rule: KeepRule) -> dict:
    """Counts a team wants at a glance: generated, one count per declared reason, kept, mean c (labeled and kept)."""
    counts = df["reason"].value_counts().to_dict() if len(df) else {}
    decided = df[df["reason"].isin(["kept", *rule.drop_reasons()])] if len(df) else df
    kept = df[df["kept"]] if len(df) else df
    out: dict = {"generated": int(len(df))}
    for reason in dict.fromkeys([*CORE_REASONS[1:], *reasons]):
        if reason != "kept":
            out[reason] = int(counts.get(reason, 0))
    undeclared = sorted(set(counts) - set(reasons) - set(CORE_REASONS))
    if undeclared:  # the GX gate fails on these too; say it here where the counts are read
        out["undeclared_reasons"] = ", ".join(undeclared)
    out.update({
        "kept": int(len(kept)),
        # "c" for the consistency-band recipes; a recipe that keeps by another column says which
        "keep_column": rule.column,
        "mean_c": float(decided[rule.column].mean()) if len(decided) else 0.0,
        "mean_c_kept": float(kept[rule.column].mean()) if len(kept) else 0.0,
    })
    return out
