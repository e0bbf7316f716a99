"""The procedural held-out benchmark: labeled questions about world images nobody trained on.

Images come from `retrieval.world.sample_world` at a fixed seed at or above
`EVAL_SEED_BASE` (10^9, as in `recipes.bootstrap`); training draws seeds below 10^6,
and per-image seeds are `seed * 1_000_003 + i`, so the two ranges can never
meet. Questions are `retrieval.world.tasks.make_tasks`, asked with the
Solver's prompt (`models.formats.solver_prompt`) and scored by exact match
of the `\\boxed{letter}` answer (`evaluation.scorers.ProceduralScorer`),
with a breakdown per task type.

    samples = procedural_samples()              # the default set, same every run
    samples[0].meta["task_type"], samples[0].answer

The default seed is offset from EVAL_SEED_BASE so that this set is also
disjoint from the warm start's held-out images (EVAL_SEED_BASE + seed).
"""

from __future__ import annotations

import random

from evaluation.readers import BenchSample

PROCEDURAL_SEED_OFFSET = 1_000  # default seed = EVAL_SEED_BASE + this
DEFAULT_IMAGES = 120  # ~3-4 questions per image: a few hundred questions over all 9 task types


# Mirrors recipes.bootstrap.EVAL_SEED_BASE (a test checks they agree): importing
# recipes would pull the whole training stack (trl, peft) into a plain scorer.
EVAL_SEED_BASE = 1_000_000_000


def eval_seed_base() -> int:
    return EVAL_SEED_BASE


def default_seed() -> int:
    return eval_seed_base() + PROCEDURAL_SEED_OFFSET


def procedural_samples(
    n_images: int = DEFAULT_IMAGES, seed: int | None = None, size: int = 64, limit: int | None = None
) -> list[BenchSample]:
    """Every labeled task of `n_images` held-out world images (the first `limit` if given)."""
    from retrieval.world import sample_world
    from retrieval.world.tasks import make_tasks

    seed = default_seed() if seed is None else seed
    if seed < eval_seed_base():
        raise ValueError(
            f"procedural benchmark seed must be >= EVAL_SEED_BASE={eval_seed_base()} (held-out range), "
            f"found {seed}; seeds below 10^6 are training seeds"
        )
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, found {n_images}")
    rng = random.Random(seed)
    out: list[BenchSample] = []
    for wi in sample_world(n_images, seed=seed, size=size):
        for t in make_tasks(wi, rng):
            out.append(
                BenchSample(
                    id=t.task_id,
                    images=[wi.image],
                    question=t.question,
                    answer=t.answer,
                    options=dict(zip("ABCD", t.options)),
                    meta={
                        "task_type": t.task_type,
                        "kind": wi.kind,
                        "difficulty": wi.difficulty,
                        "image_id": wi.id,
                        "world_seed": wi.seed,
                        "answer_text": t.answer_text,
                    },
                )
            )
            if limit is not None and len(out) >= limit:
                return out
    return out
