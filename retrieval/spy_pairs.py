"""Image pairs for "who is the spy" games: a civilian image and a spy image that differs in a few details.

Vision-Zero (recipes.md, "Vision-Zero") plays its games on N near-identical
images, one of which (the spy's) differs. This module builds such pairs from
three kinds of input and records the difference as structured ground truth:

- ``scene_pair``: a procedural shapes scene (``retrieval.world.shapes``); one
  object is recoloured, removed, added or moved. The world knows exactly what
  changed: ``apply_difference(civilian_objects, difference)`` gives the spy's
  objects, and both images are drawn by the same renderer.
- ``chart_pair``: a procedural chart (``retrieval.world.charts``); one or two
  values, or one label, change. Both images are drawn by ``charts.draw_chart``.
- ``edit_pair``: any image (real photos from the pool): a rectangle is
  recoloured (channel rotation) or pasted over with another patch of the same
  image.

Every pair keeps its edit mask as a list of boxes ``[x0, y0, x1, y1]``
(inclusive) whose union covers every pixel that may differ; tests check that
the pixel difference lies inside it. ``make_pair`` picks the kind from a pool
record, and ``pair_records`` turns a pair into two pool records (source
``spy_pairs``) so games can refer to their images by id like any other task.

    pair = make_pair(pool.get_record(image_id), random.Random(0))
    pair.difference   # {"op": "recolor", "index": 1, "from": "red", "to": "blue", ...}
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from retrieval.sources.base import ImageRecord
from retrieval.world import charts
from retrieval.world.palette import BACKGROUND, CHART_LABELS, COLOR_NAMES, COLORS
from retrieval.world.shapes import describe, draw_shape, radius_for

SOURCE = "spy_pairs"
SCENE_OPS = ("recolor", "remove", "add", "move")
EDIT_OPS = ("recolor", "paste")


@dataclass
class SpyPair:
    """Civilian and spy images of one game, the recorded difference and the edit mask (as boxes)."""

    kind: str  # "scene", "chart" or "edit"
    civilian: Image.Image
    spy: Image.Image
    difference: dict  # JSON-serialisable: what the spy's image has that the civilians' do not
    mask_boxes: list[list[int]]  # inclusive [x0, y0, x1, y1]; their union covers every changed pixel
    source_id: str = ""

    def mask(self) -> np.ndarray:
        return mask_from_boxes(self.mask_boxes, self.civilian.size)

    def pair_id(self) -> str:
        """Stable id from the source and the difference: the same edit of the same image gets the same id."""
        blob = json.dumps({"src": self.source_id, "kind": self.kind, "diff": self.difference}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def mask_from_boxes(boxes: list[list[int]], size: tuple[int, int]) -> np.ndarray:
    w, h = size
    mask = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0): min(h, y1 + 1), max(0, x0): min(w, x1 + 1)] = True
    return mask


def changed_pixels(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Boolean HxW map of pixels that differ between two same-size RGB images."""
    if a.size != b.size:
        raise ValueError(f"images differ in size: {a.size} vs {b.size}")
    return np.any(np.asarray(a.convert("RGB"), dtype=np.int16) != np.asarray(b.convert("RGB"), dtype=np.int16), axis=2)


# ---------------------------------------------------------------- procedural scenes


def render_objects(objects: list[dict], size: int) -> Image.Image:
    """Shapes on the world's background; clutter is left out so the only differences are the recorded ones."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for o in objects:
        draw_shape(draw, o["shape"], o["x"], o["y"], o["r"], COLORS[o["color"]])
    return image


def _box(o: dict, size: int) -> list[int]:
    # +1 px: polygon rasterisation may touch the pixel just outside the bounding circle
    return [max(0, o["x"] - o["r"] - 1), max(0, o["y"] - o["r"] - 1), min(size - 1, o["x"] + o["r"] + 1), min(size - 1, o["y"] + o["r"] + 1)]


def _free_spot(rng: random.Random, others: list[dict], r: int, size: int) -> tuple[int, int] | None:
    lo, hi = r + 1, size - r - 2
    for _ in range(300):
        x, y = rng.randint(lo, hi), rng.randint(lo, hi)
        if all(math.hypot(x - o["x"], y - o["y"]) >= r + o["r"] + 3 for o in others):
            return x, y
    return None


def apply_difference(objects: list[dict], difference: dict) -> list[dict]:
    """The spy's objects: the civilian's with the recorded difference applied (independent of how it was made)."""
    out = [dict(o) for o in objects]
    op, i = difference["op"], difference.get("index")
    if op == "recolor":
        out[i]["color"] = difference["to"]
    elif op == "remove":
        del out[i]
    elif op == "add":
        out.append(dict(difference["object"]))
    elif op == "move":
        out[i]["x"], out[i]["y"] = difference["to"]
    else:
        raise ValueError(f"unknown scene difference op {op!r}; expected one of {SCENE_OPS}")
    return out


def scene_pair(scene: dict, rng: random.Random, source_id: str = "", op: str | None = None) -> SpyPair:
    """Change one object of a shapes scene: recolour, remove (if >= 2 objects), add or move it."""
    objects, size = [dict(o) for o in scene["objects"]], int(scene["width"])
    if not objects:
        raise ValueError(f"scene {source_id!r} has no objects to change")
    ops = [o for o in ((op,) if op else SCENE_OPS) if o != "remove" or len(objects) >= 2]
    rng.shuffle(ops)
    for choice in ops:
        i = rng.randrange(len(objects))
        obj = objects[i]
        if choice == "recolor":
            new = rng.choice([c for c in COLOR_NAMES if c != obj["color"]])
            diff = {"op": "recolor", "index": i, "object": describe(obj, False), "from": obj["color"], "to": new}
            boxes = [_box(obj, size)]
        elif choice == "remove":
            diff = {"op": "remove", "index": i, "object": dict(obj), "what": describe(obj, False)}
            boxes = [_box(obj, size)]
        elif choice == "add":
            r = radius_for("small", size)
            spot = _free_spot(rng, objects, r, size)
            if spot is None:
                continue
            new_obj = {"shape": rng.choice(sorted({o["shape"] for o in objects} | {"circle", "square", "triangle"})),
                       "color": rng.choice(COLOR_NAMES), "size": "small", "x": spot[0], "y": spot[1], "r": r}
            diff = {"op": "add", "object": new_obj, "what": describe(new_obj, False)}
            boxes = [_box(new_obj, size)]
        else:  # move
            spot = _free_spot(rng, objects[:i] + objects[i + 1:], obj["r"], size)
            if spot is None or spot == (obj["x"], obj["y"]):
                continue
            diff = {"op": "move", "index": i, "object": describe(obj, False), "from": [obj["x"], obj["y"]], "to": list(spot)}
            boxes = [_box(obj, size), _box({**obj, "x": spot[0], "y": spot[1]}, size)]
        spy_objects = apply_difference(objects, diff)
        return SpyPair("scene", render_objects(objects, size), render_objects(spy_objects, size), diff, boxes, source_id)
    raise ValueError(f"no change of {ops} fits scene {source_id!r}")


# ---------------------------------------------------------------- charts


def _chart_image(scene: dict, labels: list[str], values: list[int], gridlines: bool) -> tuple[Image.Image, list[dict]]:
    colors = [it["color"] for it in scene["items"]]
    image, items, _, _ = charts.draw_chart(int(scene["width"]), scene["chart_type"], labels, values, colors, gridlines)
    return image, items


def chart_pair(scene: dict, rng: random.Random, source_id: str = "", difficulty: int = 1, op: str | None = None) -> SpyPair:
    """Change one or two values (op "values") or one label (op "label") of a chart."""
    labels, values = list(scene["labels"]), [int(v) for v in scene["values"]]
    size, gridlines = int(scene["width"]), charts.LEVELS[difficulty].gridlines
    op = op or rng.choice(("values", "values", "label"))
    new_labels, new_values = list(labels), list(values)
    if op == "values":
        idx = sorted(rng.sample(range(len(values)), rng.choice((1, 2)) if len(values) > 2 else 1))
        changes = []
        for i in idx:
            new_values[i] = rng.choice([v for v in range(1, charts.MAX_VALUE + 1) if v != values[i]])
            changes.append({"index": i, "label": labels[i], "from": values[i], "to": new_values[i]})
        diff = {"op": "values", "changes": changes}
    elif op == "label":
        i = rng.randrange(len(labels))
        new_labels[i] = rng.choice([c for c in CHART_LABELS if c not in labels])
        idx = [i]
        diff = {"op": "label", "changes": [{"index": i, "value": values[i], "from": labels[i], "to": new_labels[i]}]}
    else:
        raise ValueError(f"unknown chart difference op {op!r}; expected 'values' or 'label'")
    civilian, items = _chart_image(scene, labels, values, gridlines)
    spy, _ = _chart_image(scene, new_labels, new_values, gridlines)
    boxes = []
    for i in idx:
        # a line chart's segments to both neighbours move with a point: the mask spans neighbour to neighbour
        lo = items[i - 1]["x"] if i > 0 and scene["chart_type"] == "line" else items[i]["x"] - size // (2 * len(items)) - 1
        hi = items[i + 1]["x"] if i + 1 < len(items) and scene["chart_type"] == "line" else items[i]["x"] + size // (2 * len(items)) + 1
        boxes.append([max(0, lo - 1), 0, min(size - 1, hi + 1), size - 1])
    return SpyPair("chart", civilian, spy, diff, boxes, source_id)


# ---------------------------------------------------------------- real images


def edit_pair(image: Image.Image, rng: random.Random, source_id: str = "", op: str | None = None,
              min_changed: float = 0.2) -> SpyPair:
    """Recolour (rotate the RGB channels of) a rectangle, or paste another patch of the image over it.

    Retries on flat regions where the edit would change fewer than `min_changed` of the box's pixels,
    so the spy's image really differs where the difference says it does.
    """
    civ = image.convert("RGB")
    w, h = civ.size
    arr = np.asarray(civ).copy()
    for _ in range(20):
        choice = op or rng.choice(EDIT_OPS)
        bw, bh = max(2, int(w * rng.uniform(0.15, 0.3))), max(2, int(h * rng.uniform(0.15, 0.3)))
        x0, y0 = rng.randint(0, w - bw), rng.randint(0, h - bh)
        box = [x0, y0, x0 + bw - 1, y0 + bh - 1]
        out = arr.copy()
        region = arr[y0: y0 + bh, x0: x0 + bw]
        if choice == "recolor":
            out[y0: y0 + bh, x0: x0 + bw] = region[:, :, [1, 2, 0]]
            diff = {"op": "recolor", "box": box, "channels": "gbr"}
        elif choice == "paste":
            sx, sy = rng.randint(0, w - bw), rng.randint(0, h - bh)
            if abs(sx - x0) < bw // 2 and abs(sy - y0) < bh // 2:
                continue
            out[y0: y0 + bh, x0: x0 + bw] = arr[sy: sy + bh, sx: sx + bw]
            diff = {"op": "paste", "box": box, "from_box": [sx, sy, sx + bw - 1, sy + bh - 1]}
        else:
            raise ValueError(f"unknown edit op {choice!r}; expected one of {EDIT_OPS}")
        changed = np.any(out != arr, axis=2)
        if changed.mean() * (w * h) >= min_changed * bw * bh:
            diff["changed_pixels"] = int(changed.sum())
            return SpyPair("edit", civ, Image.fromarray(out), diff, [box], source_id)
    raise ValueError(f"image {source_id!r} is too flat for a visible local edit")


# ---------------------------------------------------------------- from the pool


def make_pair(record: ImageRecord, rng: random.Random) -> SpyPair:
    """The pair kind that fits a pool record: shapes scene, chart, or a local edit of anything else."""
    kind, scene = record.meta.get("kind"), record.meta.get("scene")
    if kind == "shapes" and scene and scene.get("objects"):
        return scene_pair(scene, rng, record.id)
    if kind == "charts" and scene:
        return chart_pair(scene, rng, record.id, difficulty=max(1, min(5, int(record.difficulty))))
    return edit_pair(record.image, rng, record.id)


def pair_image_ids(pair: SpyPair) -> tuple[str, str]:
    pid = pair.pair_id()
    return f"spy-{pid}-civilian", f"spy-{pid}-spy"


def pair_records(pair: SpyPair, difficulty: int = 1) -> list[ImageRecord]:
    """Two pool records (source "spy_pairs"): the civilian and the spy image, each with the difference and mask."""
    civ_id, spy_id = pair_image_ids(pair)
    meta = {"pair_kind": pair.kind, "pair_source": pair.source_id, "difference": pair.difference, "mask_boxes": pair.mask_boxes}
    return [
        ImageRecord(civ_id, SOURCE, pair.civilian, f"civilian image of {pair.kind} pair {pair.source_id}", difficulty,
                    {**meta, "side": "civilian"}),
        ImageRecord(spy_id, SOURCE, pair.spy, f"spy image of {pair.kind} pair {pair.source_id}", difficulty, {**meta, "side": "spy"}),
    ]


def describe_difference(pair_kind: str, difference: dict) -> str:
    """One line for transcripts: what the spy's image changes."""
    op = difference.get("op")
    if pair_kind == "scene":
        if op == "recolor":
            return f"the {difference['object']} is {difference['to']} instead of {difference['from']}"
        if op == "remove":
            return f"the {difference['what']} is missing"
        if op == "add":
            return f"an extra {difference['what']}"
        if op == "move":
            return f"the {difference['object']} moved from {tuple(difference['from'])} to {tuple(difference['to'])}"
    if pair_kind == "chart":
        if op == "values":
            return "chart values changed: " + "; ".join(f"{c['label']} {c['from']} -> {c['to']}" for c in difference["changes"])
        return "chart label changed: " + "; ".join(f"{c['from']} -> {c['to']} (value {c['value']})" for c in difference["changes"])
    if pair_kind == "edit":
        return f"{op} edit in box {difference['box']}"
    return json.dumps(difference, sort_keys=True)
