"""Source "skimage": scikit-image's packaged sample photos, loaded fully offline.

A small set of real photographs and scientific images (astronaut, coffee, chelsea the
cat, ...) that ship inside the scikit-image wheel, useful as out-of-world images without
any download.  Only functions of ``skimage.data`` whose files are bundled are listed by
default; any name that fails to load (e.g. one that would need ``pooch`` to download)
is yielded as ``Rejected``, never raised.  Arrays of any dtype (bool, float, uint8,
greyscale, RGBA) are converted to RGB and downscaled to ``max_side``::

    for item in build_source("skimage", max_side=128).iter_items(): ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from retrieval.sources.base import ImageRecord, ImageSource, Rejected, fit_max_side, register_source, to_rgb

# name -> caption.  ``cat`` is omitted: it returns the same pixels as ``chelsea``.
CAPTIONS: dict[str, str] = {
    "astronaut": "astronaut eileen collins",
    "binary_blobs": "binary blobs",
    "brick": "a brick wall texture",
    "camera": "a cameraman with a tripod",
    "cell": "a cell under a microscope",
    "checkerboard": "a checkerboard",
    "chelsea": "chelsea the cat",
    "clock": "a wall clock",
    "coffee": "a cup of coffee",
    "coins": "old coins",
    "colorwheel": "a color wheel",
    "grass": "a grass texture",
    "gravel": "a gravel texture",
    "horse": "a horse silhouette",
    "hubble_deep_field": "the hubble deep field",
    "immunohistochemistry": "an immunohistochemistry stain",
    "logo": "the scikit-image logo",
    "microaneurysms": "a retina with microaneurysms",
    "moon": "the surface of the moon",
    "page": "a page of printed text",
    "retina": "a human retina",
    "rocket": "a rocket on the launch pad",
    "shepp_logan_phantom": "the shepp logan phantom",
    "stereo_motorcycle": "a motorcycle",
    "text": "text on a sign",
}


def array_to_rgb(arr: np.ndarray) -> Image.Image:
    """Convert a skimage array (bool/float/int, 2D or HxWx3/4) to an RGB PIL image."""
    arr = np.asarray(arr)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        # Floats in [0, 1] keep their absolute scale; anything else is min-max scaled.
        a = a * 255 if lo >= 0 and hi <= 1 else ((a - lo) / (hi - lo) * 255 if hi > lo else a * 0)
        arr = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return Image.fromarray(arr, "L").convert("RGB")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return to_rgb(Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA"))
    raise ValueError(f"expected a 2D or HxWx3/4 array, got shape {arr.shape}")


@register_source("skimage")
class SkimagePhotosSource(ImageSource):
    """Bundled skimage.data images; ``names`` defaults to every key of ``CAPTIONS``."""

    def __init__(self, names: Sequence[str] | None = None, max_side: int = 256, difficulty: int = 4) -> None:
        self.names = list(names) if names is not None else list(CAPTIONS)
        self.max_side, self.difficulty = max_side, difficulty

    def iter_items(self) -> Iterator[ImageRecord | Rejected]:
        import skimage.data  # imported lazily: it is only needed by this source

        for name in self.names:
            fn = getattr(skimage.data, name, None)
            if not callable(fn):
                yield Rejected(self.name, name, f"skimage.data has no image function {name!r}")
                continue
            try:
                arr = fn()
                if isinstance(arr, tuple):  # stereo_motorcycle -> (left, right, disparity)
                    arr = arr[0]
                image = fit_max_side(array_to_rgb(arr), self.max_side)
            except Exception as exc:  # noqa: BLE001 - missing pooch/data files vary by install
                yield Rejected(self.name, name, f"could not load skimage.data.{name}() offline: "
                                                f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            yield ImageRecord(id=f"skimage:{name}", source=self.name, image=image,
                              caption=CAPTIONS.get(name, name.replace("_", " ")),
                              difficulty=self.difficulty,
                              meta={"function": f"skimage.data.{name}", "shape": list(np.shape(arr))})
