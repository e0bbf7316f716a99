"""The V-Zero loop through Dagster: iterations as partitions on a persistent instance, the N-1 guard, the sensor."""

import json

import dagster as dg
import pandas as pd
import pytest

from assets.resources import ZeroforgeHome
from assets.store import IterationStore, MissingParentError, iteration_key, parse_iteration
from orchestration.definitions import defs
from orchestration.runs import materialization_metadata, partition_set_tags, run_iteration
from orchestration.sensors import LoopSettings

# iteration 1 with a non-default m, so that later iterations visibly inherit it (the smoke profile's m is 4)
FIRST = {"profile": "smoke", "m": 3}


@pytest.fixture(scope="module")
def smoke_home(smoke_home_factory):
    """A zeroforge home with a persistent Dagster instance and the smoke foundation (tiny warm-started base)."""
    return smoke_home_factory("loop")


def frozen(home, key: str) -> dict:
    return json.loads(IterationStore(home).config_path("vzero", key).read_text())


def test_partition_keys_sort_as_text():
    keys = [iteration_key(n) for n in (1, 2, 10, 100)]
    assert keys == sorted(keys) == ["iter-0001", "iter-0002", "iter-0010", "iter-0100"]
    assert parse_iteration("iter-0042") == 42
    with pytest.raises(ValueError, match="iter-0001"):
        parse_iteration("3")


def test_store_guard_names_the_missing_parent(tmp_path):
    store = IterationStore(tmp_path)
    with pytest.raises(MissingParentError, match="materialize `base_model` first"):
        store.parent_checkpoint("vzero", "iter-0001", "solver")
    with pytest.raises(MissingParentError, match="iter-0001"):
        store.parent_checkpoint("vzero", "iter-0002", "solver")


def test_two_iterations_and_the_guard(smoke_home):
    home, instance = smoke_home
    store = IterationStore(home)

    # Iteration 3 before 2 exists: the run fails with the guard's message, nothing is written for it.
    r3 = run_iteration(instance, "vzero", 3, {"profile": "smoke"})
    assert not r3.success
    messages = " ".join(e.step_failure_data.error.cause.message for e in r3.get_step_failure_events() if e.step_failure_data.error.cause)
    assert "iter-0002" in messages and "materialize iter-0002 first" in messages
    assert not store.checkpoint_complete(store.role_dir("vzero", "iter-0003", "questioner"))

    r1 = run_iteration(instance, "vzero", 1, FIRST)
    assert r1.success
    md = materialization_metadata(r1)
    assert set(md) == {f"vzero/{a}" for a in ("iteration_config", "questioner_checkpoint", "task_set", "solver_checkpoint",
                                              "benchmark_scores", "curriculum_lineage")}
    assert md["vzero/iteration_config"]["overrides"] == {"m": 3} and md["vzero/iteration_config"]["based_on"] == "profile smoke"
    assert md["vzero/questioner_checkpoint"]["parent"] == "base_model"
    ts = md["vzero/task_set"]
    assert ts["generated"] == 8 and ts["kept"] + ts["malformed"] + ts["duplicate"] + ts["no_majority"] + ts["too_easy"] + ts["too_hard"] == 8
    df = pd.read_parquet(store.task_set_path("vzero", "iter-0001"))  # what the IO manager stored for the Solver
    assert len(df) == 8 and {"answers", "majority", "c", "kept", "reason"} <= set(df.columns)
    assert all(len(a) == 3 for a in df[df.reason != "malformed"]["answers"])  # m = 3 samples each
    card = json.loads((store.role_dir("vzero", "iter-0001", "solver") / "zeroforge_train.json").read_text())
    assert card["hyperparams"]["num_generations"] == 2 and card["loop_config"]["m"] == 3  # full config stored
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in r1.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["task_set_is_valid"] is True and "benchmark_scores_did_not_regress" in checks
    # a healthy smoke iteration passes every guard
    guards = ("pseudo_labels_are_trustworthy", "task_makers_keep_the_format", "solver_did_not_collapse", "solver_did_not_unlearn")
    assert all(checks[name] is True for name in guards), {name: checks.get(name) for name in guards}
    flips = store.guard_results("vzero", "iter-0001")["flip_rate"]["metrics"]["sets"]
    assert "held-out 4-option" in flips and len(flips) > 1  # every configured benchmark, paired against the parent
    assert md["vzero/benchmark_scores"]["n"] > 0 and store.base_scores_path("vzero").is_file()

    r2 = run_iteration(instance, "vzero", 2)  # no overrides: iteration 2 starts from iteration 1's frozen config
    assert r2.success
    md2 = materialization_metadata(r2)
    assert md2["vzero/iteration_config"]["inherited_from"] == "iter-0001" and frozen(home, "iter-0002")["config"]["m"] == 3
    assert md2["vzero/solver_checkpoint"]["parent"] == "vzero/iter-0001/solver"
    assert md2["vzero/benchmark_scores"]["parent_greedy_accuracy"] == md["vzero/benchmark_scores"]["greedy_accuracy"]
    flips2 = store.guard_results("vzero", "iter-0002")["flip_rate"]["metrics"]["sets"]
    assert "held-out 4-option vs base" in flips2 and any(k.endswith(" vs base") and k.startswith("procedural") for k in flips2)
    assert not any(k.endswith(" vs base") for k in flips)  # iteration 1: the parent is the base
    assert sorted(instance.get_dynamic_partitions("vzero_iterations")) == ["iter-0001", "iter-0002", "iter-0003"]


def test_chain_sensor_requests_the_next_iteration_with_the_last_one_s_config(smoke_home):
    home, instance = smoke_home
    sensor = defs.resolve_sensor_def("vzero_chain_iterations")
    # the module fixture left iter-0003 (failed) as the newest partition: no scores, so skip
    def ctx(**settings):
        return dg.build_sensor_context(instance=instance, resources={"loop_settings": LoopSettings(**settings),
                                                                     "home": ZeroforgeHome(root=str(home))})

    result = sensor(ctx(max_iterations=5))
    assert isinstance(result, dg.SkipReason) and "iter-0003 has no benchmark_scores" in result.skip_message
    instance.delete_dynamic_partition("vzero_iterations", "iter-0003")
    result = sensor(ctx(max_iterations=5))
    assert [r.partition_key for r in result.run_requests] == ["iter-0003"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["iter-0003"]
    # run the request as the daemon would: its (empty) run config, its partition and tags
    request = result.run_requests[0]
    instance.add_dynamic_partitions("vzero_iterations", ["iter-0003"])
    run = defs.resolve_job_def("vzero_iteration").execute_in_process(
        instance=instance, partition_key=request.partition_key, run_config=request.run_config or {},
        tags={**request.tags, **partition_set_tags("vzero", "iter-0003")}, raise_on_error=False)
    assert run.success
    third = frozen(home, "iter-0003")
    assert third["config"] == frozen(home, "iter-0002")["config"] and third["config"]["m"] == 3  # not the defaults
    assert third["provenance"]["inherited_from"] == "iter-0002" and third["provenance"]["overrides"] == {}
    instance.delete_dynamic_partition("vzero_iterations", "iter-0003")
    capped = sensor(ctx(max_iterations=2))
    assert isinstance(capped, dg.SkipReason) and "max_iterations=2" in capped.skip_message


def test_scores_regression_check_and_leaderboard(smoke_home):
    """After test_two_iterations_and_the_guard: harness reports exist, the WARN check ran, the leaderboard compares them."""
    from evaluation.runner import EvalReport
    from orchestration.runs import run_leaderboard

    home, instance = smoke_home
    store = IterationStore(home)
    r = run_iteration(instance, "vzero", 1, FIRST)  # rerun of a partition: same (frozen) config, parents unchanged
    assert r.success
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert {"task_set_is_valid", "benchmark_scores_did_not_regress", "solver_did_not_collapse"} <= set(checks)
    assert checks["benchmark_scores_did_not_regress"].severity == dg.AssetCheckSeverity.WARN
    report = EvalReport.load(store.eval_dir("vzero", "iter-0001"))
    assert report["procedural"].n == 24 and (store.eval_dir("vzero", "iter-0001") / "predictions" / "procedural.parquet").is_file()
    board = run_leaderboard(instance, "vzero")
    assert board.success
    md = materialization_metadata(board)["vzero/leaderboard"]
    assert md["models"][0] == "base" and "iter-0001" in md["models"]
    assert "procedural" in md["table"]
