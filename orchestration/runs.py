"""Launching runs programmatically: the same jobs the UI launches, on a given instance.

`zeroforge demo`, the tests and the benchmarks use these to execute the
foundation job and iteration partitions in-process, on the instance
$DAGSTER_HOME points at, so everything they do shows up in `make ui`.
"""

import socket

import dagster as dg

from assets.store import iteration_key
from orchestration.definitions import defs
from recipes import RECIPES


def iteration_run_config(recipe: str, overrides: dict | None = None) -> dict:
    """Run config of an iteration: the launchpad knobs of its `iteration_config` asset (the only one with config).

    Empty: the iteration starts from its parent's frozen config (iteration 1: the default profile).
    """
    op = defs.resolve_assets_def(dg.AssetKey([recipe, "iteration_config"])).node_def.name
    return {"ops": {op: {"config": dict(overrides or {})}}}


def partition_set_tags(recipe: str, key: str) -> dict[str, str]:
    """The tags the UI and backfills put on a partition's run, so "the last run of iter-0002" finds ours too,
    plus the host, so `orchestration.backfill.fail_dead_runs` can tell whether a started run's worker is gone."""
    return {"dagster/partition": key, "dagster/partition_set": f"{recipe}_iteration_partition_set",
            "zeroforge/host": socket.gethostname()}


def open_first_iterations(instance: dg.DagsterInstance) -> list[str]:
    """Add partition iter-0001 to every recipe that has none; returns the recipes it opened.

    A recipe whose dynamic partition set is empty has nothing "missing", so Dagster's lineage view
    counted its partitioned assets as up to date: a recipe that never ran showed the same green as
    the one that did. With its first iteration declared, the view shows it as never materialized
    (1 missing partition), and the first iteration is one click away in the job's partition picker.
    """
    opened = []
    for recipe in sorted(RECIPES):
        part_name = f"{recipe}_iterations"
        if not instance.get_dynamic_partitions(part_name):
            instance.add_dynamic_partitions(part_name, [iteration_key(1)])
            opened.append(recipe)
    return opened


def foundation_assets_for(recipe: str) -> list[str]:
    """The foundation assets a recipe's iterations read (base_model, image_pool, its `requires`), then the lineage step."""
    return ["base_model", "image_pool", *RECIPES[recipe].requires, "foundation_lineage"]


def run_foundation(instance: dg.DagsterInstance, run_config: dict, recipe: str | None = None) -> dg.ExecuteInProcessResult:
    """Execute the foundation job: every foundation asset, or with `recipe` only the ones that recipe reads.

    The demo passes its recipe, so a V-Zero demo does not train Active-Zero's embedder (~40 s of the 15-minute
    budget); the UI's foundation job and a later `--recipe activezero` demo build it.
    """
    job = defs.resolve_job_def("demo_job")
    if recipe is None:
        return job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    keys = foundation_assets_for(recipe)
    ops = {k: v for k, v in run_config.get("ops", {}).items() if k in keys}  # config of an unselected asset is an error
    return job.execute_in_process(instance=instance, run_config={**run_config, "ops": ops}, raise_on_error=False,
                                  asset_selection=[dg.AssetKey(k) for k in keys])


def run_iteration(
    instance: dg.DagsterInstance, recipe: str, n: int, overrides: dict | None = None, assets: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    """Add partition iter-000n (if new) and execute the recipe's iteration job for it (or only `assets` of it).

    `overrides` are the iteration_config launchpad's knobs (e.g. {"profile": "smoke", "m": 4}). A run of some
    `assets` always includes `<recipe>/iteration_config` too (cheap: a frozen config is reused), so the steps it
    runs receive the iteration's config.
    """
    key = iteration_key(n)
    part_name = f"{recipe}_iterations"
    if not instance.has_dynamic_partition(part_name, key):
        instance.add_dynamic_partitions(part_name, [key])
    job = defs.resolve_job_def(f"{recipe}_iteration")
    if assets:
        assets = list(dict.fromkeys([f"{recipe}/iteration_config", *assets]))
    return job.execute_in_process(
        instance=instance, partition_key=key, run_config=iteration_run_config(recipe, overrides),
        asset_selection=[dg.AssetKey.from_user_string(a) for a in assets] if assets else None,
        tags=partition_set_tags(recipe, key), raise_on_error=False,
    )


def run_leaderboard(instance: dg.DagsterInstance, recipe: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(f"{recipe}_leaderboard").execute_in_process(instance=instance, raise_on_error=False)


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """{asset key string: {metadata key: value}} for every materialization in a run."""
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out
