"""Source "procedural": the seeded procedural world (``retrieval.world``) as an image source.

Wraps ``sample_world`` so world images can enter the pool like any other source::

    src = build_source("procedural", n=500, seed=0, kinds=("shapes", "charts"))

Each record keeps the world id, caption and difficulty, and ``meta`` holds ``kind``,
``seed``, ``size`` and the JSON ground-truth ``scene``, from which
``retrieval.world.tasks`` can rebuild labeled tasks later (``scene_to_world_image``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from retrieval.sources.base import ImageRecord, ImageSource, Rejected, register_source
from retrieval.world.core import DIFFICULTIES, KINDS, WorldImage, sample_world


@register_source("procedural")
class ProceduralSource(ImageSource):
    """``n`` world images, deterministic in ``seed`` (see ``retrieval.world.sample_world``)."""

    def __init__(self, n: int = 100, seed: int = 0, kinds: Sequence[str] = KINDS,
                 difficulties: Sequence[int] = DIFFICULTIES, size: int = 64) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"procedural source: unknown kinds {unknown}; expected a subset of {KINDS}")
        self.n, self.seed, self.size = n, seed, size
        self.kinds, self.difficulties = tuple(kinds), tuple(difficulties)

    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        for wi in sample_world(self.n, self.seed, self.kinds, self.difficulties, self.size):
            yield ImageRecord(id=wi.id, source=self.name, image=wi.image, caption=wi.caption,
                              difficulty=wi.difficulty,
                              meta={"kind": wi.kind, "seed": wi.seed, "size": self.size, "scene": wi.scene})


def scene_to_world_image(record: ImageRecord) -> WorldImage:
    """Rebuild a ``WorldImage`` from a procedural record (e.g. read back from the pool)."""
    missing = [k for k in ("kind", "seed", "scene") if k not in record.meta]
    if missing:
        raise ValueError(f"record {record.id!r} is not procedural: meta lacks {missing}")
    return WorldImage(id=record.id, kind=record.meta["kind"], seed=record.meta["seed"],
                      difficulty=record.difficulty, image=record.image, caption=record.caption,
                      scene=record.meta["scene"])
