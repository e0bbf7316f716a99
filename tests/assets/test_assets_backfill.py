"""A Dagster backfill that re-executes only the failed iterations, and the instance's retry settings."""

import shutil

import dagster as dg

from assets.store import IterationStore
from orchestration.instance import DAGSTER_YAML

SMOKE = {"profile": "smoke"}
# Runs launched by the backfill execute synchronously in this process (Dagster's test launcher), so the
# backfill daemon's own code can be driven here without a daemon or a code server.
SYNC_LAUNCHER = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: dagster._core.launcher.sync_in_memory_run_launcher
  class: SyncInMemoryRunLauncher
"""
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _materialized_partitions(instance, key: str) -> list[str]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(key)), limit=100).records
    return sorted(r.partition_key for r in records)


def test_backfill_reruns_only_the_failed_partitions(smoke_home_factory):
    from orchestration.backfill import backfill_runs, drive_backfill, failed_partitions, launch_failed_backfill
    from orchestration.runs import run_iteration

    home, _ = smoke_home_factory("backfill")
    (home / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML + SYNC_LAUNCHER)
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    store = IterationStore(home)

    assert run_iteration(instance, "vzero", 1, SMOKE).success
    # A transient infrastructure fault during iteration 2: the image pool is unreachable.
    (home / "pool").rename(home / "pool.offline")
    failed = run_iteration(instance, "vzero", 2, SMOKE)
    assert not failed.success
    shutil.rmtree(home / "pool")  # the step recreated an empty pool folder
    (home / "pool.offline").rename(home / "pool")
    assert failed_partitions(instance, "vzero") == ["iter-0002"]

    # A from-failure job backfill over every partition: Dagster itself skips iter-0001 (its last run
    # succeeded) and re-executes iter-0002's failed run from its failed step.
    backfill_id, keys = launch_failed_backfill(instance, "vzero", partitions=["iter-0001", "iter-0002"], run_config=IN_PROCESS)
    assert keys == ["iter-0001", "iter-0002"]
    assert drive_backfill(instance, backfill_id, timeout_s=900) == "COMPLETED_SUCCESS"
    [run] = backfill_runs(instance, backfill_id)
    assert run.tags["dagster/partition"] == "iter-0002" and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.parent_run_id == failed.run_id  # a re-execution of the failed run, not a fresh one
    assert _materialized_partitions(instance, "vzero/solver_checkpoint") == ["iter-0001", "iter-0002"]  # iter-0001 once
    assert store.checkpoint_complete(store.role_dir("vzero", "iter-0002", "solver"))
    assert failed_partitions(instance, "vzero") == []

    # Nothing failed any more: the default (failed partitions only) has nothing to do.
    try:
        launch_failed_backfill(instance, "vzero")
    except ValueError as e:
        assert "no failed vzero iterations" in str(e)
    else:
        raise AssertionError("expected a ValueError for an empty backfill")


def test_instance_reads_retries_monitoring_and_the_gpu_pool(tmp_path, monkeypatch):
    from orchestration.instance import prepare_instance

    for k in ("ZEROFORGE_HOME", "DAGSTER_HOME"):
        monkeypatch.setenv(k, "")
    dagster_home = prepare_instance(tmp_path)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert instance.run_retries_retry_on_asset_or_op_failure
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["poll_interval_seconds"] == 30
    pools = instance.get_concurrency_config().pool_config
    assert pools.default_pool_limit == 1 and pools.pool_granularity.value == "op"

    # the iteration job's runs are queued behind each other, in order, so a backfilled iteration N+1 never
    # starts before N finished
    from orchestration.definitions import defs

    job = defs.resolve_job_def("vzero_iteration")
    assert job.tags["zeroforge/loop"] == "vzero"
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "zeroforge/loop", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def _dead_run_with_a_slot(instance, job="vzero_iteration", partition="iter-0003"):
    """A STARTED run of this host whose worker is gone, holding the gpu pool slot (a kill -9)."""
    import socket
    import subprocess
    import uuid

    from orchestration.backfill import HOST_TAG

    gone = subprocess.Popen(["true"])
    gone.wait()
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name=job, run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                   tags={HOST_TAG: socket.gethostname(), "dagster/partition": partition}))
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=job,
                            message="started", pid=gone.pid)
    instance.report_dagster_event(event, run_id)
    storage = instance.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    assert storage.claim_concurrency_slot("gpu", run_id, "vzero/solver_checkpoint").is_claimed
    return run_id


def test_dead_runs_are_found_dry_run_changes_nothing_then_slots_are_freed(tmp_path):
    from orchestration.backfill import fail_dead_runs, free_dead_runs, recover_dead_runs

    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    run_id = _dead_run_with_a_slot(instance)
    storage = instance.event_log_storage

    [dry] = free_dead_runs(instance, dry_run=True)
    assert dry.run_id == run_id and dry.marked_failed and dry.slots == ("gpu:vzero/solver_checkpoint",)
    assert "would be marked failed" in dry.describe()
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # dry: unchanged
    assert len(storage.get_concurrency_info("gpu").claimed_slots) == 1

    lines = []
    [done] = recover_dead_runs(instance, echo=lines.append)
    assert done.run_id == run_id and lines and "was marked failed" in lines[0] and "gpu" in lines[0]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert storage.get_concurrency_info("gpu").claimed_slots == []
    assert free_dead_runs(instance) == [] and fail_dead_runs(instance) == []  # nothing left to do

    # A run that already failed but kept its slot (a crash between the two steps) is freed too.
    other = _dead_run_with_a_slot(instance, partition="iter-0004")
    instance.report_run_failed(instance.get_run_by_id(other), "failed elsewhere")
    [kept] = free_dead_runs(instance)
    assert kept.run_id == other and not kept.marked_failed and kept.slots
    assert storage.get_concurrency_info("gpu").claimed_slots == []
