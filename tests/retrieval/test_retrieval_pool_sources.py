"""Pool sources beyond folders: existing webdataset shards and benchmark-style files (images, never answers)."""

import base64
import io

import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

import evaluation.pool_source  # noqa: F401  (registers the "benchmark" source)
from retrieval.pool import ImagePool
from retrieval.sources import Rejected, build_source


def _png(color, size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_shards_source_reads_samples_and_rejects_bad_ones(tmp_path):
    path = tmp_path / "team-000000.tar"
    with wds.TarWriter(str(path)) as sink:
        sink.write({"__key__": "a", "png": _png("red"), "txt": "a red square"})
        sink.write({"__key__": "b", "jpg": _png("blue"), "json": b'{"caption": "a blue square"}'})
        sink.write({"__key__": "c", "png": _png("red"), "txt": "the same red square again"})  # same bytes: one row
        sink.write({"__key__": "d", "png": _png("green")[:40], "txt": "truncated"})
        sink.write({"__key__": "e", "txt": "no image at all"})
        sink.write({"__key__": "f", "png": _png("white"), "txt": "caf\xe9".encode("latin1")})  # not UTF-8
    items = list(build_source("shards", urls=[str(path)]).iter_items())
    good = [i for i in items if not isinstance(i, Rejected)]
    bad = {i.ref.rsplit(":", 1)[1]: i.reason for i in items if isinstance(i, Rejected)}
    assert [g.caption for g in good] == ["a red square", "a blue square", "the same red square again"]
    assert good[0].id == good[2].id and good[0].image.getpixel((0, 0)) == (255, 0, 0)
    assert set(bad) == {"d", "e", "f"}
    assert ("corrupt or truncated" in bad["d"] or "not a recognised image" in bad["d"]) and "no image member" in bad["e"] and "not UTF-8" in bad["f"]

    pool = ImagePool(tmp_path / "pool")
    report = pool.add(iter(items), quarantine_dir=tmp_path / "quarantine")
    assert pool.count() == 2 and report.added == 2 and len(report.rejections) == 3
    assert len(list((tmp_path / "quarantine").glob("*.reason.json"))) == 3


def test_benchmark_files_give_images_and_questions_but_never_answers(tmp_path):
    rows = [
        {"index": 0, "image": base64.b64encode(_png("red")).decode(), "question": "What color is it?", "answer": "red",
         "A": "red", "B": "blue"},
        {"index": 1, "image": "0", "question": "Is it a square?", "answer": "yes"},  # a reference to row 0's image
        {"index": 2, "image": base64.b64encode(_png("blue")).decode(), "question": "Which shape?", "answer": "square"},
    ]
    tsv = tmp_path / "Mini.tsv"
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    items = list(build_source("benchmark", spec=f"Mini={tsv}").iter_items())
    assert len(items) == 2  # row 1 shares row 0's image
    assert [i.caption for i in items] == ["What color is it?", "Which shape?"]
    text = " ".join(f"{i.caption} {i.meta}" for i in items)
    assert "answer" not in str([i.meta for i in items]) and "square" not in text.replace("Which shape?", "")
    assert all(i.meta["benchmark"] == "Mini" for i in items)
    with pytest.raises(ValueError, match="NAME=PATH"):
        build_source("benchmark", spec="Mini")


def test_shards_source_skips_special_and_linked_shards(tmp_path):
    import os
    import threading

    good = tmp_path / "good-000000.tar"
    with wds.TarWriter(str(good)) as sink:
        sink.write({"__key__": "a", "png": _png("red"), "txt": "red"})
    os.mkfifo(tmp_path / "good-000001.tar")          # a FIFO would block the reader forever
    (tmp_path / "good-000002.tar").symlink_to(good)  # a link is never followed
    out: list = []
    t = threading.Thread(target=lambda: out.append(list(build_source(
        "shards", urls=[str(tmp_path / "good-{000000..000002}.tar")]).iter_items())), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the shards source blocked on a FIFO"
    items = out[0]
    rejected = {i.ref.rsplit("/", 1)[-1]: i.reason for i in items if isinstance(i, Rejected)}
    assert [i.caption for i in items if not isinstance(i, Rejected)] == ["red"]
    assert "FIFO" in rejected["good-000001.tar"] and "symbolic link" in rejected["good-000002.tar"]
