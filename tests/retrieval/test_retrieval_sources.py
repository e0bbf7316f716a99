"""Tests for retrieval.sources: registry, procedural/folder/skimage sources, quarantine."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.sources import (
    ImageRecord,
    ImageSource,
    Rejected,
    available_sources,
    build_source,
    quarantine,
    register_source,
)
from retrieval.sources.base import to_rgb
from retrieval.sources.procedural import scene_to_world_image
from retrieval.world import generate
from retrieval.world.tasks import make_tasks


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height: decompression-bomb shaped, tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.fixture()
def messy_folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), "RGB")
    (root / "big_noise.png").write_bytes(png_bytes(noise))
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))  # fully transparent
    rgba.save(root / "sub" / "clear.png")
    Image.new("RGB", (50, 60), (0, 128, 255)).save(root / "sub" / "deeper" / "sky-photo.jpg", quality=90)
    (root / "sub" / "deeper" / "sky-photo.txt").write_text("a clear blue sky\n")
    Image.new("L", (30, 30), 77).save(root / "grey.webp")
    Image.new("RGB", (10, 10), (1, 2, 3)).save(root / "tiny.BMP")
    full = png_bytes(noise)
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "fake.jpg").write_text("this is not an image at all")
    (root / "empty.png").write_bytes(b"")
    (root / "garbage.webp").write_bytes(bytes(rng.integers(0, 255, 500, dtype=np.uint8)))
    # Above our max_pixels (40M) but below PIL's own hard limit, and far above both.
    (root / "bomb.png").write_bytes(png_header_only(12000, 12000))
    (root / "huge_bomb.png").write_bytes(png_header_only(60000, 60000))
    (root / "notes.txt").write_text("not a candidate image")
    return root


def test_registry_lists_and_builds_builtins():
    assert {"procedural", "folder", "skimage"} <= set(available_sources())
    src = build_source("procedural", n=2, seed=1)
    assert isinstance(src, ImageSource) and src.name == "procedural"
    with pytest.raises(KeyError, match="registered"):
        build_source("no-such-source")


def test_register_new_source_is_one_decorator():
    @register_source("test-constant")
    class Constant(ImageSource):
        def __init__(self, k: int = 2):
            self.k = k

        def iter_items(self):
            for i in range(self.k):
                yield ImageRecord(f"c{i}", self.name, Image.new("RGB", (4, 4)), "black", 1)

    items = list(build_source("test-constant", k=3).iter_items())
    assert [i.id for i in items] == ["c0", "c1", "c2"] and items[0].source == "test-constant"

    with pytest.raises(ValueError, match="already registered"):
        @register_source("test-constant")
        class Other(ImageSource):
            def iter_items(self):
                return iter(())


def test_image_record_requires_rgb():
    with pytest.raises(ValueError, match="RGB"):
        ImageRecord("x", "s", Image.new("L", (2, 2)), "c", 1)


def test_procedural_source_carries_scene():
    items = list(build_source("procedural", n=9, seed=3, kinds=("shapes", "grids")).iter_items())
    assert len(items) == 9 and all(isinstance(i, ImageRecord) for i in items)
    assert {i.meta["kind"] for i in items} == {"shapes", "grids"}
    first = items[0]
    again = generate(first.meta["kind"], first.meta["seed"], first.difficulty)
    assert again.image.tobytes() == first.image.tobytes() and again.scene == first.meta["scene"]
    tasks = make_tasks(scene_to_world_image(first), random.Random(0))
    assert tasks and all(t.image_id == first.id for t in tasks)
    with pytest.raises(ValueError, match="unknown kinds"):
        build_source("procedural", kinds=("faces",))


def test_folder_source_records_and_rejections(messy_folder: Path, tmp_path: Path):
    items = list(build_source("folder", root=messy_folder, max_side=128).iter_items())
    records = {Path(i.meta["relpath"]).name: i for i in items if isinstance(i, ImageRecord)}
    rejected = {Path(i.ref).name: i for i in items if isinstance(i, Rejected)}
    assert set(records) == {"big_noise.png", "clear.png", "sky-photo.jpg", "grey.webp", "tiny.BMP"}
    assert set(rejected) == {"truncated.png", "fake.jpg", "empty.png", "garbage.webp", "bomb.png",
                             "huge_bomb.png"}
    assert "0 bytes" in rejected["empty.png"].reason
    assert "not a recognised image" in rejected["fake.jpg"].reason
    assert "truncated" in rejected["truncated.png"].reason
    assert "not a recognised image" in rejected["garbage.webp"].reason
    assert "bomb" in rejected["bomb.png"].reason and "12000x12000" in rejected["bomb.png"].reason
    assert "bomb" in rejected["huge_bomb.png"].reason
    assert all(r.path and Path(r.path).is_file() for r in rejected.values())

    big = records["big_noise.png"]
    assert big.image.mode == "RGB" and big.image.size == (128, 96)  # longest side capped, aspect kept
    assert records["tiny.BMP"].image.size == (10, 10)  # never upscaled
    assert records["sky-photo.jpg"].caption == "a clear blue sky"
    assert records["big_noise.png"].caption == "big noise"
    assert records["clear.png"].image.getpixel((0, 0)) == (255, 255, 255)  # alpha on white
    assert len({r.id for r in records.values()}) == 5

    # Quarantine: copies plus reason JSON; originals untouched.
    qdir = tmp_path / "quarantine"
    for name, rej in rejected.items():
        before = Path(rej.path).read_bytes()
        info = json.loads(quarantine(rej, qdir).read_text())
        assert info["reason"] == rej.reason and info["original_path"] == rej.path
        assert Path(info["quarantined_copy"]).read_bytes() == before == Path(rej.path).read_bytes()
    assert len(list(qdir.glob("*.reason.json"))) == len(rejected) == 6


def test_folder_pixel_limit_is_configurable(messy_folder: Path):
    items = list(build_source("folder", root=messy_folder, max_pixels=1000).iter_items())
    bombs = {Path(i.ref).name for i in items if isinstance(i, Rejected) and "bomb" in i.reason}
    # 400x300 and the 50x60 jpg now exceed 1000 pixels; the 10x10 bmp and 30x30 webp do not.
    assert {"big_noise.png", "sky-photo.jpg", "bomb.png", "huge_bomb.png"} <= bombs
    assert not {"tiny.BMP", "grey.webp"} & bombs


def test_folder_source_requires_directory(tmp_path: Path):
    with pytest.raises(NotADirectoryError, match="expected a directory"):
        build_source("folder", root=tmp_path / "missing")


def test_quarantine_without_file(tmp_path: Path):
    rej = Rejected("skimage", "eagle", "needs pooch", None)
    info = json.loads(quarantine(rej, tmp_path / "q").read_text())
    assert info["quarantined_copy"] is None and info["reason"] == "needs pooch"


def test_skimage_source_offline():
    items = list(build_source("skimage").iter_items())
    records = [i for i in items if isinstance(i, ImageRecord)]
    assert len(records) >= 10
    assert all(r.image.mode == "RGB" and max(r.image.size) <= 256 for r in records)
    captions = {r.id: r.caption for r in records}
    assert captions["skimage:chelsea"] == "chelsea the cat"
    bad = list(build_source("skimage", names=["astronaut", "no_such_image"]).iter_items())
    assert isinstance(bad[0], ImageRecord) and isinstance(bad[1], Rejected)
    assert "no_such_image" in bad[1].reason


def test_to_rgb_handles_modes():
    assert to_rgb(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("I;16", (2, 2), 300)).mode == "RGB"
    assert to_rgb(Image.new("CMYK", (2, 2))).mode == "RGB"


def _run_with_deadline(fn, seconds: float = 60):
    """fn() in a thread; fails instead of hanging the suite when fn blocks (a FIFO's open)."""
    import threading

    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the source blocked on a special file"
    return out[0]


def test_folder_never_follows_links_nor_opens_special_files(tmp_path: Path):
    import os
    import socket
    import stat

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8), (0, 255, 0)).save(root / "good.png")
    private = tmp_path / "private.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(private)
    os.chmod(private, 0o600)
    (root / "link.png").symlink_to(private)
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(outside / "far.png")
    (root / "sub" / "linked_dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "x.png")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock.png"))
        items = _run_with_deadline(lambda: list(build_source("folder", root=root).iter_items()))
    good = [i for i in items if isinstance(i, ImageRecord)]
    rejected = {Path(i.ref).name: i for i in items if isinstance(i, Rejected)}
    assert [Path(g.meta["relpath"]).name for g in good] == ["good.png"]  # far.png was behind a symlinked folder
    assert set(rejected) == {"link.png", "x.png", "sock.png"}
    assert "symbolic link" in rejected["link.png"].reason and "FIFO" in rejected["x.png"].reason
    assert "socket" in rejected["sock.png"].reason
    assert all(r.path is None for r in rejected.values())  # nothing to copy

    qdir = tmp_path / "q"
    for rej in rejected.values():
        info = json.loads(quarantine(rej, qdir).read_text())
        assert info["quarantined_copy"] is None
    assert sorted(p.suffix for p in qdir.iterdir()) == [".json"] * 3
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in qdir.iterdir())


def test_quarantine_copies_are_private_and_never_follow_links(tmp_path: Path):
    import os
    import stat

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    os.chmod(bad, 0o644)
    info = json.loads(quarantine(Rejected("folder", "bad.png", "not an image", str(bad)), tmp_path / "q").read_text())
    copy = Path(info["quarantined_copy"])
    assert copy.read_bytes() == b"not an image" and stat.S_IMODE(copy.stat().st_mode) == 0o600

    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    os.chmod(secret, 0o600)
    link = tmp_path / "link.png"
    link.symlink_to(secret)
    info = json.loads(quarantine(Rejected("folder", "link.png", "odd", str(link)), tmp_path / "q").read_text())
    assert info["quarantined_copy"] is None and "symbolic link" in info["copy_error"]
    assert not any(b"private" in p.read_bytes() for p in (tmp_path / "q").iterdir())
