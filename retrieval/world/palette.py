"""Shared vocabulary of the procedural world: colours, shapes, sizes, numbers.

Every generator (``shapes``, ``charts``, ``grids``) and the task maker draw their words
from here, so the set of words the world can ever emit is defined in one place and
``tasks.world_corpus`` can cover it exhaustively.  Import the constants directly, e.g.
``from retrieval.world.palette import COLORS, number_word``.
"""

from __future__ import annotations

# Background for shape scenes and chart/grid canvases.  Near-white rather than pure
# white so that the "white"-looking empty grid cells are still distinguishable from it
# when a test inspects pixels.
BACKGROUND: tuple[int, int, int] = (245, 245, 245)

# Seven named colours chosen to be far apart in RGB and all clearly visible on the
# near-white background (no "white" entry for that reason).  Order matters: low
# difficulties use only the first few, so the first four are the most distinct.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "blue": (30, 70, 220),
    "green": (30, 160, 50),
    "yellow": (240, 200, 0),
    "purple": (140, 40, 170),
    "orange": (250, 130, 0),
    "black": (20, 20, 20),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

# Ink for chart axes/labels and grid lines; deliberately not one of COLORS so that a
# pixel of a bar or cell can never be confused with the axes.
INK: tuple[int, int, int] = (90, 90, 90)
TEXT_INK: tuple[int, int, int] = (0, 0, 0)
# Colour of empty grid cells (different from BACKGROUND, see above).
EMPTY_CELL: tuple[int, int, int] = (255, 255, 255)
# Faint clutter drawn behind shapes at high difficulty: greys, never a palette colour.
CLUTTER: tuple[tuple[int, int, int], ...] = ((205, 205, 205), (185, 185, 185), (225, 225, 225))

# Shapes in order of introduction along the difficulty axis.
BASIC_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
ALL_SHAPES: tuple[str, ...] = BASIC_SHAPES + ("diamond", "star")
SHAPE_PLURALS: dict[str, str] = {s: s + "s" for s in ALL_SHAPES}

SIZES: tuple[str, ...] = ("small", "large")

# Chart labels: single lowercase letters, skipping ones easily confused in a 6x11
# bitmap font (i, l, o).
CHART_LABELS: tuple[str, ...] = tuple("abcdefghjkmnpqrstuvwxyz")

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def number_word(n: int) -> str:
    """English word for 0..20 (the only counts the world produces)."""
    if not 0 <= n <= 20:
        raise ValueError(f"number_word expects an integer in 0..20, got {n!r}")
    return _NUMBER_WORDS[n]


NUMBER_WORDS: tuple[str, ...] = tuple(_NUMBER_WORDS)
