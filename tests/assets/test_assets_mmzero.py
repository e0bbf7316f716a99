"""An MM-Zero iteration through Dagster on the smoke foundation: three roles' assets, the gate, the audit metadata.

The base is a user checkpoint (`base_model.model_path`): the tiny model taught MM-Zero's formats
(`mmzero_base` in tests/conftest.py), so its first programs render; the smoke base shares its short
warm start among every recipe's formats and rarely writes a whole Proposer item.
"""

import json

import pandas as pd

from assets.store import IterationStore

SMOKE = {"profile": "smoke"}


def test_mmzero_iteration_through_dagster(smoke_home_factory, mmzero_base):
    from orchestration.runs import materialization_metadata, run_foundation, run_iteration
    from zeroforge.cli import run_config_for
    from recipes.mmzero import RENDER_SOURCE
    from retrieval.pool import ImagePool

    home, instance = smoke_home_factory("mmzero")
    foundation = run_config_for("smoke")
    foundation["ops"]["base_model"]["config"] = {"model_path": str(mmzero_base)}
    assert run_foundation(instance, foundation).success
    before = set(ImagePool(home / "pool").ids())
    r = run_iteration(instance, "mmzero", 1, SMOKE)
    assert r.success
    md = materialization_metadata(r)
    assert set(md) == {"mmzero/proposer_checkpoint", "mmzero/coder_checkpoint", "mmzero/task_set",
                       "mmzero/solver_checkpoint", "mmzero/benchmark_scores"}
    assert md["mmzero/coder_checkpoint"]["parent"] == "base_model" and "coder_render_rate" in md["mmzero/coder_checkpoint"]
    ts = md["mmzero/task_set"]
    assert ts["proposer_items"] == 24 and ts["renders_ok"] >= 1 and ts["kept"] >= 1
    assert "| item | render |" in ts["curriculum_audit"] and "base64" in ts["renders_contact_sheet"]
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True

    # only renders of this iteration are asked about; they joined the pool as their own source
    df = pd.read_parquet(IterationStore(home).task_set_path("mmzero", "iter-0001"))
    asked = set(df["image_id"]) - {""}
    new = ImagePool(home / "pool").records(f"source = '{RENDER_SOURCE}'")  # a fresh handle sees the run's additions
    assert asked and asked <= set(new["id"]) and not asked & before
    assert all(json.loads(m)["partition"] == "iter-0001" for m in new["meta_json"])
