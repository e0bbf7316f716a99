"""Plug-in image sources: the record types, the ``ImageSource`` base and the registry.

Everything that feeds images into the pool (procedural world, user folders, packaged
sample photos, ...) is an ``ImageSource`` whose ``iter_items()`` yields ``ImageRecord``
for good images and ``Rejected`` for inputs that could not be used, so bad data is
reported (and can be quarantined) instead of raising or vanishing.  Adding a source is
one module plus a decorator::

    @register_source("mysource")
    class MySource(ImageSource):
        name = "mysource"
        def __init__(self, n: int = 10): ...
        def iter_items(self): yield ImageRecord(...)

    src = build_source("mysource", n=5)

``retrieval.sources`` imports the built-in modules, so importing the package is enough
to populate the registry.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from PIL import Image


@dataclass
class ImageRecord:
    """A usable RGB image with metadata. ``id`` must be unique across all sources."""

    id: str
    source: str
    image: Image.Image
    caption: str
    difficulty: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError(f"ImageRecord from source {self.source!r} has an empty id")
        if self.image.mode != "RGB":
            raise ValueError(f"ImageRecord {self.id!r}: image mode must be RGB, got {self.image.mode!r}")


@dataclass
class Rejected:
    """An input a source could not turn into an ``ImageRecord``, with the reason.

    ``ref`` names the input (file path, function name, ...); ``path`` is set when there is
    a file that can be copied to quarantine.
    """

    source: str
    ref: str
    reason: str
    path: str | None = None


class ImageSource(abc.ABC):
    """A stream of images; subclasses set ``name`` and implement ``iter_items``."""

    name: str = ""

    @abc.abstractmethod
    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        """Yield records and rejections; must not raise for bad individual inputs."""


_REGISTRY: dict[str, type[ImageSource]] = {}


def register_source(name: str) -> Callable[[type[ImageSource]], type[ImageSource]]:
    """Class decorator registering an ``ImageSource`` subclass under ``name``."""

    def deco(cls: type[ImageSource]) -> type[ImageSource]:
        if not (isinstance(cls, type) and issubclass(cls, ImageSource)):
            raise TypeError(f"@register_source({name!r}) expects an ImageSource subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"source name {name!r} already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available_sources() -> list[str]:
    """Names accepted by ``build_source``."""
    return sorted(_REGISTRY)


def build_source(name: str, **kwargs) -> ImageSource:
    """Instantiate the registered source ``name`` with keyword arguments."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown image source {name!r}; registered: {available_sources()}")
    return _REGISTRY[name](**kwargs)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency onto ``background``.

    Plain ``convert("RGB")`` would turn transparent pixels black, which changes what
    many logos/icons look like.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale would clip to white under convert("L"); rescale instead.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype("uint8"), "L").convert("RGB")
    return image.convert("RGB")


def fit_max_side(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longest side is at most ``max_side``."""
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    scale = max_side / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(new, Image.Resampling.LANCZOS)
