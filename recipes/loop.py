"""The shared self-evolution loop, written once: train task makers, build the task set, train the Solver.

A recipe (`recipes.base.Recipe`) declares what differs: its roles, the
task makers' datasets and rewards, how tasks are proposed, and optionally its
own keep-filter. Everything else is here and identical for every recipe:

1. each task-maker role trains with GRPO from its previous checkpoint;
2. the task makers propose tasks; the previous Solver samples m answers per
   task; majority vote gives the pseudo-label and c; the band filter keeps
   frontier tasks (every dropped task keeps its reason);
3. the Solver trains with GRPO on the kept tasks (0.9 accuracy + 0.1 format);
4. evaluation on the procedural held-out set (and configured benchmarks).

Each step is a plain function of an `IterationContext`, so the Dagster assets
stay thin and a notebook or `accelerate launch` script can call the same code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from models.generation import GenerationRequest, InferenceEngine, build_messages
from models.grpo import GRPOHyperParams, GRPOResult, publish_unchanged, train_grpo
from recipes.voting import band_reason, majority_vote, sample_choices


@dataclass
class LoopConfig:
    """Hyperparameters of one iteration; the papers' defaults, with `embedded()` for the tiny model."""

    m: int = 10  # Solver samples per question for the majority vote (temperature 1.0)
    band_low: float = 0.3
    band_high: float = 0.8
    images_per_iteration: int = 256  # images the task makers see when building the task set
    task_maker_images: int = 128  # images (or prompts) the task makers train on
    eval_images: int = 150  # procedural held-out images for Solver evaluation
    vote_max_new_tokens: int = 16
    task_max_new_tokens: int = 256
    task_temperature: float = 1.0  # task makers' sampling temperature when building the task set (papers: 1.0)
    engine_batch_size: int = 32
    seed: int = 0
    solver: GRPOHyperParams = field(default_factory=lambda: GRPOHyperParams(num_generations=5, steps=20, max_completion_length=64))
    task_makers: dict[str, GRPOHyperParams] = field(default_factory=dict)
    recipe_options: dict = field(default_factory=dict)  # recipe-specific knobs (JSON), frozen with the rest

    def role_hp(self, role: str) -> GRPOHyperParams:
        if role == "solver":
            return self.solver
        return self.task_makers.setdefault(role, GRPOHyperParams(num_generations=4, steps=10))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProposedTask:
    """A well-formed task from the task makers: a 4-option question about one pool image."""

    image_id: str
    question: str
    options: list[str]
    meta: dict = field(default_factory=dict)  # recipe-specific (e.g. V-Zero's fast answer)


@dataclass
class MalformedTask:
    """Task-maker output that did not parse (or whose image could not be made): a dropped row with its reason.

    `kind` becomes the row's `reason` ("malformed"; MM-Zero also uses "render_failed");
    `reason` goes to its `detail`. `image_id` is "" when there is no image at all.
    """

    image_id: str
    raw: str
    reason: str
    kind: str = "malformed"
    meta: dict = field(default_factory=dict)  # what is known anyway (e.g. the Proposer text of an unrendered program)


@dataclass
class IterationContext:
    """What one iteration's steps need: where its parents are, where the pool is, how to run models."""

    recipe: str
    iteration: int
    partition: str
    config: LoopConfig
    parents: dict[str, Path]  # role -> checkpoint this iteration starts from
    pool: object  # retrieval.pool.ImagePool
    device: str = "cpu"
    engine_factory: Callable[[Path], InferenceEngine] | None = None
    # this iteration's complete task-maker checkpoints so far (a later role may use an earlier one's output)
    trained: dict[str, Path] = field(default_factory=dict)

    def engine(self, model_dir: Path) -> InferenceEngine:
        return (self.engine_factory or default_engine_factory(self.device, self.config.engine_batch_size))(model_dir)

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.recipe}:{self.iteration}:{salt}:{self.config.seed}")

    def sample_image_ids(self, n: int, salt: str) -> list[str]:
        """n pool images to ask about; images a recipe generated itself (e.g. MM-Zero renders) are left out,
        so a recipe's draw does not depend on which other recipes ran on the same pool."""
        ids = sorted(i for i, s in zip(*pool_ids_and_sources(self.pool)) if s not in GENERATED_SOURCES)
        if not ids:
            raise ValueError("the image pool is empty: materialize image_pool first")
        return self.rng(salt).sample(ids, min(n, len(ids)))


# Pool sources whose images a recipe generated in an iteration (they belong to that iteration's curriculum).
GENERATED_SOURCES = frozenset({"mmzero-render"})


def pool_ids_and_sources(pool) -> tuple[list[str], list[str]]:
    if pool.count() == 0:
        return [], []
    t = pool.table().search().select(["id", "source"]).limit(None).to_arrow()
    return t.column("id").to_pylist(), t.column("source").to_pylist()


def default_engine_factory(device: str, batch_size: int) -> Callable[[Path], InferenceEngine]:
    """vLLM on CUDA when it is installed, else batched transformers generation."""

    def make(model_dir: Path) -> InferenceEngine:
        if device.startswith("cuda"):
            from models.vllm_engine import VLLMEngine, vllm_available

            if vllm_available():
                return VLLMEngine(str(model_dir))
        from models.generation import TransformersEngine
        from models.loading import load_vlm

        model, processor = load_vlm(model_dir, device=device)
        return TransformersEngine(model, processor, batch_size=batch_size)

    return make


def solver_request(pool, task: dict) -> GenerationRequest:
    from models.formats import solver_prompt

    return GenerationRequest(solver_prompt(task["question"], list(task["options"])), [pool.get_image(task["image_id"])])


def _question_key(image_id: str, question: str, options: Sequence[str]) -> str:
    return f"{image_id}|{' '.join(question.lower().split())}|{'|'.join(o.lower() for o in options)}"


def label_tasks(
    ctx: IterationContext,
    proposals: Sequence[ProposedTask | MalformedTask],
    solver: InferenceEngine,
    keep: Callable[[dict], str] | None = None,
) -> pd.DataFrame:
    """Majority-vote pseudo-labels and the keep decision for every proposal; one row each, nothing dropped silently."""
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
    if well_formed:
        requests = [solver_request(ctx.pool, r) for r in well_formed]
        _, letters = sample_choices(solver, requests, cfg.m, max_new_tokens=cfg.vote_max_new_tokens, seed=cfg.seed + ctx.iteration)
        for r, answers in zip(well_formed, letters):
            label, c = majority_vote(answers)
            r["answers"], r["majority"], r["c"] = answers, label, c
            r["reason"] = "no_majority" if label is None else (keep or default_keep(cfg))(r)
            r["kept"] = r["reason"] == "kept"
    df = pd.DataFrame(rows)
    # recipe-specific fields vary by recipe (and are empty for malformed rows): one JSON column keeps the schema fixed
    df["meta"] = df["meta"].map(lambda d: json.dumps(d, sort_keys=True, default=str))
    return df


def default_keep(cfg: LoopConfig) -> Callable[[dict], str]:
    return lambda row: band_reason(row["c"], cfg.band_low, cfg.band_high)


def solver_rows(ctx: IterationContext, task_set: pd.DataFrame) -> list[dict]:
    """Kept tasks as a GRPO dataset: conversational prompt, image, pseudo-label (never a true label)."""
    kept = task_set[task_set["kept"]]
    rows = []
    for _, t in kept.iterrows():
        req = solver_request(ctx.pool, t)
        rows.append({"prompt": build_messages(req.prompt, 1), "image": req.images[0], "pseudo_label": t["majority"],
                     "task_id": t["task_id"]})
    return rows


def _train_role(ctx: IterationContext, role: str, training, out_dir: Path, callbacks=()) -> GRPOResult:
    """GRPO for one role from its parent, or, when the recipe skips the role this iteration, the parent unchanged."""
    metadata = {"recipe": ctx.recipe, "role": role, "partition": ctx.partition, "loop_config": ctx.config.to_dict()}
    if training.metadata:
        metadata["recipe_state"] = training.metadata
    if training.skip_reason:
        return publish_unchanged(ctx.parents[role], out_dir, ctx.config.role_hp(role), training.skip_reason, metadata)
    return train_grpo(
        ctx.parents[role], out_dir, training.rows, training.reward_funcs, ctx.config.role_hp(role),
        reward_weights=training.reward_weights, device=ctx.device, metadata=metadata, callbacks=callbacks,
    )


def train_solver(ctx: IterationContext, task_set: pd.DataFrame, out_dir: Path, callbacks=()) -> GRPOResult:
    """Solver GRPO on the recipe's Solver dataset (default: kept tasks, 0.9 * accuracy vs pseudo-label + 0.1 * format)."""
    from recipes.base import get_recipe

    return _train_role(ctx, "solver", get_recipe(ctx.recipe).solver_training(ctx, task_set), out_dir, callbacks)


def task_set_stats(df: pd.DataFrame) -> dict:
    """Counts a team wants at a glance: generated / malformed / duplicates / kept and dropped by band, mean c."""
    reasons = df["reason"].value_counts().to_dict()
    labeled = df[df["reason"].isin(["kept", "too_easy", "too_hard"])]
    kept = df[df["kept"]]
    return {
        "generated": int(len(df)),
        "malformed": int(reasons.get("malformed", 0)),
        "render_failed": int(reasons.get("render_failed", 0)),
        "duplicates": int(reasons.get("duplicate", 0)),
        "no_majority": int(reasons.get("no_majority", 0)),
        "too_easy": int(reasons.get("too_easy", 0)),
        "too_hard": int(reasons.get("too_hard", 0)),
        "kept": int(len(kept)),
        "mean_c": float(labeled["c"].mean()) if len(labeled) else 0.0,
        "mean_c_kept": float(kept["c"].mean()) if len(kept) else 0.0,
    }


def train_task_maker(recipe, role: str, ctx: IterationContext, out_dir: Path, callbacks=()) -> tuple[GRPOResult, dict]:
    """GRPO for one task-maker role; returns the result and the reward's running statistics."""
    training = recipe.role_training(role, ctx)
    result = _train_role(ctx, role, training, out_dir, callbacks)
    summary = {"skipped": training.skip_reason} if training.skip_reason else {}
    for f in training.reward_funcs:
        if hasattr(f, "summary"):
            summary.update(f.summary())
    return result, summary


def build_task_set(recipe, ctx: IterationContext, maker_dirs: dict[str, Path]) -> pd.DataFrame:
    """The iteration's task set, built by the recipe's hook (default: `label_proposals`)."""
    return recipe.build_task_set(ctx, maker_dirs)


def label_proposals(recipe, ctx: IterationContext, maker_dirs: dict[str, Path]) -> pd.DataFrame:
    """Proposals from this iteration's task makers, labeled by the previous Solver's majority vote."""
    makers = {role: ctx.engine(d) for role, d in maker_dirs.items()}
    proposals = recipe.propose_tasks(ctx, makers)
    solver = ctx.engine(ctx.parents["solver"])
    return label_tasks(ctx, proposals, solver, recipe.keep(ctx.config))
