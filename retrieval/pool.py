"""The image pool: webdataset shards on disk plus a LanceDB metadata table.

``ImagePool(root)`` is where every source's images end up: pixels live in
``root/shards/pool-NNNNNN.tar`` (see ``retrieval.shards``), and one row per image lives
in the LanceDB table ``images`` under ``root/lancedb`` with columns

    id, source, shard (file name under root/shards), key (sample key in the shard),
    caption, difficulty (int32), kind ("" when not procedural), width, height (int32),
    meta_json (the record's meta as JSON)

Usage::

    pool = ImagePool("data/pool")
    report = pool.add(build_source("procedural", n=1000).iter_items())
    ids = pool.sample(32, seed=0, where="source = 'procedural' AND difficulty <= 2")
    img = pool.get_image(ids[0])

``add`` is idempotent: ids already in the table are skipped and counted as duplicates,
and rejected inputs are quarantined under ``root/quarantine`` (or a given directory).
Shards are written first and rows appended after, so a crash in between leaves only
unreferenced shards, never rows pointing at missing pixels.  One writer at a time.

Embeddings: ``pool.embed(embedder)`` writes them to a separate table per embedder,
``embeddings_<first 16 hex digits of embedder.fingerprint>``, with ``id`` (str, join key to
``images``), ``vector`` (``fixed_size_list<float32>[dim]``) and the filter columns source,
difficulty and seen_iteration (see ``retrieval.vector_index``).  Keeping them apart lets
models of different dimensions coexist, lets LanceDB build a vector index on a column
without nulls, and lets re-embedding happen without rewriting the metadata rows; a second
``embed`` with the same embedder embeds only images added since::

    report = pool.embed(embedder)                       # EmbedReport(embedded_new, skipped_existing, ...)
    hits = pool.search_text(embedder, "a bar chart of five bars", k=5, where="difficulty >= 3")
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lancedb
import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

if TYPE_CHECKING:  # imported where used: the vector index pulls in the embedder's stack
    from retrieval.vector_index import EmbedReport, VectorIndex

from models.files import atomic_write_json
from retrieval.shards import existing_shards, load_image, shard_key, write_shards
from retrieval.sources.base import ImageRecord, Rejected
from retrieval.sources.quarantine import quarantine

TABLE = "images"
EMBED_TABLE_PREFIX = "embeddings_"
EMBEDDER_POINTER = "embedder.json"  # {path, fingerprint, model_name} of the embedder searches use
SHARD_PREFIX = "pool"
SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("shard", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),
    pa.field("caption", pa.string()),
    pa.field("difficulty", pa.int32()),
    pa.field("kind", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("meta_json", pa.string()),
])


@dataclass
class PoolReport:
    """Outcome of one ``ImagePool.add`` call.

    ``by_source`` maps source name -> {"added", "rejected", "duplicates"} counts;
    ``rejections`` holds one dict per Rejected (source, ref, reason, path, quarantine);
    ``shards`` are the names of the shards this call wrote.
    """

    added: int = 0
    rejected: int = 0
    duplicates: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    rejections: list[dict] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)

    def _bump(self, source: str, what: str) -> None:
        counts = self.by_source.setdefault(source, {"added": 0, "rejected": 0, "duplicates": 0})
        counts[what] += 1


def _sql_str(value: str) -> str:
    """Quote a string literal for a LanceDB filter ('it''s')."""
    return "'" + value.replace("'", "''") + "'"


class ImagePool:
    """Shards + LanceDB metadata under one root directory (created if missing)."""

    def __init__(self, root: str | os.PathLike, maxcount: int = 1000) -> None:
        self.root = Path(root)
        self.shard_dir = self.root / "shards"
        self.db_dir = self.root / "lancedb"
        self.maxcount = maxcount
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.db_dir))
        self._table = self.db.create_table(TABLE, schema=SCHEMA, exist_ok=True)
        missing = [f.name for f in SCHEMA if f.name not in self._table.schema.names]
        if missing:
            raise ValueError(f"table {TABLE!r} in {self.db_dir} lacks columns {missing}; "
                             f"found {self._table.schema.names}")

    # ------------------------------------------------------------------ writing

    def add(self, items: Iterable[ImageRecord | Rejected],
            quarantine_dir: str | os.PathLike | None = None) -> PoolReport:
        """Add new records (skipping known ids) and quarantine rejections."""
        qdir = Path(quarantine_dir) if quarantine_dir is not None else self.root / "quarantine"
        report = PoolReport()
        known = set(self.ids())
        rows: dict[str, dict] = {}

        def fresh_records():
            # Generator so write_shards streams: images are encoded and dropped one by one.
            for item in items:
                if isinstance(item, Rejected):
                    qpath = quarantine(item, qdir)
                    report.rejected += 1
                    report._bump(item.source, "rejected")
                    report.rejections.append({"source": item.source, "ref": item.ref, "reason": item.reason,
                                              "path": item.path, "quarantine": str(qpath)})
                elif isinstance(item, ImageRecord):
                    if item.id in known:
                        report.duplicates += 1
                        report._bump(item.source, "duplicates")
                        continue
                    known.add(item.id)
                    kind = item.meta.get("kind", "")
                    rows[shard_key(item.id)] = {
                        "id": item.id, "source": item.source, "shard": None,
                        "key": shard_key(item.id), "caption": item.caption,
                        "difficulty": int(item.difficulty), "kind": kind if isinstance(kind, str) else "",
                        "width": item.image.width, "height": item.image.height,
                        "meta_json": json.dumps(item.meta, sort_keys=True),
                    }
                    report.added += 1
                    report._bump(item.source, "added")
                    yield item
                else:
                    raise TypeError(f"ImagePool.add expects ImageRecord or Rejected items, "
                                    f"got {type(item).__name__}")

        infos = write_shards(fresh_records(), self.shard_dir, prefix=SHARD_PREFIX, maxcount=self.maxcount)
        for info in infos:
            for key in info.keys:
                rows[key]["shard"] = info.path.name
            report.shards.append(info.path.name)
        if rows:
            self._table.add(pa.Table.from_pylist(list(rows.values()), schema=SCHEMA))
        return report

    # ------------------------------------------------------------------ reading

    def table(self):
        """The LanceDB ``images`` table (for custom queries)."""
        return self._table

    def count(self, where: str | None = None) -> int:
        return self._table.count_rows(where) if where else self._table.count_rows()

    def ids(self) -> list[str]:
        if self._table.count_rows() == 0:
            return []
        return self._table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist()

    def records(self, where: str | None = None) -> pd.DataFrame:
        """Metadata rows (all, or those matching a LanceDB SQL filter) as a DataFrame."""
        query = self._table.search()
        if where:
            query = query.where(where)
        return query.limit(None).to_pandas()

    def shards(self) -> list[Path]:
        """All completed shard files of the pool."""
        return existing_shards(self.shard_dir, SHARD_PREFIX)

    def _row(self, image_id: str) -> dict:
        df = self.records(f"id = {_sql_str(image_id)}")
        if df.empty:
            raise KeyError(f"no image with id {image_id!r} in pool {self.root}")
        return df.iloc[0].to_dict()

    def _location(self, image_id: str) -> tuple[str, str]:
        """(shard, key) of an image, from an in-memory map read once per pool version.

        A LanceDB filter per image costs ~15 ms; task building and Solver
        datasets fetch hundreds of images, so the id -> location map is read
        in one scan and refreshed when the table's version changes (`add`).
        """
        version = self._table.version
        if getattr(self, "_loc_version", None) != version:
            df = self._table.to_arrow().select(["id", "shard", "key"]).to_pandas()
            self._loc = dict(zip(df["id"], zip(df["shard"], df["key"])))
            self._loc_version = version
        if image_id not in self._loc:
            raise KeyError(f"no image with id {image_id!r} in pool {self.root}")
        return self._loc[image_id]

    def has(self, image_id: str) -> bool:
        """Whether the pool holds `image_id` (from the same in-memory map as `get_image`)."""
        try:
            self._location(image_id)
        except KeyError:
            return False
        return True

    def get_image(self, image_id: str) -> Image.Image:
        """The RGB pixels of one image."""
        shard, key = self._location(image_id)
        return load_image(self.shard_dir / shard, key)

    def get_record(self, image_id: str) -> ImageRecord:
        """Image plus metadata, rebuilt as an ``ImageRecord``."""
        row = self._row(image_id)
        return ImageRecord(id=row["id"], source=row["source"],
                           image=load_image(self.shard_dir / row["shard"], row["key"]),
                           caption=row["caption"], difficulty=int(row["difficulty"]),
                           meta=json.loads(row["meta_json"]))

    def sample(self, n: int, seed: int, where: str | None = None) -> list[str]:
        """``n`` distinct ids drawn without replacement, deterministic in (seed, pool content)."""
        ids = sorted(self.records(where)["id"]) if self.count() else []
        if not 0 <= n <= len(ids):
            raise ValueError(f"cannot sample {n} ids: {len(ids)} match where={where!r}")
        return random.Random(seed).sample(ids, n)

    # ------------------------------------------------------------------ embeddings

    def vector_index(self, embedder) -> "VectorIndex":
        """The vector table of an embedder (or of a fingerprint string) in this pool's database."""
        from retrieval.vector_index import VectorIndex

        fingerprint = embedder if isinstance(embedder, str) else embedder.fingerprint
        # One VectorIndex per fingerprint and pool object: opening one checks the whole
        # table's fingerprint column, too slow to repeat for every Searcher query.
        cache = self.__dict__.setdefault("_vector_indexes", {})
        if fingerprint not in cache:
            cache[fingerprint] = VectorIndex(self.db, f"{EMBED_TABLE_PREFIX}{fingerprint[:16]}",
                                             fingerprint=fingerprint)
        return cache[fingerprint]

    def embed(self, embedder, batch_size: int = 64, flush_rows: int = 4096,
              build_index: bool = True) -> "EmbedReport":
        """Embed the images that this embedder's table lacks; build the ANN index once large.

        Images are read shard by shard (each tar opened once) and appended every
        ``flush_rows`` rows, so an interrupted run keeps what it wrote and the next call
        resumes.  ``build_index`` then creates or refreshes IVF-PQ when the table is
        large enough (``VectorIndex.build_index``).
        """
        import time

        from retrieval.vector_index import EmbedReport

        t0 = time.monotonic()
        index = self.vector_index(embedder)
        rows = (self._table.search().select(["id", "source", "shard", "key", "difficulty"]).limit(None)
                .to_pandas() if self.count() else pd.DataFrame(columns=["id", "source", "shard", "key", "difficulty"]))
        done = index.contains(rows["id"].tolist())
        todo = rows[~rows["id"].isin(done)]
        pending: dict[str, list] = {"id": [], "vec": [], "source": [], "difficulty": []}

        def flush() -> None:
            if pending["id"]:
                index.upsert_missing(pending["id"], np.concatenate(pending["vec"]),
                                     {"source": pending["source"], "difficulty": pending["difficulty"]})
                for v in pending.values():
                    v.clear()

        for shard, group in todo.groupby("shard", sort=True):
            images = self._shard_images(shard, group["key"].tolist())
            for lo in range(0, len(group), batch_size):
                part = group.iloc[lo:lo + batch_size]
                pending["vec"].append(embedder.embed_images(images[lo:lo + batch_size], batch_size=batch_size))
                pending["id"] += part["id"].tolist()
                pending["source"] += part["source"].tolist()
                pending["difficulty"] += [int(d) for d in part["difficulty"]]
                if len(pending["id"]) >= flush_rows:
                    flush()
        flush()
        index_report = index.build_index() if build_index and index.table is not None else None
        return EmbedReport(embedded_new=len(todo), skipped_existing=len(done), seconds=time.monotonic() - t0,
                           table=index.table_name, fingerprint=index.fingerprint, index=index_report)

    def load_images(self, ids: list[str]) -> list[Image.Image]:
        """Many images in the order of ``ids``, reading each shard once (for training on the pool)."""
        locs = [self._location(i) for i in ids]
        by_shard: dict[str, list[int]] = {}
        for pos, (shard, _) in enumerate(locs):
            by_shard.setdefault(shard, []).append(pos)
        out: list = [None] * len(ids)
        for shard, positions in by_shard.items():
            for pos, img in zip(positions, self._shard_images(shard, [locs[p][1] for p in positions])):
                out[pos] = img
        return out

    def _shard_images(self, shard: str, keys: list[str]) -> list[Image.Image]:
        """Images of these keys from one shard, opening the tar once."""
        import io
        import tarfile

        path = self.shard_dir / shard
        with tarfile.open(path, "r") as tar:
            members = {m.name: m for m in tar.getmembers()}
            out = []
            for key in keys:
                member = members.get(f"{key}.png")
                if member is None:
                    raise KeyError(f"no image with key {key!r} in shard {path}")
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
                    out.append(img.convert("RGB"))
        return out

    def search_text(self, embedder, query: str, k: int = 5, where: str | None = None,
                    **search_kwargs) -> list[tuple[str, float]]:
        """Top-k (image id, cosine similarity) for a text query among the embedded images.

        ``where`` filters on the vector table's columns (source, difficulty,
        seen_iteration); ``search_kwargs`` go to ``VectorIndex.search`` (nprobes,
        refine_factor, exact).  Raises if ``embed`` has not run for this embedder.
        """
        index = self.vector_index(embedder)
        if index.table is None:
            raise LookupError(f"pool {self.root} has no embeddings for embedder {index.fingerprint[:16]}: "
                              f"call pool.embed(embedder) first")
        return index.search(embedder.embed_texts([query])[0], k=k, where=where, **search_kwargs)

    # ------------------------------------------------------------------ the pool's current embedder

    @property
    def embedder_pointer(self) -> Path:
        return self.root / EMBEDDER_POINTER

    def set_embedder(self, path: str | os.PathLike, fingerprint: str, model_name: str | None = None) -> None:
        """Record which embedder this pool's searches use (the ``embedder`` asset writes it after ``embed``)."""
        info = {"path": str(path), "fingerprint": fingerprint, "model_name": model_name}
        atomic_write_json(self.embedder_pointer, info)  # readers see the old pointer or the new one
        self.__dict__.pop("_embedder", None)

    def embedder_info(self) -> dict | None:
        """{path, fingerprint, model_name} of the recorded embedder, or None."""
        if not self.embedder_pointer.is_file():
            return None
        return json.loads(self.embedder_pointer.read_text())

    def load_embedder(self, device: str = "cpu"):
        """The recorded embedder, loaded once per pool object; raises if none is recorded or it changed on disk."""
        info = self.embedder_info()
        if info is None:
            raise LookupError(f"pool {self.root} has no embedder recorded at {self.embedder_pointer}: "
                              f"materialize the `embedder` asset first (it trains one or loads a checkpoint)")
        cached = self.__dict__.get("_embedder")
        if cached is not None and cached.fingerprint == info["fingerprint"]:
            return cached
        from retrieval.embedder import load_embedder

        emb = load_embedder(info["path"], model_name=info.get("model_name") or None, device=device)
        if emb.fingerprint != info["fingerprint"]:
            raise ValueError(f"the embedder at {info['path']} has fingerprint {emb.fingerprint[:16]}, but the pool "
                             f"recorded {info['fingerprint'][:16]}: rematerialize `embedder`")
        self._embedder = emb
        return emb

    def mark_seen(self, embedder, ids: list[str], iteration: int) -> int:
        """Record that these images were handed out in ``iteration`` (filter: seen_iteration)."""
        return self.vector_index(embedder).mark_seen(ids, iteration)
