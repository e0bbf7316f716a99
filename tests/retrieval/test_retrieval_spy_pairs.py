"""Spy pairs: the recorded difference is the true difference (re-applied and re-rendered), inside the kept mask."""

import random

import numpy as np
import pytest

from retrieval import spy_pairs as sp
from retrieval.world import generate
from retrieval.world.palette import COLORS


@pytest.mark.parametrize("op", sp.SCENE_OPS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scene_difference_is_what_changed(op, seed):
    wi = generate("shapes", seed, 3)
    pair = sp.scene_pair(wi.scene, random.Random(seed), wi.id, op=op)
    assert pair.difference["op"] == op
    # re-applying the recorded difference to the civilian scene and rendering gives the spy's pixels exactly
    spy_objects = sp.apply_difference(wi.scene["objects"], pair.difference)
    assert np.array_equal(np.asarray(sp.render_objects(spy_objects, 64)), np.asarray(pair.spy))
    diff = sp.changed_pixels(pair.civilian, pair.spy)
    assert diff.any() and not (diff & ~pair.mask()).any()
    if op == "recolor":
        o = wi.scene["objects"][pair.difference["index"]]
        assert pair.spy.getpixel((o["x"], o["y"])) == COLORS[pair.difference["to"]]
        assert pair.civilian.getpixel((o["x"], o["y"])) == COLORS[pair.difference["from"]]


@pytest.mark.parametrize("op", ["values", "label"])
@pytest.mark.parametrize("seed", [4, 5, 6])
def test_chart_difference_is_what_changed(op, seed):
    wi = generate("charts", seed, 4)
    pair = sp.chart_pair(wi.scene, random.Random(seed), wi.id, difficulty=4, op=op)
    assert np.array_equal(np.asarray(pair.civilian), np.asarray(wi.image))  # the civilian is the original chart
    changes = pair.difference["changes"]
    assert 1 <= len(changes) <= 2 and all(c["from"] != c["to"] for c in changes)
    # redraw with the recorded change: identical to the spy's image
    labels, values = list(wi.scene["labels"]), list(wi.scene["values"])
    for c in changes:
        (values if op == "values" else labels)[c["index"]] = c["to"]
    from retrieval.world import charts

    redrawn, items, _, _ = charts.draw_chart(64, wi.scene["chart_type"], labels, values, [it["color"] for it in wi.scene["items"]], True)
    assert np.array_equal(np.asarray(redrawn), np.asarray(pair.spy))
    diff = sp.changed_pixels(pair.civilian, pair.spy)
    assert diff.any() and not (diff & ~pair.mask()).any()
    if op == "values" and wi.scene["chart_type"] == "bar":
        for c in changes:
            assert items[c["index"]]["value"] == c["to"]


@pytest.mark.parametrize("op", sp.EDIT_OPS)
def test_edit_stays_inside_its_mask(op):
    from retrieval.sources import build_source

    rec = next(iter(build_source("skimage").iter_items()))
    pair = sp.edit_pair(rec.image, random.Random(0), rec.id, op=op)
    diff = sp.changed_pixels(pair.civilian, pair.spy)
    assert diff.sum() == pair.difference["changed_pixels"] > 0
    assert not (diff & ~pair.mask()).any()
    x0, y0, x1, y1 = pair.difference["box"]
    assert pair.mask_boxes == [[x0, y0, x1, y1]]


def test_flat_image_is_refused_with_a_reason():
    from PIL import Image

    with pytest.raises(ValueError, match="too flat"):
        sp.edit_pair(Image.new("RGB", (32, 32), (10, 10, 10)), random.Random(0), "flat")


def test_make_pair_picks_the_kind_and_pool_records_carry_the_difference(tmp_path):
    from retrieval.pool import ImagePool
    from retrieval.sources import build_source

    recs = list(build_source("procedural", n=3, seed=0).iter_items())  # shapes, charts, grids
    pairs = [sp.make_pair(r, random.Random(0)) for r in recs]
    assert [p.kind for p in pairs] == ["scene", "chart", "edit"]
    pool = ImagePool(tmp_path / "pool")
    report = pool.add([r for p in pairs for r in sp.pair_records(p)])
    assert report.added == 6 and pool.add([r for p in pairs for r in sp.pair_records(p)]).duplicates == 6
    civ_id, spy_id = sp.pair_image_ids(pairs[0])
    stored = pool.get_record(spy_id)
    assert stored.source == sp.SOURCE and stored.meta["difference"] == pairs[0].difference and stored.meta["side"] == "spy"
    assert np.array_equal(np.asarray(pool.get_image(civ_id)), np.asarray(pairs[0].civilian))
