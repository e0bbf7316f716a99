"""Label-preserving views of a world image: small shifts, shrinks and pixel noise, never flips or colour changes.

Used by the label-free levers that need the same question asked about slightly
different pixels: voting across views (test-time augmentation: the majority over
views x samples is an ensemble of the model over inputs it should answer alike)
and self-training with noise (label the clean image by the vote, train on a view,
as Noisy Student does). Every transform keeps the answer of every task type of
``retrieval.world.tasks``:

- no flips or rotations: "left of", "the top row" and a chart's label order would change;
- no colour, brightness or hue changes: colour names are answers;
- shrinking (never enlarging) and shifting inside the freed margin keep every object,
  bar, label and cell in the frame, so counts are unchanged; charts are never shrunk,
  because a bar's value is read from its height in pixels (there are no tick labels);
- noise is small and zero-mean, far below the distance between palette colours.

Views are a pure function of ``(image, seed)``::

    from retrieval.world.augment import ViewConfig, view, views
    v = view(image, seed=3)                   # one view
    vs = views(image, n=4, seed=0)            # four different views
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from retrieval.world.palette import BACKGROUND


@dataclass(frozen=True)
class ViewConfig:
    """How far a view may move from the original image."""

    min_scale: float = 0.85  # shrink to at least this share of the side (1.0: no shrinking)
    max_shift: int = 3  # extra shift in pixels beyond the margin the shrink frees (0: none)
    noise_std: float = 6.0  # Gaussian pixel noise, in 0-255 units (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


def view(image: Image.Image, seed: int, cfg: ViewConfig = ViewConfig(), kind: str | None = None) -> Image.Image:
    """One label-preserving view of `image` (RGB, same size), deterministic in `seed`.

    `kind` is the world kind ("shapes", "charts", "grids"); charts are shifted, never shrunk.
    """
    rng = random.Random(f"zeroforge-view:{seed}")
    w, h = image.size
    scale = rng.uniform(cfg.min_scale, 1.0)
    if kind == "charts":
        scale = 1.0
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = image.convert("RGB").resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else image.convert("RGB")
    # The content stays whole: the offset keeps the shrunk image inside the canvas; a shift beyond the
    # freed margin is allowed only where the border it pushes out is background.
    free_x, free_y = w - nw, h - nh
    ox = min(free_x, max(0, rng.randint(0, free_x) + rng.randint(-cfg.max_shift, cfg.max_shift))) if free_x else 0
    oy = min(free_y, max(0, rng.randint(0, free_y) + rng.randint(-cfg.max_shift, cfg.max_shift))) if free_y else 0
    canvas = Image.new("RGB", (w, h), BACKGROUND)
    canvas.paste(small, (ox, oy))
    if (nw, nh) == (w, h) and cfg.max_shift:
        canvas = _shift_over_background(canvas, rng, cfg.max_shift)
    if cfg.noise_std > 0:
        arr = np.asarray(canvas, dtype=np.float32)
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, cfg.noise_std, arr.shape)
        canvas = Image.fromarray(np.clip(arr + noise, 0, 255).round().astype(np.uint8), "RGB")
    return canvas


def _shift_over_background(image: Image.Image, rng: random.Random, max_shift: int) -> Image.Image:
    """Shift an unshrunk image by up to `max_shift` px, only as far as its border rows/columns are background."""
    arr = np.asarray(image)
    bg = np.all(arr == np.array(BACKGROUND, dtype=arr.dtype), axis=2)

    def room(lines) -> int:
        n = 0
        for line in lines:
            if not line.all() or n == max_shift:
                break
            n += 1
        return n

    left, right = room(bg.T), room(bg.T[::-1])
    top, bottom = room(bg), room(bg[::-1])
    dx, dy = rng.randint(-left, right), rng.randint(-top, bottom)
    out = Image.new("RGB", image.size, BACKGROUND)
    out.paste(image, (dx, dy))
    return out


def views(image: Image.Image, n: int, seed: int, cfg: ViewConfig = ViewConfig(), kind: str | None = None) -> list[Image.Image]:
    """`n` views of `image` with seeds derived from `seed` (view 0 is not the original)."""
    return [view(image, seed * 1_000_003 + k, cfg, kind) for k in range(n)]


def kind_of_image_id(image_id: str) -> str | None:
    """The world kind in a world image id ("charts-s12-d3-64px" -> "charts"); None for other images."""
    head = image_id.split("-", 1)[0]
    return head if head in ("shapes", "charts", "grids") else None
