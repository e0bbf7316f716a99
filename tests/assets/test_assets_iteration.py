"""The iteration_config asset, called as a function: profiles, inheritance from the parent, recorded overrides, freezing."""

import json

import dagster as dg
import pytest

from assets.iteration import launchpad_config
from assets.resources import ZeroforgeHome
from assets.store import IterationStore
from orchestration.definitions import defs


def materialize_config(home, key: str, **knobs):
    """Call vzero/iteration_config as a plain function for partition `key`, the IO manager's write included."""
    asset = defs.resolve_assets_def(dg.AssetKey(["vzero", "iteration_config"]))
    launchpad = launchpad_config("vzero")(**knobs)
    ctx = dg.build_asset_context(partition_key=key)
    out = asset(ctx, config=launchpad, home=ZeroforgeHome(root=str(home)))
    path = IterationStore(home).config_path("vzero", key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out.value.to_json()))
    return out.value, out.metadata


def test_launchpad_has_every_scalar_field_with_its_help():
    fields = launchpad_config("vzero").model_fields
    assert {"profile", "m", "band_low", "band_high", "solver_steps", "learning_rate", "refreeze"} <= set(fields)
    assert all(f.description for f in fields.values())
    assert fields["m"].default is None  # None: not overridden (0 or -1 never mean "the profile's value")
    assert {"render_size", "easy_min"} <= set(launchpad_config("mmzero").model_fields)  # a recipe's own knobs


def test_iteration_two_inherits_iteration_one_s_config_and_records_overrides(tmp_path):
    first, md = materialize_config(tmp_path, "iter-0001", profile="smoke", m=3)
    assert first.config.m == 3 and first.config.solver.steps == 2  # the smoke profile, m overridden
    assert md["based_on"].value == "profile smoke" and md["overrides"].value == {"m": 3}

    second, md = materialize_config(tmp_path, "iter-0002")
    assert second.config == first.config  # not the defaults: iteration 1's frozen config
    assert md["inherited_from"].value == "iter-0001" and md["overrides"].value == {}

    other = tmp_path / "other"
    materialize_config(other, "iter-0001", profile="smoke", m=3)
    third, md = materialize_config(other, "iter-0002", band_low=0.5, solver_steps=7)
    assert (third.config.m, third.config.band_low, third.config.solver.steps) == (3, 0.5, 7)
    assert md["based_on"].value == "frozen config of iter-0001" and md["overrides"].value == {"band_low": 0.5, "solver_steps": 7}


def test_a_frozen_config_is_reused_and_different_overrides_are_refused(tmp_path):
    first, _ = materialize_config(tmp_path, "iter-0001", profile="smoke", m=3)
    again, md = materialize_config(tmp_path, "iter-0001", profile="smoke", m=3)  # a rerun: the frozen one
    assert md["status"].value == "frozen" and again.config == first.config
    with pytest.raises(ValueError, match="refreeze=True"):
        materialize_config(tmp_path, "iter-0001", m=5)
    changed, md = materialize_config(tmp_path, "iter-0001", m=5, refreeze=True)
    assert md["status"].value == "resolved" and changed.config.m == 5


def test_guards_can_be_made_warn_only_and_it_is_recorded(tmp_path):
    cfg, md = materialize_config(tmp_path, "iter-0001", profile="smoke", guards_blocking=["label_quality"])
    assert cfg.config.guards.blocking == ["label_quality"] and md["overrides"].value == {"guards_blocking": ["label_quality"]}
    second, _ = materialize_config(tmp_path, "iter-0002")
    assert second.config.guards.blocking == ["label_quality"]  # inherited, like every other knob
    with pytest.raises(ValueError, match="unknown guards"):
        materialize_config(tmp_path / "x", "iter-0001", profile="smoke", guards_blocking=["no_such_guard"])
