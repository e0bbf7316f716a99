"""The ``grids`` generator: small grids of filled/empty (optionally coloured) cells.

Part of the procedural world (``retrieval.world``); ``retrieval.world.core.generate``
dispatches here for ``kind="grids"``.  ``render(rng, difficulty, size)`` returns
``(image, caption, scene)`` where the scene holds ``rows``/``cols``, the 0/1 ``cells``
matrix (row 0 is the top row), a parallel ``colors`` matrix (colour name or None), and
the geometry (``origin``, ``cell_px``) so the pixel at each cell centre can be checked.
Difficulty grows the grid from 3x3 to 5x5 and adds colours.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageDraw

from retrieval.world.palette import BACKGROUND, COLOR_NAMES, COLORS, EMPTY_CELL, INK, number_word


@dataclass(frozen=True)
class GridsLevel:
    """How hard a grid is: side length range, fill density, number of colours."""

    min_side: int
    max_side: int
    fill_prob: float
    n_colors: int  # 1 means every filled cell is black


LEVELS: dict[int, GridsLevel] = {
    1: GridsLevel(3, 3, 0.4, 1),
    2: GridsLevel(3, 4, 0.4, 1),
    3: GridsLevel(4, 4, 0.45, 1),
    4: GridsLevel(4, 5, 0.45, 3),
    5: GridsLevel(5, 5, 0.5, 5),
}


def render(rng: random.Random, difficulty: int, size: int) -> tuple[Image.Image, str, dict]:
    """Render a grid; returns (image, caption, scene)."""
    level = LEVELS[difficulty]
    n = rng.randint(level.min_side, level.max_side)
    palette = ("black",) if level.n_colors == 1 else rng.sample(COLOR_NAMES, level.n_colors)
    cells = [[1 if rng.random() < level.fill_prob else 0 for _ in range(n)] for _ in range(n)]
    colors = [[rng.choice(palette) if c else None for c in row] for row in cells]

    margin = 2
    cell_px = (size - 2 * margin - 1) // n
    if cell_px < 4:
        raise ValueError(f"grid of {n}x{n} needs size >= {4 * n + 2 * margin + 1} px, got {size}")
    origin = ((size - cell_px * n) // 2, (size - cell_px * n) // 2)  # centred grid
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for r in range(n):
        for c in range(n):
            x0, y0 = origin[0] + c * cell_px, origin[1] + r * cell_px
            fill = COLORS[colors[r][c]] if cells[r][c] else EMPTY_CELL
            # Adjacent cells share their 1 px outline, so lines stay 1 px everywhere.
            draw.rectangle([x0, y0, x0 + cell_px, y0 + cell_px], fill=fill, outline=INK)

    filled = sum(map(sum, cells))
    side = number_word(n)
    caption = f"a {side} by {side} grid with {number_word(filled)} filled cell{'s' if filled != 1 else ''}"
    if level.n_colors > 1 and filled:
        counts = Counter(col for row in colors for col in row if col)
        parts = [f"{number_word(k)} {name}" for name, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        caption += ": " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
    scene = {"width": size, "height": size, "rows": n, "cols": n, "cells": cells,
             "colors": colors, "origin": list(origin), "cell_px": cell_px}
    return image, caption, scene
