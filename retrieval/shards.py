"""WebDataset tar shards for image records: write (atomic, append-only), read, random access.

The storage layer under ``retrieval.pool``: ``write_shards(records, out_dir)`` packs
``ImageRecord`` streams into ``<prefix>-NNNNNN.tar`` files, one sample per record with
``<key>.png`` (lossless pixels) and ``<key>.json`` (id, source, caption, difficulty,
meta).  Each shard is written under a ``.tmp`` name and renamed only once complete, so a
crash never leaves a half shard under a real name; shards are never rewritten -- a later
call continues at the next free index.  Tar member mtimes are fixed, so the same records
give byte-identical shards (stable sha256).  ``read_shards(paths)`` streams records back
through ``webdataset.WebDataset`` and ``load_image(shard, key)`` fetches one image::

    infos = write_shards(source.iter_items(), "data/shards", maxcount=1000)
    for rec in read_shards([i.path for i in infos]): ...
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import webdataset as wds
from PIL import Image

from retrieval.sources.base import ImageRecord

_SHARD_RE = r"^{prefix}-(\d{{6}})\.tar$"


@dataclass
class ShardInfo:
    """A completed shard: final path, number of samples, sha256 of the file, sample keys."""

    path: Path
    count: int
    sha256: str
    keys: list[str] = field(default_factory=list)


def shard_key(record_id: str) -> str:
    """Filesystem- and webdataset-safe key for a record id.

    WebDataset splits member names at the first '.', so keys may only contain
    ``[A-Za-z0-9_-]``.  When sanitising changes the id, a short hash of the original is
    appended so distinct ids cannot collide.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", record_id)
    if safe != record_id or not safe:
        safe = f"{safe[:100]}-{hashlib.sha1(record_id.encode()).hexdigest()[:10]}"
    return safe


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def existing_shards(out_dir: str | os.PathLike, prefix: str = "pool") -> list[Path]:
    """Completed shards with this prefix in ``out_dir``, in index order."""
    pat = re.compile(_SHARD_RE.format(prefix=re.escape(prefix)))
    d = Path(out_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if pat.match(p.name))


def _next_index(out_dir: Path, prefix: str) -> int:
    pat = re.compile(_SHARD_RE.format(prefix=re.escape(prefix)))
    idx = [int(m.group(1)) for p in existing_shards(out_dir, prefix) if (m := pat.match(p.name))]
    return max(idx) + 1 if idx else 0


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class _ShardFile:
    """One shard being written: tmp file + TarWriter, renamed on ``close``."""

    def __init__(self, final: Path) -> None:
        self.final, self.tmp = final, final.with_name(final.name + ".tmp")
        self.fh = open(self.tmp, "wb")
        # mtime fixed: identical input -> identical bytes; encoder off: we pass raw bytes.
        self.writer = wds.TarWriter(self.fh, encoder=False, mtime=0.0)
        self.keys: list[str] = []

    def write(self, key: str, png: bytes, meta: bytes) -> None:
        self.writer.write({"__key__": key, "png": png, "json": meta})
        self.keys.append(key)

    def close(self) -> ShardInfo:
        self.writer.close()  # writes the tar end blocks; does not close a passed-in file
        self.fh.flush()
        os.fsync(self.fh.fileno())  # data on disk before the rename makes it visible
        self.fh.close()
        os.replace(self.tmp, self.final)  # atomic on POSIX within one filesystem
        return ShardInfo(self.final, len(self.keys), sha256_file(self.final), self.keys)

    def abort(self) -> None:
        try:
            self.writer.close()
            self.fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_shards(records: Iterable[ImageRecord], out_dir: str | os.PathLike, prefix: str = "pool",
                 maxcount: int = 1000) -> list[ShardInfo]:
    """Write records into new shards after any existing ``<prefix>-NNNNNN.tar`` in out_dir.

    Streams: at most one shard is open at a time and records are not kept in memory.
    Writes nothing (and returns ``[]``) for an empty iterable.  Raises on non-records and
    on duplicate keys within one call (WebDataset would silently merge them).
    """
    if maxcount < 1:
        raise ValueError(f"maxcount must be >= 1, got {maxcount}")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
        raise ValueError(f"prefix must match [A-Za-z0-9_-]+, got {prefix!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = _next_index(out, prefix)
    infos: list[ShardInfo] = []
    seen: set[str] = set()
    current: _ShardFile | None = None
    try:
        for rec in records:
            if not isinstance(rec, ImageRecord):
                raise TypeError(f"write_shards expects ImageRecord items, got {type(rec).__name__}: {rec!r}")
            key = shard_key(rec.id)
            if key in seen:
                raise ValueError(f"duplicate record id/key {rec.id!r} -> {key!r} in one write_shards call")
            seen.add(key)
            if current is None:
                current = _ShardFile(out / f"{prefix}-{index:06d}.tar")
                index += 1
            meta = {"id": rec.id, "source": rec.source, "caption": rec.caption,
                    "difficulty": int(rec.difficulty), "meta": rec.meta}
            current.write(key, encode_png(rec.image), json.dumps(meta, sort_keys=True).encode())
            if len(current.keys) >= maxcount:
                infos.append(current.close())
                current = None
        if current is not None:
            infos.append(current.close())
            current = None
    finally:
        if current is not None:  # an exception mid-shard: leave no partial file behind
            current.abort()
    return infos


def _decode(sample: dict, where: str) -> ImageRecord:
    missing = [k for k in ("png", "json") if k not in sample]
    if missing:
        raise ValueError(f"shard sample {sample.get('__key__')!r} in {where} lacks {missing}; "
                         f"found {sorted(k for k in sample if not k.startswith('__'))}")
    meta = json.loads(sample["json"])
    with Image.open(io.BytesIO(sample["png"])) as img:
        image = img.convert("RGB")
    return ImageRecord(id=meta["id"], source=meta["source"], image=image, caption=meta["caption"],
                       difficulty=int(meta["difficulty"]), meta=meta.get("meta", {}))


def read_shards(paths: Sequence[str | os.PathLike]) -> Iterator[ImageRecord]:
    """Stream records back from shards, in shard order then write order."""
    urls = [str(p) for p in paths]
    if not urls:
        return
    for p in urls:
        if not Path(p).is_file():
            raise FileNotFoundError(f"shard not found: {p}")
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    for sample in ds:
        yield _decode(sample, sample.get("__url__", "?"))


@functools.lru_cache(maxsize=256)
def _member_index(path: str, size: int, mtime_ns: int) -> dict[str, tuple[int, int]]:
    """{member name: (data offset, size)} of one shard, read once.

    Shards are immutable once renamed into place, so the index is cached per
    (path, size, mtime); a rewritten file gets a new key. Without it every
    random access rescans the tar from the start (~130 ms for a 1,000-image
    shard), which dominated task building and Solver dataset loading.
    """
    with tarfile.open(path, "r") as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}


def load_image(shard_path: str | os.PathLike, key: str) -> Image.Image:
    """Fetch one sample's image by key (random access through a cached member index)."""
    path = os.fspath(shard_path)
    st = os.stat(path)
    index = _member_index(path, st.st_size, st.st_mtime_ns)
    entry = index.get(f"{key}.png")
    if entry is None:
        raise KeyError(f"no image with key {key!r} in shard {shard_path}")
    offset, size = entry
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")
