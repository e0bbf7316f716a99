"""Shared helpers for the benchmark scripts: a model to measure and timing utilities.

Benchmarks print their figures and, with --json, write them; they assert nothing.
A model directory can be given (--model); otherwise the script builds a
random-init embedded model of the requested size into a temp dir (throughput
does not depend on the weights, only on shapes and reply lengths).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import models.compat  # noqa: E402,F401  (torchvision fallback before transformers)


def model_dir(path: str | None, size: str = "small") -> Path:
    if path:
        return Path(path)
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from recipes.core.bootstrap import bootstrap_datasets, tokenizer_corpus

    out = Path(tempfile.mkdtemp(prefix=f"zf-bench-{size}-"))
    train, held = bootstrap_datasets(40, 10, 0)
    build_tiny_vlm(out, tokenizer_corpus(train + held), TINY_SPECS[size])
    return out


def timed(fn, repeats: int = 3) -> tuple[float, float, object]:
    """(best, median, last result) of `repeats` wall-clock timings."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def machine() -> str:
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} torch threads"
    return dev
