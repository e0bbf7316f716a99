"""Atomic file writes and content hashes: the file-system primitives every layer shares.

A step that is killed half-way must never leave something that looks
finished, so every artifact zeroforge writes (checkpoint cards, task sets,
frozen configs, lineage records, scores) goes through these helpers: the
bytes land in a temporary sibling, are flushed to disk, and replace the
target in one `os.replace`. Readers see the old file or the whole new one.
`atomic_dir` does the same for a folder. They sit at the bottom of the
dependency graph (models is the lowest layer) so that retrieval, recipes,
assets and lineage all use the same ones.

    atomic_write_json(path, {"steps": 20})
    with atomic_dir(final) as tmp:
        (tmp / "weights.bin").write_bytes(...)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a flushed temp file and one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, data, indent: int | None = 2) -> Path:
    """JSON with `default=str` (paths, numpy scalars), written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=indent, default=str))


@contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success it replaces `final` in one rename.

    A crash leaves only a `.tmp-*` folder, never a half-written `final`; an
    existing `final` is moved aside first and removed after the swap.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_hash(obj) -> str:
    """A stable hash of a JSON-able object (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
