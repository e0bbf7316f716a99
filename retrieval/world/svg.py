"""World scenes written as short SVG programs: the Coder's examples in MM-Zero's warm start.

Every procedural scene (``retrieval.world``) is fully described by its JSON
``scene``, so it can be written as an SVG document that draws the same picture
(shapes as circles/rects/polygons, bar and line charts as rects/polylines,
grids as an outlined square plus the filled cells). MM-Zero's Coder must learn to turn a caption into a program
that renders; these documents are the templated targets of its warm start.
They are deliberately terse (integer coordinates, named colours, no styling)
so a tiny model can reproduce them: each is a few hundred characters.

    from retrieval.world import generate
    from retrieval.world.svg import scene_svg
    svg = scene_svg(generate("shapes", seed=1, difficulty=1))   # '<svg xmlns=... </svg>'

The rendered SVG is close to, not pixel-identical with, the PIL original
(anti-aliasing, SVG's own named colours, no chart label text).
"""

from __future__ import annotations

import math

from retrieval.world.core import WorldImage

SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
BACKGROUND = '<rect width="{w}" height="{h}" fill="#f5f5f5"/>'


def _shape(o: dict) -> str:
    x, y, r, fill = o["x"], o["y"], o["r"], o["color"]
    if o["shape"] == "circle":
        return f'<circle cx="{x}" cy="{y}" r="{r}" fill="{fill}"/>'
    if o["shape"] == "square":
        h = max(2, round(r * 0.85))
        return f'<rect x="{x - h}" y="{y - h}" width="{2 * h}" height="{2 * h}" fill="{fill}"/>'
    if o["shape"] == "triangle":
        pts = [(x + r * math.cos(math.radians(a)), y + r * math.sin(math.radians(a))) for a in (-90, 30, 150)]
    elif o["shape"] == "diamond":
        pts = [(x, y - r), (x + 0.75 * r, y), (x, y + r), (x - 0.75 * r, y)]
    elif o["shape"] == "star":
        pts = [(x + (r if k % 2 == 0 else 0.45 * r) * math.cos(math.radians(-90 + 36 * k)),
                y + (r if k % 2 == 0 else 0.45 * r) * math.sin(math.radians(-90 + 36 * k))) for k in range(10)]
    else:
        raise ValueError(f"no SVG for shape {o['shape']!r}")
    return f'<polygon points="{" ".join(f"{round(px)},{round(py)}" for px, py in pts)}" fill="{fill}"/>'


def _chart(sc: dict) -> list[str]:
    w, base = sc["width"], sc["baseline_y"]
    out = [f'<line x1="4" y1="{base}" x2="{w - 5}" y2="{base}" stroke="gray"/>']
    if sc["chart_type"] == "bar":
        for it in sc["items"]:
            out.append(f'<rect x="{it["x0"]}" y="{it["top"]}" width="{it["x1"] - it["x0"] + 1}" '
                       f'height="{it["bottom"] - it["top"] + 1}" fill="{it["color"]}"/>')
    else:
        pts = " ".join(f'{it["x"]},{it["y"]}' for it in sc["items"])
        out.append(f'<polyline points="{pts}" fill="none" stroke="{sc["items"][0]["color"]}"/>')
    return out


def _grid(sc: dict) -> list[str]:
    # one outlined square for the grid, then only the filled cells: empty cells cost no text
    (ox, oy), px, n = sc["origin"], sc["cell_px"], sc["rows"]
    out = [f'<rect x="{ox}" y="{oy}" width="{n * px}" height="{n * px}" fill="white" stroke="gray"/>']
    for r in range(n):
        for c in range(sc["cols"]):
            if sc["cells"][r][c]:
                out.append(f'<rect x="{ox + c * px}" y="{oy + r * px}" width="{px}" height="{px}" fill="{sc["colors"][r][c]}"/>')
    return out


def scene_svg(wi: WorldImage) -> str:
    """An SVG document drawing world image `wi` from its scene (one line, no whitespace between elements)."""
    sc = wi.scene
    w, h = sc["width"], sc["height"]
    if wi.kind == "shapes":
        body = [_shape(o) for o in sc["objects"]]
    elif wi.kind == "charts":
        body = _chart(sc)
    elif wi.kind == "grids":
        body = _grid(sc)
    else:
        raise ValueError(f"no SVG writer for world kind {wi.kind!r}")
    return SVG_OPEN.format(w=w, h=h) + BACKGROUND.format(w=w, h=h) + "".join(body) + "</svg>"
