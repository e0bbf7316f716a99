"""A LanceDB vector table of image embeddings with metadata filters, for text->image search.

Sits between the embedder (``retrieval.embedder``) and the Searcher: the pool embeds its
images into a ``VectorIndex`` (one table per embedder fingerprint, see
``ImagePool.embed``), and a text query's vector is searched here, optionally filtered by
source, difficulty or the iteration an image was last handed out in.  Rows are::

    id (str), vector (fixed_size_list<float32>[dim]), source (str), difficulty (int32),
    seen_iteration (int32, -1 = never), fingerprint (str: the embedder's)

Usage::

    index = VectorIndex("data/pool/lancedb", "embeddings_ab12", fingerprint=emb.fingerprint)
    index.upsert_missing(ids, vectors, {"source": sources, "difficulty": difficulties})
    index.build_index()                  # IVF-PQ once >= 10,000 rows, else exact search
    hits = index.search(emb.embed_texts(["a red star"])[0], k=5, where="difficulty >= 3")
    index.mark_seen([hits[0][0]], iteration=4)

Writes are append-only: ``upsert_missing`` adds rows only for ids the table lacks, as new
fragments, and never rewrites existing data files (``mark_seen`` is the one update: Lance
writes the changed rows anew and marks the old ones deleted).  Search uses cosine
similarity (= inner product on the embedders' L2-normalised vectors); with an IVF-PQ index
the top ``k * refine_factor`` candidates by PQ distance are re-ranked with the exact
vectors, so returned scores are exact.  Rows appended after the index was built are
searched exhaustively until ``build_index`` retrains.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import Bitmap, BTree, IvfPq

VECTOR = "vector"
VECTOR_INDEX = "vector_idx"  # LanceDB's default name for an index on column "vector"
META_COLUMNS = ("source", "difficulty", "seen_iteration")
NEVER_SEEN = -1
IVF_THRESHOLD = 10_000
ROWS_PER_PARTITION = 4096
# On 1M x 512-d vectors (244 partitions) 16 probes with refine 10 gave recall@10 0.985 at
# ~9 ms p50; 8 probes 0.980 at ~7-9 ms (docs/benchmarks.md, "Retrieval (LanceDB)").
DEFAULT_NPROBES = 16
DEFAULT_REFINE = 10
_IN_CHUNK = 1000


def sql_str(value: str) -> str:
    """Quote a string literal for a LanceDB filter ('it''s')."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"


def index_schema(dim: int) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field(VECTOR, pa.list_(pa.float32(), dim), nullable=False),
        pa.field("source", pa.string()),
        pa.field("difficulty", pa.int32()),
        pa.field("seen_iteration", pa.int32()),
        pa.field("fingerprint", pa.string()),
    ])


@dataclass
class UpsertReport:
    """``added`` new rows, ``skipped_existing`` ids already present; ``version`` after the write."""

    added: int
    skipped_existing: int
    seconds: float
    version: int


@dataclass
class IndexReport:
    """What ``build_index`` did: ``kind`` is "flat" (too few rows: exact search),
    "ivf_pq" (built now) or "kept" (an index exists and covers enough rows)."""

    kind: str
    rows: int
    seconds: float
    unindexed_rows: int = 0
    num_partitions: int | None = None
    num_sub_vectors: int | None = None


@dataclass
class EmbedReport:
    """Outcome of ``ImagePool.embed``: images embedded now vs already in the table."""

    embedded_new: int
    skipped_existing: int
    seconds: float
    table: str = ""
    fingerprint: str = ""
    index: IndexReport | None = None


class VectorIndex:
    """One LanceDB table of vectors for one embedder fingerprint.

    ``db`` is a directory (connected with ``lancedb.connect``) or an open connection.
    The table is created on the first ``upsert_missing`` (its dimension comes from the
    vectors, or ``dim``).  Opening a table that holds another fingerprint's vectors
    raises: vectors of different embedders are not comparable, so each gets its table.
    """

    def __init__(self, db: str | os.PathLike | lancedb.DBConnection, table_name: str,
                 fingerprint: str = "", dim: int | None = None,
                 ivf_threshold: int = IVF_THRESHOLD) -> None:
        self.db = lancedb.connect(os.fspath(db)) if isinstance(db, (str, os.PathLike)) else db
        self.table_name = table_name
        self.fingerprint = fingerprint
        self.ivf_threshold = ivf_threshold
        self._table = None
        self._dim = dim
        try:
            self._table = self.db.open_table(table_name)
        except ValueError as e:  # LanceDB: "Table '...' was not found"
            if "not found" not in str(e):
                raise
        if self._table is not None:
            self._check_table()

    def _check_table(self) -> None:
        schema = self._table.schema
        expected = index_schema(1).names
        missing = [c for c in expected if c not in schema.names]
        vtype = schema.field(VECTOR).type if VECTOR in schema.names else None
        if missing or not pa.types.is_fixed_size_list(vtype):
            raise ValueError(f"table {self.table_name!r} is not a vector index: missing {missing}, "
                             f"vector type {vtype}")
        dim = vtype.list_size
        if self._dim is not None and self._dim != dim:
            raise ValueError(f"table {self.table_name!r} holds {dim}-d vectors, not {self._dim}-d")
        self._dim = dim
        others = self._table.count_rows(f"fingerprint != {sql_str(self.fingerprint)}")
        if others:
            raise ValueError(f"table {self.table_name!r} holds {others} vectors of another embedder than "
                             f"fingerprint {self.fingerprint[:16]!r}; use one table per embedder")

    # ------------------------------------------------------------------ inspection

    @property
    def table(self):
        """The LanceDB table (None until the first rows are written)."""
        return self._table

    @property
    def dim(self) -> int | None:
        return self._dim

    def count(self, where: str | None = None) -> int:
        if self._table is None:
            return 0
        return self._table.count_rows(where) if where else self._table.count_rows()

    def ids(self) -> list[str]:
        if not self.count():
            return []
        return self._table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist()

    def contains(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` that already has a row."""
        ids = list(ids)
        n = self.count()
        if not ids or not n:
            return set()
        if len(ids) * 10 >= n:  # asking about a large share: one scan of the id column
            wanted = set(ids)
            return {i for i in self.ids() if i in wanted}
        found: set[str] = set()
        for i in range(0, len(ids), _IN_CHUNK):
            rows = self._table.search().where(sql_in("id", ids[i:i + _IN_CHUNK])).select(["id"]).limit(None)
            found.update(rows.to_arrow().column("id").to_pylist())
        return found

    def rows(self, where: str | None = None, with_vectors: bool = False):
        """Rows (all, or matching a filter) as a DataFrame; vectors only if asked."""
        if self._table is None:
            raise LookupError(f"vector table {self.table_name!r} does not exist yet (nothing embedded)")
        cols = index_schema(1).names if with_vectors else [c for c in index_schema(1).names if c != VECTOR]
        query = self._table.search().select(cols)
        if where:
            query = query.where(where)
        return query.limit(None).to_pandas()

    def has_vector_index(self) -> bool:
        return self._table is not None and any(VECTOR in ix.columns for ix in self._table.list_indices())

    def version(self) -> int:
        return self._table.version if self._table is not None else 0

    # ------------------------------------------------------------------ writing

    def upsert_missing(self, ids: Sequence[str], vectors: np.ndarray,
                       meta: Mapping[str, Sequence] | Sequence[Mapping] | None = None) -> UpsertReport:
        """Append rows for the ids not yet in the table; existing rows are left untouched.

        ``meta`` gives per-row ``source`` (default ""), ``difficulty`` (0) and
        ``seen_iteration`` (-1), as a dict of columns or a list of dicts.
        """
        t0 = time.monotonic()
        ids = [str(i) for i in ids]
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(ids):
            raise ValueError(f"vectors must be (len(ids)={len(ids)}, dim), got shape {vecs.shape}")
        if self._dim is not None and vecs.shape[1] != self._dim:
            raise ValueError(f"table {self.table_name!r} holds {self._dim}-d vectors, got {vecs.shape[1]}-d")
        if not np.isfinite(vecs).all():
            raise ValueError("vectors contain NaN or inf")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one upsert_missing call")
        cols = _meta_columns(meta, len(ids))
        existing = self.contains(ids)
        keep = [i for i, id_ in enumerate(ids) if id_ not in existing]
        if keep:
            dim = vecs.shape[1]
            arrays = [
                pa.array([ids[i] for i in keep], pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(vecs[keep].ravel(), pa.float32()), dim),
                pa.array([cols["source"][i] for i in keep], pa.string()),
                pa.array([cols["difficulty"][i] for i in keep], pa.int32()),
                pa.array([cols["seen_iteration"][i] for i in keep], pa.int32()),
                pa.array([self.fingerprint] * len(keep), pa.string()),
            ]
            data = pa.Table.from_arrays(arrays, schema=index_schema(dim))
            if self._table is None:
                self._table = self.db.create_table(self.table_name, data=data)
                self._dim = dim
            else:
                self._table.add(data)
        return UpsertReport(added=len(keep), skipped_existing=len(existing),
                            seconds=time.monotonic() - t0, version=self.version())

    def mark_seen(self, ids: Sequence[str], iteration: int) -> int:
        """Set ``seen_iteration`` of these ids to ``iteration``; returns how many rows matched."""
        if self._table is None or not ids:
            return 0
        ids = list(dict.fromkeys(str(i) for i in ids))
        matched = 0
        for i in range(0, len(ids), _IN_CHUNK):
            where = sql_in("id", ids[i:i + _IN_CHUNK])
            matched += self._table.count_rows(where)
            self._table.update(where=where, values={"seen_iteration": int(iteration)})
        return matched

    def build_index(self, force: bool = False, num_partitions: int | None = None,
                    num_sub_vectors: int | None = None, max_iterations: int = 20,
                    retrain_fraction: float = 0.2) -> IndexReport:
        """Create the IVF-PQ index once the table has ``ivf_threshold`` rows.

        Below the threshold nothing is built: LanceDB's exhaustive search is exact and
        fast at that size.  An existing index is rebuilt when ``force`` or when rows
        added since exceed ``retrain_fraction`` of the indexed ones (they are searched
        exhaustively meanwhile, so results stay correct, only slower).  Scalar indexes on
        id (BTree) and the filter columns (Bitmap / BTree) are built alongside.
        """
        t0 = time.monotonic()
        n = self.count()
        if n < self.ivf_threshold:
            return IndexReport("flat", n, time.monotonic() - t0)
        if self.has_vector_index() and not force:
            stats = self._table.index_stats(VECTOR_INDEX)
            unindexed = stats.num_unindexed_rows if stats else 0
            if unindexed <= retrain_fraction * max(1, n - unindexed):
                return IndexReport("kept", n, time.monotonic() - t0, unindexed_rows=unindexed)
        # ~4k rows per partition: k-means trains on 256 samples per partition, so its cost
        # grows with the square of the partition count (sqrt(n) = 1,000 partitions at 1M
        # rows took many minutes on 2 cores); 16 probes then scan ~64k PQ codes.
        parts = num_partitions or max(16, n // ROWS_PER_PARTITION)
        # 8 dims per sub-vector (1 byte per 8 float32 dims): PQ accurate enough that
        # refine_factor ~10 recovers the exact top-k; must divide the dimension.
        subs = num_sub_vectors or _sub_vectors(self._dim)
        # max_iterations bounds both k-means runs (IVF centroids and the PQ codebooks);
        # 20 instead of LanceDB's 50 cut the build ~3x at no visible recall cost after refine.
        self._table.create_index(VECTOR, config=IvfPq(distance_type="cosine", num_partitions=parts,
                                                      num_sub_vectors=subs, max_iterations=max_iterations),
                                 replace=True)
        self._table.create_index("id", config=BTree(), replace=True)
        self._table.create_index("source", config=Bitmap(), replace=True)
        self._table.create_index("difficulty", config=Bitmap(), replace=True)
        self._table.create_index("seen_iteration", config=BTree(), replace=True)
        return IndexReport("ivf_pq", n, time.monotonic() - t0, num_partitions=parts, num_sub_vectors=subs)

    # ------------------------------------------------------------------ searching

    def search(self, query_vec: np.ndarray, k: int = 5, where: str | None = None,
               nprobes: int = DEFAULT_NPROBES, refine_factor: int | None = DEFAULT_REFINE,
               exact: bool = False) -> list[tuple[str, float]]:
        """Top-k (id, cosine similarity), best first; ``where`` is a LanceDB SQL filter.

        The filter is applied before the vector search (prefilter), and with an index the
        search may probe beyond ``nprobes`` partitions until k matching rows are found, so
        a narrow filter still returns k hits when k rows match.  ``exact`` bypasses the
        index (ground truth; also what happens below the IVF threshold).
        """
        if self._table is None:  # created on the first non-empty upsert, so never empty
            raise LookupError(f"vector table {self.table_name!r} is empty: embed something first")
        q = np.asarray(query_vec, dtype=np.float32).reshape(-1)
        if q.shape[0] != self._dim:
            raise ValueError(f"query has {q.shape[0]} dims, table {self.table_name!r} holds {self._dim}-d vectors")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        res = self._query(q, k, where, nprobes, refine_factor, exact, widen=False)
        if where and not exact and res.num_rows < k and self.has_vector_index():
            # A narrow filter can leave fewer than k matches in the probed partitions: widen
            # to as many partitions as needed.  Not done up front: it tripled the latency
            # of ordinary filters (difficulty = 3 on 20% of rows) that fill k from nprobes.
            res = self._query(q, k, where, nprobes, refine_factor, exact, widen=True)
        # cosine distance = 1 - cosine similarity
        return [(i, 1.0 - float(d)) for i, d in zip(res.column("id").to_pylist(),
                                                     res.column("_distance").to_pylist())]


    def _query(self, q: np.ndarray, k: int, where: str | None, nprobes: int, refine_factor: int | None,
               exact: bool, widen: bool) -> pa.Table:
        query = (self._table.search(q, vector_column_name=VECTOR).distance_type("cosine")
                 .select(["id", "_distance"]).limit(k))
        if exact:
            query = query.bypass_vector_index()
        else:
            query = query.minimum_nprobes(nprobes).maximum_nprobes(0 if widen else nprobes)
            if refine_factor and refine_factor > 1:
                query = query.refine_factor(refine_factor)
        if where:
            query = query.where(where, prefilter=True)
        return query.to_arrow()


def _sub_vectors(dim: int) -> int:
    for per in (8, 16, 4, 2, 1):
        if dim % per == 0:
            return dim // per
    return 1


def _meta_columns(meta, n: int) -> dict[str, list]:
    defaults = {"source": "", "difficulty": 0, "seen_iteration": NEVER_SEEN}
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):  # a list of per-row dicts
        rows = list(meta)
        if len(rows) != n:
            raise ValueError(f"meta has {len(rows)} rows for {n} ids")
        meta = {c: [r.get(c, defaults[c]) for r in rows] for c in META_COLUMNS}
    unknown = set(meta) - set(META_COLUMNS)
    if unknown:
        raise ValueError(f"unknown meta columns {sorted(unknown)}; expected some of {META_COLUMNS}")
    cols = {}
    for c in META_COLUMNS:
        values = meta.get(c)
        if values is None:
            values = [defaults[c]] * n
        values = list(values)
        if len(values) != n:
            raise ValueError(f"meta column {c!r} has {len(values)} values for {n} ids")
        cols[c] = [str(v) for v in values] if c == "source" else [int(v) for v in values]
    return cols
