"""Tests for retrieval.shards: round trip, atomic naming, append-only, random access."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.shards import load_image, read_shards, sha256_file, shard_key, write_shards
from retrieval.sources import ImageRecord, build_source


def world_records(n: int, seed: int = 0) -> list[ImageRecord]:
    return list(build_source("procedural", n=n, seed=seed).iter_items())


def odd_record() -> ImageRecord:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8), "RGB")
    return ImageRecord("folder:some/dir/it's a.photo.jpg", "folder", img, "ünïcode caption", 3,
                       {"path": "/x/y.jpg", "nested": {"a": [1, 2]}})


def test_round_trip_pixels_and_metadata(tmp_path: Path):
    recs = world_records(12) + [odd_record()]
    infos = write_shards(recs, tmp_path, maxcount=5)
    assert [i.count for i in infos] == [5, 5, 3]
    back = list(read_shards([i.path for i in infos]))
    assert [r.id for r in back] == [r.id for r in recs]
    for a, b in zip(recs, back):
        assert b.image.mode == "RGB" and b.image.size == a.image.size
        assert b.image.tobytes() == a.image.tobytes()
        assert (b.source, b.caption, b.difficulty, b.meta) == (a.source, a.caption, a.difficulty, a.meta)


def test_keys_are_safe_and_unique():
    ids = ["a/b", "a_b", "a.b", "x y", "ok-id_1", "folder:abc"]
    keys = [shard_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", k) for k in keys)
    assert shard_key("ok-id_1") == "ok-id_1"  # clean ids stay readable


def test_atomic_names_and_hashes(tmp_path: Path):
    infos = write_shards(world_records(7), tmp_path, prefix="pool", maxcount=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["pool-000000.tar", "pool-000001.tar", "pool-000002.tar"]
    assert not list(tmp_path.glob("*.tmp"))
    for info in infos:
        assert info.sha256 == sha256_file(info.path)
        with tarfile.open(info.path) as tar:
            assert len(tar.getnames()) == 2 * info.count  # png + json per sample


def test_failure_mid_shard_leaves_no_partial_file(tmp_path: Path):
    def exploding():
        yield from world_records(4)
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError, match="source died"):
        write_shards(exploding(), tmp_path, maxcount=3)
    # The full first shard is kept; the half-written second one is gone, tmp included.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool-000000.tar"]


def test_append_keeps_old_shards(tmp_path: Path):
    first = write_shards(world_records(6, seed=0), tmp_path, maxcount=4)
    before = {i.path.name: sha256_file(i.path) for i in first}
    second = write_shards(world_records(3, seed=1), tmp_path, maxcount=4)
    assert [i.path.name for i in second] == ["pool-000002.tar"]
    assert {n: sha256_file(tmp_path / n) for n in before} == before
    assert len(list(read_shards(sorted(tmp_path.glob("pool-*.tar"))))) == 9


def test_deterministic_bytes(tmp_path: Path):
    a = write_shards(world_records(5), tmp_path / "a")
    b = write_shards(world_records(5), tmp_path / "b")
    assert [i.sha256 for i in a] == [i.sha256 for i in b]


def test_empty_input_writes_nothing(tmp_path: Path):
    assert write_shards([], tmp_path) == [] and not list(tmp_path.iterdir())


def test_rejects_bad_input(tmp_path: Path):
    rec = world_records(1)[0]
    with pytest.raises(ValueError, match="duplicate"):
        write_shards([rec, rec], tmp_path / "dup")
    with pytest.raises(TypeError, match="ImageRecord"):
        write_shards(["not a record"], tmp_path / "type")
    assert not list((tmp_path / "dup").glob("*.tmp"))
    with pytest.raises(FileNotFoundError, match="shard not found"):
        list(read_shards([tmp_path / "missing.tar"]))


def test_load_image_by_key(tmp_path: Path):
    recs = world_records(4) + [odd_record()]
    (info,) = write_shards(recs, tmp_path)
    for rec, key in zip(recs, info.keys):
        assert key == shard_key(rec.id)
        assert load_image(info.path, key).tobytes() == rec.image.tobytes()
    with pytest.raises(KeyError, match="no image with key"):
        load_image(info.path, "nope")
