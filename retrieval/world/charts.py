"""The ``charts`` generator: small bar and line charts with their values as ground truth.

Part of the procedural world (``retrieval.world``); ``retrieval.world.core.generate``
dispatches here for ``kind="charts"``.  Charts are drawn with PIL (not matplotlib: it
is ~100x faster at 64 px and fully deterministic) using PIL's built-in 6x11 bitmap font
for the single-letter labels.  ``render(rng, difficulty, size)`` returns
``(image, caption, scene)``; the scene holds ``chart_type`` ("bar" or "line"),
``labels``, ``values`` (integers 1..9) and the pixel geometry of every bar/point
(``x0, x1, top, bottom`` or ``x, y``) so tests can check the values against pixels.
The maximum and minimum values are always unique, so "which is tallest/shortest" has
exactly one answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from retrieval.world.palette import (
    BACKGROUND,
    CHART_LABELS,
    CLUTTER,
    COLOR_NAMES,
    COLORS,
    INK,
    TEXT_INK,
    number_word,
)

MAX_VALUE = 9
MIN_SIZE = 48  # below this the 11 px label strip leaves no room for the plot


@dataclass(frozen=True)
class ChartsLevel:
    """How hard a chart is: more bars, line charts, close values, gridline clutter."""

    min_bars: int
    max_bars: int
    line_prob: float
    distinct_values: bool  # all values different (easy) vs only max/min unique
    multicolor: bool
    gridlines: bool


LEVELS: dict[int, ChartsLevel] = {
    1: ChartsLevel(3, 3, 0.0, True, False, False),
    2: ChartsLevel(3, 4, 0.0, True, False, False),
    3: ChartsLevel(4, 5, 0.3, True, True, False),
    4: ChartsLevel(4, 5, 0.4, False, True, True),
    5: ChartsLevel(5, 5, 0.5, False, True, True),
}


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    # The bitmap font is bundled with Pillow and not anti-aliased: identical pixels on
    # every machine, independent of FreeType versions.
    return ImageFont.load_default_imagefont()


def _values(rng: random.Random, n: int, distinct: bool) -> list[int]:
    if distinct:
        return rng.sample(range(1, MAX_VALUE + 1), n)
    while True:
        vals = [rng.randint(1, MAX_VALUE) for _ in range(n)]
        if vals.count(max(vals)) == 1 and vals.count(min(vals)) == 1:
            return vals


def render(rng: random.Random, difficulty: int, size: int) -> tuple[Image.Image, str, dict]:
    """Render a bar or line chart; returns (image, caption, scene)."""
    if size < MIN_SIZE:
        raise ValueError(f"charts need size >= {MIN_SIZE} px for labels, got {size}")
    level = LEVELS[difficulty]
    n = rng.randint(level.min_bars, level.max_bars)
    chart_type = "line" if rng.random() < level.line_prob else "bar"
    if difficulty <= 2:
        labels = list(CHART_LABELS[:n])
    else:
        labels = sorted(rng.sample(CHART_LABELS, n))
    values = _values(rng, n, level.distinct_values)
    if level.multicolor and chart_type == "bar":
        colors = rng.sample(COLOR_NAMES, n)
    else:
        colors = [rng.choice(COLOR_NAMES)] * n

    image, items, y_base, unit = draw_chart(size, chart_type, labels, values, colors, level.gridlines)
    noun = "bars" if chart_type == "bar" else "points"
    pairs = ", ".join(f"{lab}={val}" for lab, val in zip(labels, values))
    caption = f"a {chart_type} chart of {number_word(n)} {noun}: {pairs}"
    scene = {"width": size, "height": size, "chart_type": chart_type, "labels": labels,
             "values": values, "baseline_y": y_base, "unit_px": unit, "items": items}
    return image, caption, scene


def draw_chart(size: int, chart_type: str, labels: list[str], values: list[int], colors: list[str],
               gridlines: bool) -> tuple[Image.Image, list[dict], int, float]:
    """Draw a chart from its data; returns (image, items with pixel geometry, baseline y, px per unit).

    Split from `render` so an edited chart (one value or label changed, e.g. for a
    "who is the spy" pair) is drawn by exactly the same code as the original.
    """
    n = len(labels)
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    margin, label_h = 3, 12
    y_top, y_base = margin, size - label_h - 1
    unit = (y_base - y_top) / MAX_VALUE
    slot = (size - 2 * margin) / n

    if gridlines:
        # Light horizontal reference lines: distractors drawn under the data.
        for v in (3, 6, 9):
            y = y_base - round(v * unit)
            draw.line([margin, y, size - margin - 1, y], fill=CLUTTER[0])
    draw.line([margin, y_base, size - margin - 1, y_base], fill=INK)

    items: list[dict] = []
    for i, (label, value, color) in enumerate(zip(labels, values, colors)):
        xc = round(margin + slot * (i + 0.5))
        top = y_base - round(value * unit)
        item = {"label": label, "value": value, "color": color, "x": xc}
        if chart_type == "bar":
            half = max(1, round(slot * 0.3))
            item.update(x0=xc - half, x1=xc + half, top=top, bottom=y_base - 1)
        else:
            item.update(y=top)
        items.append(item)
        lw, _ = font.getbbox(label)[2:]
        draw.text((xc - lw // 2, y_base + 1), label, fill=TEXT_INK, font=font)

    if chart_type == "bar":
        for it in items:
            draw.rectangle([it["x0"], it["top"], it["x1"], it["bottom"]], fill=COLORS[it["color"]])
    else:
        pts = [(it["x"], it["y"]) for it in items]
        draw.line(pts, fill=COLORS[colors[0]], width=1)
        for x, y in pts:  # markers make the sampled points readable
            draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=COLORS[colors[0]])

    return image, items, y_base, unit
