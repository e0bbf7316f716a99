"""Tests for retrieval.vector_index.VectorIndex: exact search, filters, append-only upserts, IVF-PQ recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.vector_index import IVF_THRESHOLD, NEVER_SEEN, VectorIndex

SOURCES = np.array(["procedural", "skimage", "folder"])


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, seed: int, clusters: int = 50) -> np.ndarray:
    """Gaussian mixture on the sphere; the centres are fixed, so queries share the data's clusters."""
    centres = np.random.default_rng(12345).standard_normal((clusters, dim))
    rng = np.random.default_rng(seed)
    return unit(centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, dim)))


def numpy_topk(X: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[int]:
    s = X @ q
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    return [int(i) for i in np.argsort(-s, kind="stable")[:k]]


@pytest.fixture()
def small(tmp_path: Path):
    X = clustered(400, 32, seed=0)
    ids = [f"img{i}" for i in range(len(X))]
    source = SOURCES[np.arange(len(X)) % 3]
    difficulty = np.arange(len(X)) % 5 + 1
    index = VectorIndex(tmp_path / "db", "emb", fingerprint="fp-a")
    index.upsert_missing(ids, X, {"source": source.tolist(), "difficulty": difficulty.tolist()})
    return index, X, ids, source, difficulty


def test_exact_search_returns_true_neighbours(small):
    index, X, ids, _, _ = small
    assert index.count() == 400 and index.dim == 32 and not index.has_vector_index()
    rng = np.random.default_rng(1)
    for q in unit(rng.standard_normal((5, 32))):
        hits = index.search(q, k=10)
        assert [h[0] for h in hits] == [ids[i] for i in numpy_topk(X, q, 10)]
        np.testing.assert_allclose([h[1] for h in hits], np.sort(X @ q)[::-1][:10], atol=1e-5)
    # a stored vector finds itself with similarity 1
    (top,) = index.search(X[17], k=1)
    assert top[0] == "img17" and top[1] == pytest.approx(1.0, abs=1e-5)


def test_filters_on_source_difficulty_and_seen(small):
    index, X, ids, source, difficulty = small
    q = X[3]
    for where, mask in [("source = 'skimage'", source == "skimage"),
                        ("difficulty >= 4 AND source = 'folder'", (difficulty >= 4) & (source == "folder"))]:
        hits = index.search(q, k=7, where=where)
        assert [h[0] for h in hits] == [ids[i] for i in numpy_topk(X, q, 7, mask)]
    assert index.count("source = 'skimage'") == int((source == "skimage").sum())

    assert index.count(f"seen_iteration = {NEVER_SEEN}") == 400
    assert index.mark_seen(["img3", "img4", "no-such-id"], iteration=2) == 2
    assert index.count("seen_iteration = 2") == 2
    unseen = index.search(q, k=5, where="seen_iteration = -1")
    assert "img3" not in {h[0] for h in unseen} and len(unseen) == 5
    # mark_seen changed metadata only: same rows, same vectors
    assert index.count() == 400
    row = index.rows("id = 'img3'", with_vectors=True)
    np.testing.assert_array_equal(row["vector"][0], X[3])


def _data_files(index: VectorIndex) -> dict[str, tuple[int, int]]:
    data = Path(index.table.uri) / "data"
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in data.iterdir()}


def test_upsert_appends_only_missing_ids(small):
    index, X, ids, _, _ = small
    version, files = index.version(), _data_files(index)
    assert index.table.stats()["fragment_stats"]["num_fragments"] == 1

    # all known: nothing written, not even a new version
    again = index.upsert_missing(ids, np.full_like(X, 1 / np.sqrt(32)))  # other vectors, same ids
    assert (again.added, again.skipped_existing) == (0, 400) and index.version() == version

    extra = clustered(50, 32, seed=9)
    mixed_ids = ids[:100] + [f"new{i}" for i in range(50)]
    report = index.upsert_missing(mixed_ids, np.concatenate([-X[:100], extra]),
                                  [{"source": "web", "difficulty": 2}] * 150)
    assert (report.added, report.skipped_existing) == (50, 100)
    assert index.count() == 450 and len(set(index.ids())) == 450
    assert index.version() == version + 1 == report.version
    assert index.table.stats()["fragment_stats"]["num_fragments"] == 2
    after = _data_files(index)
    assert all(after[name] == stat for name, stat in files.items())  # old data files untouched
    assert len(after) == len(files) + 1
    # the existing rows kept their original vectors and metadata
    rows = index.rows("id IN ('img0', 'img1')", with_vectors=True).set_index("id")
    np.testing.assert_array_equal(rows.loc["img0", "vector"], X[0])
    assert rows.loc["img1", "source"] == "skimage"
    assert index.count("source = 'web'") == 50


def test_one_embedder_per_table_and_bad_input(small, tmp_path):
    index, X, ids, _, _ = small
    with pytest.raises(ValueError, match="another embedder"):
        VectorIndex(index.db, "emb", fingerprint="fp-b")
    reopened = VectorIndex(index.db, "emb", fingerprint="fp-a")
    assert reopened.count() == 400 and reopened.dim == 32
    with pytest.raises(ValueError, match="32-d"):
        index.upsert_missing(["z"], np.ones((1, 16), np.float32))
    with pytest.raises(ValueError, match="duplicate"):
        index.upsert_missing(["z", "z"], X[:2])
    with pytest.raises(ValueError, match="NaN"):
        index.upsert_missing(["z"], np.full((1, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match="meta column 'difficulty'"):
        index.upsert_missing(["z"], X[:1], {"difficulty": [1, 2]})
    with pytest.raises(ValueError, match="unknown meta"):
        index.upsert_missing(["z"], X[:1], {"colour": ["red"]})
    with pytest.raises(ValueError, match="query has 8 dims"):
        index.search(np.ones(8, np.float32))
    empty = VectorIndex(tmp_path / "db2", "nothing")
    assert empty.count() == 0 and empty.contains(["a"]) == set()
    with pytest.raises(LookupError, match="empty"):
        empty.search(np.ones(4, np.float32))
    assert index.build_index().kind == "flat"  # below the IVF threshold: exact search


def test_contains_by_lookup_and_by_scan(small):
    index, _, ids, _, _ = small
    assert index.contains(["img5", "nope"]) == {"img5"}  # few ids: IN queries
    assert index.contains(ids + ["nope"]) == set(ids)  # many: one scan


def test_ivf_pq_with_refine_recall_at_10(tmp_path):
    n, dim = 20_000, 64
    X = clustered(n, dim, seed=3, clusters=200)
    index = VectorIndex(tmp_path / "db", "big", fingerprint="fp")
    ids = [f"v{i}" for i in range(n)]
    difficulty = (np.arange(n) % 5 + 1)
    for lo in range(0, n, 5000):
        index.upsert_missing(ids[lo:lo + 5000], X[lo:lo + 5000], {"difficulty": difficulty[lo:lo + 5000]})
    assert n >= IVF_THRESHOLD
    report = index.build_index()
    assert report.kind == "ivf_pq" and index.has_vector_index()
    assert index.build_index().kind == "kept"

    Q = clustered(50, dim, seed=4, clusters=200)
    recall = np.mean([len({h[0] for h in index.search(q, k=10, nprobes=8, refine_factor=10)}
                          & {ids[i] for i in numpy_topk(X, q, 10)}) / 10 for q in Q])
    assert recall >= 0.9, recall
    # refined scores are exact cosine similarities
    hits = index.search(Q[0], k=3, nprobes=8, refine_factor=10)
    np.testing.assert_allclose([s for _, s in hits], [float(X[int(i[1:])] @ Q[0]) for i, _ in hits], atol=1e-5)

    # a filter matching 3 rows still returns all 3 (the search widens beyond nprobes)
    few = ["v10", "v5000", "v19999"]
    hits = index.search(Q[0], k=5, where=f"id IN ({', '.join(repr(i) for i in few)})", nprobes=1)
    assert sorted(h[0] for h in hits) == sorted(few)

    # rows added after the build are searched too (exhaustively) until a rebuild
    index.upsert_missing(["late"], Q[1:2])
    assert index.search(Q[1], k=1)[0][0] == "late"
    assert index.build_index().kind == "kept"  # 1 new row is below the retrain fraction
