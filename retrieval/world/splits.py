"""Named seed ranges of the procedural world: which images train, tune, audit and test.

Every consumer of world images asks for a split by name instead of adding a
private offset to a seed, so it is visible in one place that no held-out
image is ever trained on. `sample_world(n, seed)` gives image i the seed
`seed * 1_000_003 + i`, so two different split seeds can never produce the
same image (for fewer than 10^6 images per call):

- ``train``: the warm start's labeled examples and the pool's procedural
  source (seeds below 10^6);
- ``curriculum``: the easiest world scenes of the warm start's first phase
  (`retrieval.world.primer.perception_curriculum`), also training data;
- ``unlabeled``: images a label-free experiment asks about (`bench/efficacy.py`;
  their labels are never read for training);
- ``validation``: for choosing settings (levers, thresholds); never reported;
- ``audit``: the labeled slice on which an iteration's pseudo-labels are
  audited (its answers never train anything);
- ``probe``: the base model's format probe (are its Questioner outputs parseable);
- ``test``: the held-out questions every model (base and iteration) is scored on;
- ``benchmark``: the evaluation harness's `procedural` benchmark.

    images = split_images("test", 150)             # the held-out images
    tasks = split_tasks("test", 150)               # (image, labeled task) pairs: the held-out questions
    seed = split_seed("validation", seed=3)         # a validation draw for run seed 3
"""

from __future__ import annotations

import random

from retrieval.world.core import WorldImage, sample_world
from retrieval.world.tasks import LabeledTask, TaskMix, make_tasks

SPLITS: dict[str, int] = {
    "train": 0,
    "curriculum": 1_000,
    "unlabeled": 250_000_000,
    "validation": 500_000_000,
    "test": 1_000_000_000,
    "probe": 1_000_002_000,
    "benchmark": 1_000_001_000,
    "audit": 1_000_007_000,
}
# Seeds below this are training seeds; everything a model is scored on lies at or above it.
HELD_OUT_FLOOR = SPLITS["validation"]
# The option order of a split's questions: one rng per split and run seed, so every consumer (the base's card,
# the iterations' scores, the evaluation harness's `procedural` benchmark) asks the very same questions.
_OPTION_RNG = {"test": 1, "audit": 8, "validation": 3, "benchmark": 0, "probe": 5}


def split_seed(split: str, seed: int = 0) -> int:
    """The `sample_world` seed of `split` for run seed `seed`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    if not 0 <= seed < 1_000:
        raise ValueError(f"run seeds lie in [0, 1000) so that splits never overlap, got {seed}")
    return SPLITS[split] + seed


def split_images(split: str, n: int, seed: int = 0, size: int = 64) -> list[WorldImage]:
    """n world images of `split` (deterministic in `seed`)."""
    return sample_world(n, seed=split_seed(split, seed), size=size)


def split_tasks(split: str, n_images: int, seed: int = 0, size: int = 64, mix: TaskMix | None = None,
                ) -> list[tuple[WorldImage, LabeledTask]]:
    """(world image, labeled task) pairs of `n_images` images of `split`, in a fixed option order.

    Without `mix`, every 4-option task of each image; with one, the mix's types and answer kinds."""
    rng = random.Random(seed + _OPTION_RNG.get(split, 11))
    return [(wi, t) for wi in split_images(split, n_images, seed, size=size) for t in make_tasks(wi, rng, mix)]
