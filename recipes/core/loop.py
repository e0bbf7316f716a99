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
   pseudo-label + 0.1 * format (`train_solver`);
4. evaluation on the procedural held-out set (the assets' `benchmark_scores`).

Each step is a plain function of an `IterationContext`, so the Dagster assets
stay thin and a notebook or `accelerate launch` script can call the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

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


def solver_rows(ctx: IterationContext, task_set: pd.DataFrame) -> list[dict]:
    """Kept tasks as a GRPO dataset: conversational prompt, image, pseudo-label (never a true label)."""
    rows = []
    for _, t in task_set[task_set["kept"]].iterrows():
        req = solver_request(ctx.image(t["image_id"]), t["question"], list(t["options"]))
        rows.append({"prompt": build_messages(req.prompt, 1), "image": req.images[0], "pseudo_label": t["majority"],
                     "task_id": t["task_id"]})
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
