"""Source "folder": any user folder of images (recursive), with defensive decoding.

Walks ``root`` recursively in sorted order and yields one ``ImageRecord`` per readable
``.jpg/.jpeg/.png/.webp/.bmp`` file (other extensions are not candidates and are
ignored).  Captions come from a sidecar ``<stem>.txt`` next to the image when present,
else from the file stem ("red_fox-2" -> "red fox 2").  Every failure -- zero bytes, not
an image, truncated data, pixel count above ``max_pixels`` (decompression bombs), I/O
errors -- becomes a ``Rejected`` carrying the path and reason; nothing raises and
nothing is dropped silently.  Symlinks (to files or folders) are never followed and
FIFOs, devices and sockets never opened: each is a ``Rejected`` with no path (so
nothing is copied into quarantine); see ``retrieval.sources.safe_files``.  Images are converted to RGB and downscaled so the longest
side is at most ``max_side``.  Ids are content hashes (``folder:<sha256[:16]>``), so the
same file added twice, from anywhere, is one pool entry::

    for item in build_source("folder", root="~/photos", max_side=256).iter_items(): ...
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from retrieval.sources.base import ImageRecord, ImageSource, Rejected, fit_max_side, register_source, to_rgb
from retrieval.sources.safe_files import REASONS, UnsafeFile, classify, read_regular, walk_files

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DEFAULT_MAX_PIXELS = 40_000_000  # ~6300x6300; larger inputs are treated as bombs


def caption_from_stem(stem: str) -> str:
    """'red_fox-2' -> 'red fox 2'."""
    return re.sub(r"[_\-\s]+", " ", stem).strip() or stem


def decode_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                       what: str = "file") -> tuple[Image.Image, str, tuple[int, int]] | str:
    """(RGB image, format, original size) from encoded bytes, or the reason they are unusable.

    Guards against decompression bombs before decoding and verifies the whole stream, so a truncated
    or corrupt file is a reason, never an exception or a half-black image. Shared by every source that
    reads encoded images (folders, webdataset shards).
    """
    try:
        with warnings.catch_warnings():
            # PIL only warns below 2x its own limit; we enforce max_pixels ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
                fmt = probe.format
                if w * h > max_pixels:
                    return f"decompression bomb guard: {w}x{h} = {w * h} pixels exceeds max_pixels={max_pixels}"
                # verify() walks the whole stream (CRCs, truncation) without decoding,
                # and catches truncation even if ImageFile.LOAD_TRUNCATED_IMAGES is set.
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:  # verify() leaves the file unusable
                img.load()
                return to_rgb(img), fmt, (w, h)
    except Image.DecompressionBombError as exc:
        return f"decompression bomb: {exc}"
    except UnidentifiedImageError:
        return f"not a recognised image ({what}, {len(data)} bytes)"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL signals truncated/corrupt streams with OSError or SyntaxError.
        return f"corrupt or truncated image: {type(exc).__name__}: {exc}"


@register_source("folder")
class FolderSource(ImageSource):
    """Images under ``root``; ``difficulty`` is a fixed prior since there is no ground truth."""

    def __init__(self, root: str | os.PathLike, max_side: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS,
                 difficulty: int = 3, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise NotADirectoryError(f"folder source: expected a directory, got {str(self.root)!r}")
        self.max_side, self.max_pixels, self.difficulty = max_side, max_pixels, difficulty
        self.extensions = tuple(e.lower() for e in extensions)

    def _files(self) -> list[tuple[Path, str]]:
        return [(p, kind) for p, kind in walk_files(self.root) if p.suffix.lower() in self.extensions]

    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        for path, kind in self._files():
            if kind != "file":
                # Never opened; no path, so quarantine records the reason without copying.
                yield Rejected(source=self.name, ref=str(path.relative_to(self.root)),
                               reason=REASONS.get(kind, REASONS["other"]), path=None)
                continue
            yield self._load(path)

    def _reject(self, path: Path, reason: str) -> Rejected:
        return Rejected(source=self.name, ref=str(path.relative_to(self.root)), reason=reason, path=str(path))

    def _load(self, path: Path) -> ImageRecord | Rejected:
        try:
            data = read_regular(path)
        except UnsafeFile as exc:
            return Rejected(source=self.name, ref=str(path.relative_to(self.root)), reason=str(exc), path=None)
        except OSError as exc:
            return self._reject(path, f"unreadable file: {type(exc).__name__}: {exc}")
        if not data:
            return self._reject(path, "empty file (0 bytes)")
        decoded = decode_image_bytes(data, self.max_pixels, f"{path.suffix} file")
        if isinstance(decoded, str):
            return self._reject(path, decoded)
        rgb, fmt, (w, h) = decoded
        rgb = fit_max_side(rgb, self.max_side)
        sidecar = path.with_suffix(".txt")
        try:
            caption = read_regular(sidecar, 1 << 16).decode("utf-8").strip() if classify(sidecar) == "file" else ""
        except (OSError, UnicodeDecodeError) as exc:
            return self._reject(path, f"unreadable caption sidecar {sidecar.name}: {exc}")
        from_sidecar = bool(caption)
        caption = caption or caption_from_stem(path.stem)
        digest = hashlib.sha256(data).hexdigest()
        return ImageRecord(
            id=f"folder:{digest[:16]}", source=self.name, image=rgb, caption=caption,
            difficulty=self.difficulty,
            meta={"path": str(path), "relpath": str(path.relative_to(self.root)), "format": fmt,
                  "original_size": [w, h], "sha256": digest,
                  "caption_from": "sidecar" if from_sidecar else "filename"})
