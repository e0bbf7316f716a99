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
from retrieval.world.tasks import MIXES

SPLIT = "test"
DEFAULT_IMAGES = 150  # ~3.6 questions per image: ~550 questions over every task type (as the base model's card)


_FORM = {"mc": "", "yesno": ", yes/no questions", "open": ", open questions"}


def describe(n_images: int = DEFAULT_IMAGES, seed: int = 0, kind: str = "mc") -> str:
    return f"procedural world, {SPLIT} split: {n_images} images, seed {split_seed(SPLIT, seed)}{_FORM[kind]}"


# The answer kind of each procedural benchmark: the 4-option set, then the same images asked as yes/no and
# as open questions (the `all` mix's questions of that kind: every task type that has the form).
KINDS = {"procedural": "mc", "procedural_yesno": "yesno", "procedural_open": "open"}


def procedural_samples(n_images: int = DEFAULT_IMAGES, seed: int = 0, size: int = 64, limit: int | None = None,
                       kind: str = "mc") -> list[BenchSample]:
    """Every labeled task of `n_images` test-split world images (the first `limit` if given); `seed` is the run seed.

    `kind` "mc": the 4-option questions (options A-D); "yesno" or "open": the same images' questions of that
    form, without options, the answer "yes"/"no" or one word or number."""
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, found {n_images}")
    if kind not in KINDS.values():
        raise ValueError(f"kind must be one of {sorted(set(KINDS.values()))}, found {kind!r}")
    mix = None if kind == "mc" else MIXES["all"].only(kind)
    out: list[BenchSample] = []
    for wi, t in split_tasks(SPLIT, n_images, seed, size=size, mix=mix):
        options = dict(zip("ABCD", t.options)) if kind == "mc" else {}
        out.append(BenchSample(
            id=t.task_id, images=[wi.image], question=t.question, answer=t.answer, options=options,
            meta={"task_type": t.task_type, "kind": wi.kind, "difficulty": wi.difficulty, "image_id": wi.id,
                  "world_seed": wi.seed, "answer_text": t.answer_text},
        ))
        if limit is not None and len(out) >= limit:
            return out
    return out


__all__ = ["DEFAULT_IMAGES", "KINDS", "SPLIT", "SPLITS", "describe", "procedural_samples"]
