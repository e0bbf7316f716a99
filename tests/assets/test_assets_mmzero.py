"""An MM-Zero iteration through Dagster on the smoke foundation: three roles' assets, the gate, the audit metadata.

The base is a user checkpoint (`base_model.model_path`): the tiny model taught MM-Zero's formats
(`mmzero_base` in tests/conftest.py), so its first programs render; the smoke base shares its short
warm start among every recipe's formats and rarely writes a whole Proposer item.
"""

import json

import pandas as pd

from assets.store import IterationStore
from orchestration.presets import foundation_run_config
from orchestration.runs import materialization_metadata, run_foundation, run_iteration
from recipes.mmzero.render import RENDER_SOURCE
from retrieval.pool import ImagePool

SMOKE = {"profile": "smoke"}


def test_mmzero_iteration_through_dagster(smoke_home_factory, mmzero_base):
    home, instance = smoke_home_factory("mmzero")
    foundation = foundation_run_config("smoke")
    # A seconds-long base: the plumbing, not the model, is checked here.
    foundation["ops"]["base_model"]["config"] = {"model_path": str(mmzero_base), "require_above_chance": False}
    assert run_foundation(instance, foundation).success
    before = set(ImagePool(home / "pool").ids())
    # The base is taught one templated item, so its Solver answers one letter everywhere: the collapse guard sees
    # it. Every guard only warns here (recorded with the config), so the plumbing after the guards runs too.
    r = run_iteration(instance, "mmzero", 1, {**SMOKE, "guards_blocking": []})
    assert r.success
    md = materialization_metadata(r)
    assert set(md) == {f"mmzero/{a}" for a in ("iteration_config", "proposer_checkpoint", "coder_checkpoint", "task_set",
                                               "solver_checkpoint", "benchmark_scores", "curriculum_lineage")}
    assert md["mmzero/coder_checkpoint"]["parent"] == "base_model" and "coder_render_rate" in md["mmzero/coder_checkpoint"]
    ts = md["mmzero/task_set"]
    assert ts["proposer_items"] == 24 and ts["renders_ok"] >= 1 and ts["kept"] >= 1
    assert "| item | render |" in ts["curriculum_audit"] and "base64" in ts["renders_contact_sheet"]
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True
    assert set(checks) >= {"pseudo_labels_are_trustworthy", "task_makers_keep_the_format", "solver_did_not_collapse"}
    frozen = json.loads(IterationStore(home).config_path("mmzero", "iter-0001").read_text())
    assert frozen["config"]["guards"]["blocking"] == [] and frozen["provenance"]["requested"]["guards_blocking"] == []

    # only renders of this iteration are asked about; they live with the iteration's curriculum, not in the pool
    store = IterationStore(home)
    df = pd.read_parquet(store.task_set_path("mmzero", "iter-0001"))
    asked = set(df["image_id"]) - {""}
    assert set(ImagePool(home / "pool").ids()) == before  # the foundation pool is untouched
    new = ImagePool(store.generated_images_dir("mmzero", "iter-0001")).records()
    assert asked and asked <= set(new["id"]) and set(new["source"]) == {RENDER_SOURCE}
    assert all(json.loads(m)["partition"] == "iter-0001" for m in new["meta_json"])
    assert ts["generated_images"] == len(new)
