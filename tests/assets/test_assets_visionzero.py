"""Vision-Zero through Dagster on the smoke foundation, then V-Zero on the same home: generated images stay put.

Vision-Zero's games make pair images; they belong to that iteration's curriculum (stored with it, in the
task set's lineage), so the foundation pool, and its data version, does not change, and a V-Zero iteration
afterwards asks about foundation images only.
"""

import pandas as pd

from assets.store import IterationStore
from orchestration.runs import materialization_metadata, run_iteration
from retrieval.pool import ImagePool


def test_visionzero_then_vzero_on_one_home(smoke_home_factory):
    home, instance = smoke_home_factory("visionzero")
    store = IterationStore(home)
    before = set(ImagePool(home / "pool").ids())

    r = run_iteration(instance, "visionzero", 1, {"profile": "smoke"})
    assert r.success, [e.step_failure_data.error for e in r.get_step_failure_events()]
    md = materialization_metadata(r)
    assert md["visionzero/task_set"]["games"] >= 1 and md["visionzero/task_set"]["generated_images"] >= 2
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True
    assert set(ImagePool(home / "pool").ids()) == before  # the pool holds exactly what image_pool put there
    pairs = set(ImagePool(store.generated_images_dir("visionzero", "iter-0001")).ids())
    games = pd.read_parquet(store.task_set_path("visionzero", "iter-0001"))
    played = games[games["reason"] != "no_pair"]
    assert set(played["image_id"]) | set(played["spy_image_id"]) <= pairs

    v = run_iteration(instance, "vzero", 1, {"profile": "smoke"})
    assert v.success
    asked = set(pd.read_parquet(store.task_set_path("vzero", "iter-0001"))["image_id"]) - {""}
    assert asked and asked <= before and not asked & pairs
