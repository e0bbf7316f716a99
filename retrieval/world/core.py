"""Entry points of the procedural world: ``WorldImage``, ``generate`` and ``sample_world``.

The world is a seeded, fully-known source of images for self-evolving VLM training:
every image comes with a caption and a JSON ground-truth ``scene`` from which
``retrieval.world.tasks`` derives labeled questions.  Three kinds exist (``shapes``,
``charts``, ``grids``, one module each) and a difficulty 1..5 that a curriculum can
raise.  Usage::

    from retrieval.world import generate, sample_world
    item = generate("shapes", seed=7, difficulty=3)          # one image
    batch = sample_world(100, seed=0, kinds=("charts",))      # balanced, deterministic

Generation is a pure function of ``(kind, seed, difficulty, size)``: each call builds
its own ``random.Random`` and never touches global RNG state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from retrieval.world import charts, grids, shapes

Renderer = Callable[[random.Random, int, int], tuple[Image.Image, str, dict]]

GENERATORS: dict[str, Renderer] = {
    "shapes": shapes.render,
    "charts": charts.render,
    "grids": grids.render,
}
KINDS: tuple[str, ...] = tuple(GENERATORS)
DIFFICULTIES: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_SIZE = 48


@dataclass
class WorldImage:
    """One generated image with its ground truth.

    ``scene`` is JSON-serialisable (only dicts, lists, str, int, float, None); its layout
    depends on ``kind`` (see the generator modules).
    """

    id: str
    kind: str
    seed: int
    difficulty: int
    image: Image.Image
    caption: str
    scene: dict


def world_image_id(kind: str, seed: int, difficulty: int, size: int) -> str:
    """Stable id: the same parameters always name the same pixels."""
    return f"{kind}-s{seed}-d{difficulty}-{size}px"


def generate(kind: str, seed: int, difficulty: int, size: int = 64) -> WorldImage:
    """Generate one world image; deterministic for a given (kind, seed, difficulty, size)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown world kind {kind!r}; expected one of {KINDS}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be an integer in 1..5, got {difficulty!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE} px (labels and small shapes need room), got {size}")
    # A string seed is hashed with SHA-512 by random.Random, so it is stable across runs
    # and PYTHONHASHSEED, and different kinds/difficulties get independent streams.
    rng = random.Random(f"zeroforge-world:{kind}:{seed}:{difficulty}")
    image, caption, scene = GENERATORS[kind](rng, difficulty, size)
    if image.size != (size, size) or image.mode != "RGB":
        raise RuntimeError(f"{kind} generator returned {image.mode} {image.size}, expected RGB {(size, size)}")
    return WorldImage(id=world_image_id(kind, seed, difficulty, size), kind=kind, seed=seed,
                      difficulty=difficulty, image=image, caption=caption, scene=scene)


def sample_world(n: int, seed: int, kinds: Sequence[str] = KINDS,
                 difficulties: Sequence[int] = DIFFICULTIES, size: int = 64) -> list[WorldImage]:
    """Generate ``n`` images cycling through kinds x difficulties, deterministic in ``seed``.

    Kinds rotate fastest, then difficulties, so any prefix of the list is as balanced as
    possible.  Per-item seeds are derived from ``seed`` and the index, hence distinct
    within one call (ids are unique).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not kinds or not difficulties:
        raise ValueError(f"need at least one kind and one difficulty, got kinds={kinds!r}, "
                         f"difficulties={difficulties!r}")
    kinds, difficulties = list(kinds), list(difficulties)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        difficulty = difficulties[(i // len(kinds)) % len(difficulties)]
        out.append(generate(kind, seed * 1_000_003 + i, difficulty, size))
    return out
