"""Images from existing webdataset tar shards (a team's own data in the format the pool itself uses).

Each sample's image is the first member with an image extension (jpg, jpeg,
png, webp); its caption is the `txt` member, else `caption`, else the
`caption` / `text` field of a `json` member, else the sample key. The shards
are read with the `webdataset` library, sample by sample; a sample without an
image, an image that does not decode (truncated, corrupt, a bomb) or a text
member that is not UTF-8 becomes a `Rejected` with the shard and key, so one
bad sample never stops the pool. A local shard path that is a symlink, FIFO,
device or socket is a `Rejected` too, never opened. Ids hash the image bytes: the same image in
two shards is one pool row.

    build_source("shards", urls=["/data/laion/{000000..000009}.tar"])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence

from retrieval.sources.base import ImageRecord, ImageSource, Rejected, fit_max_side, register_source
from retrieval.sources.folder import DEFAULT_MAX_PIXELS, decode_image_bytes
from retrieval.sources.safe_files import REASONS, classify

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")


def _caption(sample: dict) -> str:
    for key in ("txt", "caption"):
        if key in sample:
            return sample[key].decode("utf-8").strip()  # UnicodeDecodeError: the caller rejects the sample
    if "json" in sample:
        meta = json.loads(sample["json"].decode("utf-8"))
        if isinstance(meta, dict):
            return str(meta.get("caption") or meta.get("text") or "").strip()
    return ""


@register_source("shards")
class ShardsSource(ImageSource):
    """Samples of webdataset shards given as paths or brace patterns (`/data/x-{000..009}.tar`)."""

    def __init__(self, urls: Sequence[str] | str, max_side: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS,
                 difficulty: int = 3) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("shards source: give at least one shard path or pattern")
        self.max_side, self.max_pixels, self.difficulty = max_side, max_pixels, difficulty

    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        import webdataset as wds
        from braceexpand import braceexpand

        safe = []
        for url in (u for pattern in self.urls for u in braceexpand(pattern)):
            local = url[len("file:"):] if url.startswith("file:") else (None if "://" in url or url.startswith("pipe:") else url)
            kind = classify(local) if local is not None else "file"
            if kind not in ("file", "missing"):  # a missing shard is webdataset's to report
                yield Rejected(self.name, url, f"shard {REASONS.get(kind, REASONS['other'])}")
                continue
            safe.append(url)
        if not safe:
            return
        # warn_and_continue: an unreadable shard is logged and skipped instead of ending the iteration
        ds = wds.WebDataset(safe, shardshuffle=False, handler=wds.warn_and_continue, empty_check=False)
        for sample in ds:
            yield self._record(sample)

    def _record(self, sample: dict) -> ImageRecord | Rejected:
        ref = f"{sample.get('__url__', '?')}:{sample.get('__key__', '?')}"
        key = next((k for k in IMAGE_KEYS if k in sample), None)
        if key is None:
            members = sorted(k for k in sample if not k.startswith("__"))
            return Rejected(self.name, ref, f"no image member ({', '.join(IMAGE_KEYS)}); found {members}")
        data = sample[key]
        if not data:
            return Rejected(self.name, ref, f"empty {key} member (0 bytes)")
        decoded = decode_image_bytes(data, self.max_pixels, f"{key} member")
        if isinstance(decoded, str):
            return Rejected(self.name, ref, decoded)
        rgb, fmt, size = decoded
        try:
            caption = _caption(sample)
        except (UnicodeDecodeError, ValueError) as exc:
            return Rejected(self.name, ref, f"caption is not UTF-8 text / JSON: {type(exc).__name__}: {exc}")
        digest = hashlib.sha256(data).hexdigest()
        return ImageRecord(
            id=f"shards:{digest[:16]}", source=self.name, image=fit_max_side(rgb, self.max_side),
            caption=caption or str(sample.get("__key__", "")), difficulty=self.difficulty,
            meta={"shard": sample.get("__url__"), "key": sample.get("__key__"), "format": fmt,
                  "original_size": list(size), "sha256": digest},
        )
