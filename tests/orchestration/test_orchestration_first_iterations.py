"""A recipe that never ran must not look done in the UI: every recipe's first iteration is declared up front.

Dagster's lineage view counts a partitioned asset whose partition set is empty as up to date, so
recipes that had never run showed the same green as the one that had. The CLI's instance now
declares iter-0001 for every recipe without partitions, which the view shows as one missing
partition ("never materialized").
"""

import dagster as dg

from assets.resources import ZeroforgeHome
from orchestration.definitions import defs
from orchestration.runs import open_first_iterations
from orchestration.sensors import LoopSettings
from recipes import RECIPES


def test_every_recipe_without_partitions_gets_its_first_iteration_once():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("vzero_iterations", ["iter-0001", "iter-0002"])  # a recipe that ran
    opened = open_first_iterations(instance)
    assert sorted(opened) == sorted(r for r in RECIPES if r != "vzero")
    for recipe in RECIPES:
        keys = instance.get_dynamic_partitions(f"{recipe}_iterations")
        assert keys == (["iter-0001", "iter-0002"] if recipe == "vzero" else ["iter-0001"])
        # declared, never materialized: the UI counts it missing instead of vacuously complete
        assert not instance.get_materialized_partitions(dg.AssetKey([recipe, "iteration_config"]))
    assert open_first_iterations(instance) == []  # idempotent


def test_the_cli_instance_declares_them_and_the_sensor_says_how_to_start(tmp_path, monkeypatch):
    from zeroforge import cli

    for var in ("DAGSTER_HOME", "ZEROFORGE_HOME"):  # _instance points both at the home: restored after the test
        monkeypatch.setenv(var, str(tmp_path / "unused"))
    instance = cli._instance(tmp_path / "home")
    try:
        assert all(instance.get_dynamic_partitions(f"{r}_iterations") == ["iter-0001"] for r in RECIPES)
        ctx = dg.build_sensor_context(instance=instance, resources={
            "loop_settings": LoopSettings(), "home": ZeroforgeHome(root=str(tmp_path / "home"))})
        skipped = defs.resolve_sensor_def("mmzero_chain_iterations")(ctx)
        assert isinstance(skipped, dg.SkipReason)
        assert "iter-0001 has no benchmark_scores yet: launch it from the mmzero_iteration job" in skipped.skip_message
    finally:
        instance.dispose()
