"""Reruns: which iterations failed, a Dagster backfill that re-executes only those, and dead-run recovery.

A failed iteration is a partition of `<recipe>_iteration` whose latest run
failed (a step raised after its retry, a blocking check failed, or its worker
was killed). `launch_failed_backfill` asks Dagster for a **job backfill from
failure** over those partitions, through the same GraphQL mutation the UI's
"Launch backfill" dialog sends (`launchPartitionBackfill`, `fromFailure:
true`): Dagster re-executes each failed run from its failed step, and skips
any partition whose latest run succeeded. Training steps resume from their
last trainer checkpoint (`models.grpo`), so a killed Solver loses at most
`save_steps` steps.

The backfill is a record on the instance; the daemon that `zeroforge ui`
(`dagster dev`) runs submits its runs. `drive_backfill` runs that same daemon
code in this process instead, for instances whose run launcher executes runs
in-process (the tests) or when no daemon is running.

`free_dead_runs` does for in-process runs (`zeroforge demo`, notebooks, tests)
what Dagster's run monitoring does for launched ones: a run whose worker
process on this machine is gone is marked failed, and the concurrency-pool
slot its step held is freed (otherwise the `gpu` pool stays claimed forever and
the next run waits with "Step blocked by limit for pool gpu"); a finished run
still holding a slot has it freed too. `recover_dead_runs` is the same with a
line printed per run, for the CLI's run paths to call first; `dry_run=True`
changes nothing and reports what would be done.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
# The code location `dagster dev -w workspace.yaml` creates: a python_module entry with an attribute is "module:attribute".
LOCATION_NAME = "orchestration.definitions:defs"
REPOSITORY_NAME = "__repository__"  # the repository a `Definitions` object becomes
HOST_TAG = "zeroforge/host"
FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
TERMINAL_BACKFILL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on Error { message }
  }
}
"""


def partition_set_name(recipe: str) -> str:
    return f"{recipe}_iteration_partition_set"


def latest_runs_by_partition(instance: dg.DagsterInstance, recipe: str) -> dict[str, dg.DagsterRun]:
    """The newest run of `<recipe>_iteration` for every partition that has one."""
    out: dict[str, dg.DagsterRun] = {}
    for record in instance.get_run_records(dg.RunsFilter(job_name=f"{recipe}_iteration")):  # newest first
        key = record.dagster_run.tags.get("dagster/partition")
        if key and key not in out:
            out[key] = record.dagster_run
    return out


def failed_partitions(instance: dg.DagsterInstance, recipe: str) -> list[str]:
    """Iteration keys whose latest run failed or was canceled, in order (what a from-failure backfill reruns)."""
    return sorted(k for k, run in latest_runs_by_partition(instance, recipe).items() if run.status in FAILED)


def workspace_context(instance: dg.DagsterInstance):
    """The zeroforge code location loaded in this process, under the name `dagster dev` gives it."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions",
                             attribute="defs", working_directory=str(REPO_ROOT)),
        location_name=LOCATION_NAME,
    )
    return WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin))


def launch_failed_backfill(
    instance: dg.DagsterInstance,
    recipe: str,
    partitions: list[str] | None = None,
    run_config: dict | None = None,
    title: str | None = None,
) -> tuple[str, list[str]]:
    """Create a from-failure backfill over `partitions` (default: the failed ones). Returns (backfill id, partitions).

    Raises ValueError when there is nothing to rerun. `run_config` is passed as the backfill's run config
    (e.g. `{"execution": {"config": {"in_process": {}}}}`); each partition's loop settings come from its
    frozen `iteration_config.json` anyway.
    """
    import asyncio

    from dagster_graphql.schema import create_schema

    keys = failed_partitions(instance, recipe) if partitions is None else list(partitions)
    if not keys:
        raise ValueError(f"no failed {recipe} iterations on this instance: nothing to backfill")
    params = {
        "selector": {
            "partitionSetName": partition_set_name(recipe),
            "repositorySelector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME},
        },
        "partitionNames": keys,
        "fromFailure": True,
        "title": title or f"rerun failed {recipe} iterations",
    }
    if run_config:
        params["runConfigData"] = run_config
    with workspace_context(instance) as ctx:  # the webserver's schema, executed against this process's workspace
        result = asyncio.run(create_schema().execute_async(
            LAUNCH_BACKFILL, context_value=ctx.create_request_context(), variable_values={"params": params}))
    payload = (result.data or {}).get("launchPartitionBackfill") or {}
    if payload.get("__typename") != "LaunchBackfillSuccess":
        raise RuntimeError(f"Dagster refused the backfill: {payload or result.errors}")
    return payload["backfillId"], keys


def backfill_status(instance: dg.DagsterInstance, backfill_id: str) -> str:
    return instance.get_backfill(backfill_id).status.value


def drive_backfill(instance: dg.DagsterInstance, backfill_id: str, timeout_s: float = 3600, poll_s: float = 1.0) -> str:
    """Run Dagster's backfill daemon iterations in this process until the backfill finishes; returns its status."""
    from dagster._daemon.backfill import execute_backfill_iteration

    logger = logging.getLogger("zeroforge.backfill")
    deadline = time.monotonic() + timeout_s
    with workspace_context(instance) as ctx:
        while True:
            for error in execute_backfill_iteration(ctx, logger):
                if error is not None:
                    logger.warning("backfill iteration error: %s", error.to_string())
            status = backfill_status(instance, backfill_id)
            if status in TERMINAL_BACKFILL:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, timeout_s: float = 3600, poll_s: float = 5.0) -> str:
    """Poll a backfill that a running daemon (`zeroforge ui`) executes until it finishes."""
    deadline = time.monotonic() + timeout_s
    while (status := backfill_status(instance, backfill_id)) not in TERMINAL_BACKFILL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout_s:.0f} s: is the daemon running (`zeroforge ui`)?")
        time.sleep(poll_s)
    return status


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags=dg.DagsterRun.tags_for_backfill_id(backfill_id))))


# -- dead in-process runs -------------------------------------------------------------------------------


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    return records[0].dagster_event.pid if records and records[0].dagster_event else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class DeadRun:
    """One dead run found on this instance and what was (or, dry, would be) done about it."""

    run_id: str
    job: str
    partition: str | None
    reason: str                  # why it is dead
    marked_failed: bool          # it was STARTED/STARTING and is now FAILURE
    slots: tuple[str, ...]       # "pool:step" slots and pending steps freed
    dry_run: bool = False

    def describe(self) -> str:
        verb = "would be" if self.dry_run else "was"
        what = []
        if self.marked_failed:
            what.append(f"{verb} marked failed")
        if self.slots:
            what.append(f"its pool slot(s) {', '.join(self.slots)} {verb} freed")
        where = f"{self.job}" + (f" {self.partition}" if self.partition else "")
        return f"run {self.run_id} ({where}): {self.reason}; {' and '.join(what) or 'nothing to do'}"


def _slots_by_run(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Claimed concurrency slots and pending steps per run, over every pool."""
    storage = instance.event_log_storage
    held: dict[str, list[str]] = {}
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        for slot in info.claimed_slots:
            held.setdefault(slot.run_id, []).append(f"{key}:{slot.step_key}")
        for step in getattr(info, "pending_steps", []) or []:
            mine = held.setdefault(step.run_id, [])
            if f"{key}:{step.step_key}" not in mine:  # a claimed step is listed as pending too
                mine.append(f"{key}:{step.step_key} (pending)")
    return held


def free_dead_runs(instance: dg.DagsterInstance, dry_run: bool = False) -> list[DeadRun]:
    """Find this machine's dead runs and free what they hold, so a rerun does not wait forever.

    Dead means: a STARTED/STARTING run tagged with this host (`zeroforge/host`) whose worker process
    is gone (killed with -9, crashed), or any run that has finished (or vanished) but still holds a
    concurrency-pool slot or a pending step (the "Step blocked by limit for pool gpu" hang). The first
    kind is marked failed; both have their slots freed. With `dry_run` nothing is changed and the
    returned list says what would be done. Runs of other hosts in STARTED are left to Dagster's run
    monitoring. Call it at the start of every CLI path that runs iterations (`demo`, `backfill`).
    """
    host = socket.gethostname()
    held = _slots_by_run(instance)
    found: list[DeadRun] = []
    started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    dead_started = set()
    for run in started:
        if run.tags.get(HOST_TAG) != host:
            continue
        pid = _run_pid(instance, run.run_id)
        if pid is None or _alive(pid):
            continue
        dead_started.add(run.run_id)
        if not dry_run:
            instance.report_run_failed(run, f"the run worker (pid {pid} on {host}) is gone: killed or crashed; "
                                            "marked failed by zeroforge")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        found.append(DeadRun(run.run_id, run.job_name, run.tags.get("dagster/partition"),
                             f"its worker process (pid {pid}) is gone", True, tuple(held.get(run.run_id, ())),
                             dry_run))
    for run_id, slots in sorted(held.items()):
        if run_id in dead_started:
            continue
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue  # a live run's slot
        if not dry_run:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        reason = "the run no longer exists" if run is None else f"the run is {run.status.value} but kept its slot"
        found.append(DeadRun(run_id, run.job_name if run else "?", run.tags.get("dagster/partition") if run else None,
                             reason, False, tuple(slots), dry_run))
    return found


def recover_dead_runs(instance: dg.DagsterInstance, dry_run: bool = False, echo=print) -> list[DeadRun]:
    """`free_dead_runs`, saying what it did (one line per run through `echo`); the CLI's one-line hook."""
    found = free_dead_runs(instance, dry_run=dry_run)
    for dead in found:
        echo(dead.describe())
    return found


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark started runs of this machine whose worker process is gone as failed; free their pool slots.
    Returns the ids of the runs marked failed (see `free_dead_runs` for the full account)."""
    return [d.run_id for d in free_dead_runs(instance) if d.marked_failed]
