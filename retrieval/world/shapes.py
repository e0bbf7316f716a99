"""The ``shapes`` generator: 2D scenes of coloured shapes with full ground truth.

Part of the procedural world (``retrieval.world``); ``retrieval.world.core.generate``
dispatches here for ``kind="shapes"``.  ``render(rng, difficulty, size)`` returns the
RGB image, a caption and a JSON-serialisable scene ``{"objects": [...]}``, where each
object records shape, colour, size class, integer centre ``(x, y)`` and bounding radius
``r``.  Objects never overlap and are drawn without anti-aliasing, so the pixel at an
object's centre is exactly its palette colour (tests rely on that).  ``relation(a, b)``
derives the spatial relation between two objects when it is unambiguous.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from retrieval.world.palette import (
    ALL_SHAPES,
    BACKGROUND,
    BASIC_SHAPES,
    CLUTTER,
    COLOR_NAMES,
    COLORS,
    number_word,
)


@dataclass(frozen=True)
class ShapesLevel:
    """How hard a shapes scene is: more objects, more shapes/colours, smaller, clutter."""

    min_objects: int
    max_objects: int
    shapes: tuple[str, ...]
    n_colors: int
    small_prob: float
    clutter: bool


LEVELS: dict[int, ShapesLevel] = {
    1: ShapesLevel(1, 2, BASIC_SHAPES, 4, 0.0, False),
    2: ShapesLevel(2, 3, BASIC_SHAPES, 5, 0.0, False),
    3: ShapesLevel(3, 4, BASIC_SHAPES + ("diamond",), 6, 0.3, False),
    4: ShapesLevel(4, 6, ALL_SHAPES, 7, 0.5, True),
    5: ShapesLevel(6, 8, ALL_SHAPES, 7, 0.7, True),
}

# Relations are only stated when one axis clearly dominates the displacement, so a
# question like "is X left of, right of, above or below Y" has exactly one answer.
_RELATION_MIN_GAP_FRAC = 0.12
_RELATION_DOMINANCE = 2.0


def radius_for(size_class: str, canvas: int) -> int:
    """Bounding radius in pixels for a size class on a square canvas of ``canvas`` px."""
    if size_class == "large":
        return max(5, round(canvas * 0.13))
    if size_class == "small":
        return max(3, round(canvas * 0.07))
    raise ValueError(f"size class must be 'small' or 'large', got {size_class!r}")


def _polygon(shape: str, cx: int, cy: int, r: int) -> list[tuple[float, float]]:
    if shape == "triangle":
        # Vertices on the bounding circle, so the centroid is the centre pixel.
        return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
                for a in (-90, 30, 150)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.75 * r, cy), (cx, cy + r), (cx - 0.75 * r, cy)]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.45 * r
            ang = math.radians(-90 + 36 * k)
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        return pts
    raise ValueError(f"no polygon for shape {shape!r}")


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: int, cy: int, r: int,
               fill: tuple[int, int, int]) -> None:
    """Draw one filled shape centred at (cx, cy) inside a circle of radius r."""
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        h = max(2, round(r * 0.85))  # roughly the circle's area, looks the same "size"
        draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif shape in ("triangle", "diamond", "star"):
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {ALL_SHAPES}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def describe(obj: dict, with_article: bool = True) -> str:
    """Caption phrase for an object: 'a red circle', 'a small orange square'."""
    words = ([obj["size"]] if obj["size"] == "small" else []) + [obj["color"], obj["shape"]]
    phrase = " ".join(words)
    return f"{_article(phrase)} {phrase}" if with_article else phrase


def relation(a: dict, b: dict, canvas: int) -> str | None:
    """Relation of object ``a`` to object ``b`` ('left of', 'right of', 'above', 'below').

    Returns None when the displacement is too small or too diagonal to be unambiguous.
    Image y grows downward, so smaller y means 'above'.
    """
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    gap = _RELATION_MIN_GAP_FRAC * canvas
    if abs(dx) >= gap and abs(dx) >= _RELATION_DOMINANCE * abs(dy):
        return "left of" if dx < 0 else "right of"
    if abs(dy) >= gap and abs(dy) >= _RELATION_DOMINANCE * abs(dx):
        return "above" if dy < 0 else "below"
    return None


def _place(rng: random.Random, placed: list[dict], r: int, size: int) -> tuple[int, int] | None:
    lo, hi = r + 1, size - r - 2
    if hi <= lo:
        return None
    for _ in range(300):
        x, y = rng.randint(lo, hi), rng.randint(lo, hi)
        # 3 px of clearance keeps shapes visually separate and the centre pixel clean.
        if all(math.hypot(x - o["x"], y - o["y"]) >= r + o["r"] + 3 for o in placed):
            return x, y
    return None


def _draw_clutter(rng: random.Random, draw: ImageDraw.ImageDraw, size: int) -> None:
    # Grey strokes and dots: visual noise a model must learn to ignore; never counted.
    for _ in range(rng.randint(6, 12)):
        col = rng.choice(CLUTTER)
        x0, y0 = rng.randint(0, size - 1), rng.randint(0, size - 1)
        if rng.random() < 0.5:
            x1, y1 = rng.randint(0, size - 1), rng.randint(0, size - 1)
            draw.line([x0, y0, x1, y1], fill=col, width=1)
        else:
            draw.point([(x0, y0), (x0 + 1, y0), (x0, y0 + 1)], fill=col)


def render(rng: random.Random, difficulty: int, size: int) -> tuple[Image.Image, str, dict]:
    """Render a shapes scene; returns (image, caption, scene)."""
    level = LEVELS[difficulty]
    target = rng.randint(level.min_objects, level.max_objects)
    colors = COLOR_NAMES[: level.n_colors]
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if level.clutter:
        _draw_clutter(rng, draw, size)

    objects: list[dict] = []
    for _ in range(target):
        size_class = "small" if rng.random() < level.small_prob else "large"
        shape, color = rng.choice(level.shapes), rng.choice(colors)
        pos = _place(rng, objects, radius_for(size_class, size), size)
        if pos is None and size_class == "large":
            # Crowded canvas: a small object may still fit where a large one does not.
            size_class = "small"
            pos = _place(rng, objects, radius_for(size_class, size), size)
        if pos is None:
            break  # ground truth is what was drawn, so stopping early stays correct
        objects.append({"shape": shape, "color": color, "size": size_class,
                        "x": pos[0], "y": pos[1], "r": radius_for(size_class, size)})
    for o in objects:
        draw_shape(draw, o["shape"], o["x"], o["y"], o["r"], COLORS[o["color"]])

    ordered = sorted(objects, key=lambda o: (o["x"], o["y"]))  # caption reads left to right
    n = len(ordered)
    phrases = [describe(o) for o in ordered]
    listing = phrases[0] if n == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    caption = f"{number_word(n)} shape{'s' if n != 1 else ''}: {listing}"
    scene = {"width": size, "height": size, "background": list(BACKGROUND),
             "objects": objects}
    return image, caption, scene
