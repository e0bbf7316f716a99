"""Benchmark-style files as an image-pool source: their images, never their answers.

Teams often hold images only as VLMEvalKit TSVs, HF parquet shards or JSONL
sets. `BenchmarkImagesSource` ("benchmark") reads them with the evaluation
readers and yields each distinct image once, captioned with the question text
(what the file says about the image); the gold answer and options are dropped,
because the loop is label-free and a pool must not leak labels into training.
A file that cannot be read at all raises with the readers' message; an image
that cannot be used (empty, or too small to be a picture) is a `Rejected`.
Do not put a benchmark you evaluate on into the training pool: that would
contaminate the score (the image ids keep the file's name so a leak can be audited).

    build_source("benchmark", spec="MathVista=/data/vlmeval/MathVista_MINI.tsv")
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from retrieval.sources.base import ImageRecord, ImageSource, Rejected, fit_max_side, register_source, to_rgb


@register_source("benchmark")
class BenchmarkImagesSource(ImageSource):
    """Images of one benchmark file or folder, given as NAME=PATH (the `zeroforge eval --bench` syntax)."""

    def __init__(self, spec: str, limit: int | None = None, max_side: int = 256, difficulty: int = 3) -> None:
        from evaluation.benchmarks import parse_bench_arg

        self.bench, self.path = parse_bench_arg(spec)
        if self.path is None:
            raise ValueError(f"benchmark source: expected NAME=PATH, found {spec!r}")
        self.limit, self.max_side, self.difficulty = limit, max_side, difficulty

    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        from evaluation.benchmarks import load_benchmark

        _, where, samples = load_benchmark(self.bench, self.path, self.limit)
        seen: set[str] = set()
        for s in samples:
            for i, image in enumerate(s.images):
                ref = f"{self.bench}:{s.id}:{i}"
                if image.width < 4 or image.height < 4:
                    yield Rejected(self.name, ref, f"image of {image.width}x{image.height} pixels is too small to use")
                    continue
                rgb = to_rgb(image)
                digest = hashlib.sha256(rgb.tobytes() + f"{rgb.size}".encode()).hexdigest()
                if digest in seen:  # questions sharing one image
                    continue
                seen.add(digest)
                yield ImageRecord(
                    id=f"benchmark:{digest[:16]}", source=self.name, image=fit_max_side(rgb, self.max_side),
                    caption=" ".join(str(s.question).split())[:300], difficulty=self.difficulty,
                    meta={"benchmark": self.bench, "file": str(where), "sample_id": str(s.id)},
                )
