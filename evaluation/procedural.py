"""The procedural held-out benchmark: the test split's labeled questions, the same ones every model is scored on.

Images and questions come from `retrieval.world.splits.split_tasks("test", ...)`:
the same world images, questions and option order that the base model's card
and every iteration's `benchmark_scores` use, so the base shows one held-out
figure on one named set wherever it appears (the test split's seeds lie far
above every training seed, see `retrieval.world.splits`). Questions are asked
with the Solver's prompt (`models.formats.solver_prompt`) and scored by
`evaluation.scorers.ProceduralScorer`, with a breakdown per task type.

    samples = procedural_samples()              # the default set, same every run
    samples[0].meta["task_type"], samples[0].answer
"""

from __future__ import annotations

from evaluation.readers import BenchSample
from retrieval.world.splits import SPLITS, split_seed, split_tasks

SPLIT = "test"
DEFAULT_IMAGES = 150  # ~3.6 questions per image: ~550 questions over every task type (as the base model's card)


def describe(n_images: int = DEFAULT_IMAGES, seed: int = 0) -> str:
    return f"procedural world, {SPLIT} split: {n_images} images, seed {split_seed(SPLIT, seed)}"


def procedural_samples(n_images: int = DEFAULT_IMAGES, seed: int = 0, size: int = 64, limit: int | None = None) -> list[BenchSample]:
    """Every labeled task of `n_images` test-split world images (the first `limit` if given); `seed` is the run seed."""
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, found {n_images}")
    out: list[BenchSample] = []
    for wi, t in split_tasks(SPLIT, n_images, seed, size=size):
        out.append(BenchSample(
            id=t.task_id, images=[wi.image], question=t.question, answer=t.answer, options=dict(zip("ABCD", t.options)),
            meta={"task_type": t.task_type, "kind": wi.kind, "difficulty": wi.difficulty, "image_id": wi.id,
                  "world_seed": wi.seed, "answer_text": t.answer_text},
        ))
        if limit is not None and len(out) >= limit:
            return out
    return out


__all__ = ["DEFAULT_IMAGES", "SPLIT", "SPLITS", "describe", "procedural_samples"]
