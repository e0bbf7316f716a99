"""Tests for retrieval.world generators: determinism, ground truth vs pixels, difficulty."""

from __future__ import annotations

import json
import random
import re
from statistics import mean

import numpy as np
import pytest
from skimage.measure import label

from retrieval.world import DIFFICULTIES, KINDS, generate, sample_world
from retrieval.world.palette import COLORS, EMPTY_CELL, NUMBER_WORDS

SEEDS = range(12)


def pixels(img) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_same_seed_same_bytes_and_truth(kind, difficulty):
    a, b = generate(kind, 7, difficulty), generate(kind, 7, difficulty)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.caption, a.scene, a.id) == (b.caption, b.scene, b.id)


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_differ(kind):
    imgs = {generate(kind, s, 3).image.tobytes() for s in SEEDS}
    assert len(imgs) == len(SEEDS)


def test_generation_leaves_global_rng_untouched():
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()[1].copy()
    sample_world(15, seed=3)
    assert random.getstate() == py_state
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_sample_world_deterministic_balanced_unique():
    a, b = sample_world(30, seed=4), sample_world(30, seed=4)
    assert [w.image.tobytes() for w in a] == [w.image.tobytes() for w in b]
    assert len({w.id for w in a}) == 30
    assert {w.kind for w in a} == set(KINDS)
    assert {w.difficulty for w in a} == set(DIFFICULTIES)
    assert [w.id for w in sample_world(30, seed=5)] != [w.id for w in a]
    only = sample_world(6, seed=0, kinds=("grids",), difficulties=(2,), size=96)
    assert all(w.kind == "grids" and w.difficulty == 2 and w.image.size == (96, 96) for w in only)


def test_scenes_are_json_and_images_rgb():
    for w in sample_world(30, seed=1):
        assert json.loads(json.dumps(w.scene)) == w.scene
        assert w.image.mode == "RGB" and w.image.size == (64, 64)


@pytest.mark.parametrize("bad", [dict(kind="faces", seed=0, difficulty=1),
                                 dict(kind="shapes", seed=0, difficulty=0),
                                 dict(kind="shapes", seed=0, difficulty=6),
                                 dict(kind="shapes", seed=-1, difficulty=1),
                                 dict(kind="charts", seed=0, difficulty=1, size=16)])
def test_invalid_arguments_fail_loudly(bad):
    with pytest.raises(ValueError, match=r"expected|must be"):
        generate(**bad)


def test_shapes_truth_matches_pixels():
    for d in DIFFICULTIES:
        for s in SEEDS:
            w = generate("shapes", s, d)
            px = pixels(w.image)
            objs = w.scene["objects"]
            # Centre pixel carries the object's colour.
            for o in objs:
                assert tuple(px[o["y"], o["x"]]) == COLORS[o["color"]], (w.id, o)
            # Connected blobs of palette-coloured pixels == objects, one per object.
            mask = np.zeros(px.shape[:2], bool)
            for rgb in COLORS.values():
                mask |= np.all(px == rgb, axis=-1)
            lab, n = label(mask, connectivity=2, return_num=True)
            assert n == len(objs), (w.id, n, len(objs))
            assert len({lab[o["y"], o["x"]] for o in objs}) == len(objs)
            # Caption states the count.
            assert w.caption.split()[0] == NUMBER_WORDS[len(objs)]


def test_charts_truth_matches_pixels():
    seen_types = set()
    for d in DIFFICULTIES:
        for s in SEEDS:
            w = generate("charts", s, d)
            px, sc = pixels(w.image), w.scene
            seen_types.add(sc["chart_type"])
            values = sc["values"]
            assert values.count(max(values)) == 1 and values.count(min(values)) == 1
            assert all(1 <= v <= 9 for v in values)
            if sc["chart_type"] == "bar":
                heights = []
                for it in sc["items"]:
                    col = px[:, it["x"]]
                    y, h = sc["baseline_y"] - 1, 0
                    while y >= 0 and tuple(col[y]) == COLORS[it["color"]]:
                        h, y = h + 1, y - 1
                    heights.append(h)
                # Heights are ordered exactly as the values (ties included).
                for i in range(len(values)):
                    for j in range(len(values)):
                        assert (heights[i] < heights[j]) == (values[i] < values[j]), (w.id, heights, values)
                    assert abs(heights[i] - values[i] * sc["unit_px"]) <= 1
            else:
                ys = [it["y"] for it in sc["items"]]
                for it in sc["items"]:
                    assert tuple(px[it["y"], it["x"]]) == COLORS[it["color"]]
                assert np.argmin(ys) == np.argmax(values)  # highest point = largest value
            assert f"{sc['labels'][0]}={values[0]}" in w.caption
    assert seen_types == {"bar", "line"}


def test_grids_truth_matches_pixels():
    for d in DIFFICULTIES:
        for s in SEEDS:
            w = generate("grids", s, d)
            px, sc = pixels(w.image), w.scene
            (ox, oy), c = sc["origin"], sc["cell_px"]
            filled = 0
            for r in range(sc["rows"]):
                for k in range(sc["cols"]):
                    rgb = tuple(px[oy + r * c + c // 2, ox + k * c + c // 2])
                    expected = COLORS[sc["colors"][r][k]] if sc["cells"][r][k] else EMPTY_CELL
                    assert rgb == expected, (w.id, r, k)
                    filled += rgb != EMPTY_CELL
            assert filled == sum(map(sum, sc["cells"]))
            assert re.search(rf"with {NUMBER_WORDS[filled]} filled", w.caption)


def test_difficulty_raises_complexity():
    n_objs = {d: mean(len(generate("shapes", s, d).scene["objects"]) for s in range(20)) for d in DIFFICULTIES}
    assert all(n_objs[d] < n_objs[d + 1] for d in range(1, 5)), n_objs
    small = {d: sum(o["size"] == "small" for s in range(20) for o in generate("shapes", s, d).scene["objects"])
             for d in DIFFICULTIES}
    assert small[1] == small[2] == 0 and small[5] > small[3] > 0
    shapes_seen = {d: {o["shape"] for s in range(20) for o in generate("shapes", s, d).scene["objects"]}
                   for d in (1, 5)}
    assert shapes_seen[1] < shapes_seen[5]
    sides = {d: mean(generate("grids", s, d).scene["rows"] for s in range(20)) for d in DIFFICULTIES}
    assert sides[1] == 3 and sides[5] == 5 and all(sides[d] <= sides[d + 1] for d in range(1, 5))
    bars = {d: mean(len(generate("charts", s, d).scene["values"]) for s in range(20)) for d in DIFFICULTIES}
    assert bars[1] == 3 and bars[5] == 5


def test_views_keep_every_object_and_its_colour():
    """Label-preserving views: same size, deterministic, nothing pushed out of the frame, palette colours kept."""
    from retrieval.world.augment import ViewConfig, view, views

    quiet = ViewConfig(noise_std=0.0)
    for wi in sample_world(30, seed=21):
        a = view(wi.image, 5)
        assert a.size == wi.image.size and a.mode == "RGB"
        assert np.array_equal(np.asarray(a), np.asarray(view(wi.image, 5)))
        v = np.asarray(view(wi.image, 9, quiet)).astype(int)
        if wi.kind == "shapes":
            for o in wi.scene["objects"]:
                colour = np.array(COLORS[o["color"]])
                assert (np.abs(v - colour).sum(axis=2) < 40).sum() >= 4, (wi.id, o)
    assert len({np.asarray(x).tobytes() for x in views(sample_world(1, seed=3)[0].image, 4, seed=0)}) == 4


def test_views_never_cut_content():
    from retrieval.world.augment import ViewConfig, view
    from retrieval.world.palette import BACKGROUND

    quiet = ViewConfig(noise_std=0.0, min_scale=1.0)  # shifts only: content must be kept pixel for pixel
    for wi in sample_world(30, seed=22):
        src, v = np.asarray(wi.image), np.asarray(view(wi.image, 1, quiet))
        not_bg = lambda a: int((np.abs(a.astype(int) - np.array(BACKGROUND)).sum(axis=2) > 0).sum())  # noqa: E731
        assert not_bg(v) == not_bg(src), wi.id


def test_chart_views_keep_bar_heights():
    """A bar's value is its height in pixels: chart views shift, never shrink."""
    from retrieval.world.augment import ViewConfig, kind_of_image_id, view
    from retrieval.world.palette import BACKGROUND

    for wi in sample_world(12, seed=23, kinds=("charts",)):
        assert kind_of_image_id(wi.id) == "charts"
        v = np.asarray(view(wi.image, 4, ViewConfig(noise_std=0.0, min_scale=0.5), kind="charts"))
        not_bg = lambda a: int((np.abs(a.astype(int) - np.array(BACKGROUND)).sum(axis=2) > 0).sum())  # noqa: E731
        assert not_bg(v) == not_bg(np.asarray(wi.image)), wi.id


def test_primer_scenes_are_large_shapes_with_truth():
    """Primer scenes: 1-3 large, separate objects whose centre pixels are their colour; the task makers accept them."""
    import random as _random

    from retrieval.world.primer import primer_images
    from retrieval.world.tasks import MIXES, make_tasks

    images = primer_images(40, seed=1)
    assert [w.id for w in images] == [w.id for w in primer_images(40, seed=1)]
    assert all(w.id.startswith("primer-") and w.kind == "shapes" for w in images)
    for w in images:
        objs = w.scene["objects"]
        assert 1 <= len(objs) <= 3 and all(o["r"] >= 8 for o in objs)
        px = np.asarray(w.image)
        for o in objs:
            assert tuple(px[o["y"], o["x"]]) == COLORS[o["color"]]
    tasks = [t for w in images for t in make_tasks(w, _random.Random(0), MIXES["base"])]
    assert {t.task_type for t in tasks} >= {"color", "shape", "count", "exists"}
