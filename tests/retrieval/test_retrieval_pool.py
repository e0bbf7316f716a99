"""Tests for retrieval.pool.ImagePool: add/report, LanceDB table, idempotence, lookups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from retrieval.pool import SCHEMA, ImagePool
from retrieval.shards import sha256_file
from retrieval.sources import ImageRecord, Rejected, build_source


def inputs(folder: Path) -> list:
    items = list(build_source("procedural", n=15, seed=0).iter_items())
    items += list(build_source("skimage", names=["astronaut", "coffee", "camera"], max_side=64).iter_items())
    items += list(build_source("folder", root=folder).iter_items())
    return items


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "user"
    root.mkdir()
    Image.new("RGB", (300, 100), (10, 200, 30)).save(root / "green_banner.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


@pytest.fixture()
def pool(tmp_path: Path, folder: Path) -> tuple[ImagePool, list, object]:
    p = ImagePool(tmp_path / "pool", maxcount=8)
    items = inputs(folder)
    report = p.add(items, quarantine_dir=tmp_path / "q")
    return p, items, report


def test_add_reports_and_quarantines(pool, tmp_path: Path):
    p, items, report = pool
    n_ok = sum(isinstance(i, ImageRecord) for i in items)
    assert (report.added, report.rejected, report.duplicates) == (n_ok, 1, 0) == (19, 1, 0)
    assert report.by_source["procedural"]["added"] == 15
    assert report.by_source["skimage"]["added"] == 3
    assert report.by_source["folder"] == {"added": 1, "rejected": 1, "duplicates": 0}
    (rej,) = report.rejections
    assert rej["ref"] == "broken.jpg" and Path(rej["quarantine"]).is_file()
    assert (tmp_path / "q").is_dir() and len(list((tmp_path / "q").iterdir())) == 2  # copy + reason
    assert report.shards == ["pool-000000.tar", "pool-000001.tar", "pool-000002.tar"]


def test_table_contents(pool):
    p, items, _ = pool
    records = [i for i in items if isinstance(i, ImageRecord)]
    df = p.records()
    assert list(df.columns) == SCHEMA.names and p.count() == len(df) == len(records)
    assert str(df["difficulty"].dtype) == "int32" and str(df["width"].dtype) == "int32"
    assert p.count("source = 'procedural'") == 15
    assert set(p.records("source = 'skimage'")["id"]) == {"skimage:astronaut", "skimage:coffee", "skimage:camera"}
    expect_d2 = {r.id for r in records if r.difficulty == 2}
    assert set(p.records("difficulty = 2")["id"]) == expect_d2 and expect_d2
    row = df.set_index("id").loc["skimage:coffee"]
    assert (row["width"], row["height"]) == (64, 43) and row["kind"] == ""
    by_id = {r.id: r for r in records}
    for _, r in p.records("source = 'procedural'").iterrows():
        assert r["kind"] == by_id[r["id"]].meta["kind"]
        assert json.loads(r["meta_json"])["scene"] == by_id[r["id"]].meta["scene"]
        assert (p.shard_dir / r["shard"]).is_file()


def test_re_add_is_idempotent(pool, tmp_path: Path, folder: Path):
    p, _, _ = pool
    hashes = {s.name: sha256_file(s) for s in p.shards()}
    again = p.add(inputs(folder), quarantine_dir=tmp_path / "q2")
    assert (again.added, again.duplicates, again.shards) == (0, 19, [])
    assert p.count() == 19 and {s.name: sha256_file(s) for s in p.shards()} == hashes
    more = p.add(build_source("procedural", n=20, seed=0).iter_items())  # 15 known + 5 new
    assert (more.added, more.duplicates, more.shards) == (5, 15, ["pool-000003.tar"])
    assert ImagePool(p.root).count() == 24  # reopened from disk


def test_lookups_and_sampling(pool):
    p, items, _ = pool
    for rec in items:
        if isinstance(rec, ImageRecord):
            assert p.get_image(rec.id).tobytes() == rec.image.tobytes()
    back = p.get_record("skimage:astronaut")
    assert back.caption == "astronaut eileen collins" and back.meta["function"] == "skimage.data.astronaut"
    with pytest.raises(KeyError, match="no image with id"):
        p.get_image("nope' OR '1'='1")
    s1, s2 = p.sample(5, seed=3), p.sample(5, seed=3)
    assert s1 == s2 and len(set(s1)) == 5 and p.sample(5, seed=4) != s1
    only = p.sample(3, seed=0, where="source = 'skimage'")
    assert set(only) <= {"skimage:astronaut", "skimage:coffee", "skimage:camera"} and len(set(only)) == 3
    with pytest.raises(ValueError, match="cannot sample 4"):
        p.sample(4, seed=0, where="source = 'skimage'")


def test_ids_with_quotes(tmp_path: Path):
    p = ImagePool(tmp_path / "pool")
    img = Image.new("RGB", (5, 5), (9, 9, 9))
    report = p.add([ImageRecord("it's/odd id", "test", img, "c", 1), Rejected("test", "r", "bad", None)])
    assert (report.added, report.rejected) == (1, 1)
    assert p.get_image("it's/odd id").tobytes() == img.tobytes()
    assert (tmp_path / "pool" / "quarantine").is_dir()
