"""The code location: every asset, check, job, sensor and resource of zeroforge in one `Definitions`.

Loaded by `dagster dev -w workspace.yaml` (`make ui`), by `zeroforge demo`
(which executes the jobs in-process on the same instance), and by tests.
Every registered recipe gets its loop assets (`assets.loop`), an iteration
job over its `<recipe>_iterations` partitions, and a chaining sensor; the
loop's assets hand each other their values through `assets.io`'s IO manager.
Resources are chosen by environment (`assets.resources.resources_from_env`).
"""

import os

import dagster as dg

from assets.base_model import base_model
from assets.embedder import embedder
from assets.guards import build_base_check
from assets.image_pool import image_pool
from assets.io import IterationIOManager
from assets.lineage import sync_lineage
from assets.loop import build_loop_assets, iterations_partitions, lineage_result
from assets.resources import ZeroforgeHome, resources_from_env
from orchestration.sensors import LoopSettings, build_chain_sensor
from recipes import RECIPES


@dg.asset(group_name="foundation", deps=[base_model.key, image_pool.key, embedder.key], kinds={"dvc"},
          description="Brings DVC up to date with the foundation's lineage records (dvc.yaml, dvc commit, push).")
def foundation_lineage(context: dg.AssetExecutionContext, home: ZeroforgeHome) -> dg.MaterializeResult:
    return lineage_result(sync_lineage(home.path, log=context.log))


# every foundation asset; `zeroforge demo` selects the ones its recipe reads (orchestration.runs.foundation_assets_for)
foundation_assets = [base_model, image_pool, embedder, foundation_lineage]

demo_job = dg.define_asset_job(
    "demo_job",
    selection=dg.AssetSelection.assets(*foundation_assets),
    description="Build the embedded base model, the image pool and the pool's embedder (image vectors for search).",
)



def build_definitions() -> dg.Definitions:
    """Definitions for every recipe registered now (a recipe package imported later calls this again)."""
    loop_assets: list = []
    jobs = [demo_job]
    sensors = []
    for name in sorted(RECIPES):
        loop_assets += build_loop_assets(name)
        partitions = iterations_partitions(name)
        job = dg.define_asset_job(
            f"{name}_iteration",
            selection=dg.AssetSelection.groups(name),
            partitions_def=partitions,
            tags={"zeroforge/loop": name},  # dagster.yaml queues runs with the same value one at a time
            description=(f"One {name} iteration: config -> task makers -> task set (+ blocking checks) -> Solver -> scores. "
                         f"To launch iteration N+1: add the partition iter-000N+1 in the partition picker and materialize "
                         f"(its config starts from iteration N's; override fields in the iteration_config launchpad), or "
                         f"turn on the {name}_chain_iterations sensor under Automation."),
        )
        jobs.append(job)
        jobs.append(dg.define_asset_job(f"{name}_leaderboard", selection=dg.AssetSelection.assets(dg.AssetKey([name, "leaderboard"])),
                                        description=f"Rebuild the {name} leaderboard from every iteration's evaluation report."))
        sensors.append(build_chain_sensor(name, job, partitions))
    resources = resources_from_env()
    return dg.Definitions(
        assets=foundation_assets + [build_base_check(base_model)] + loop_assets,  # loop checks are AssetsDefinitions too: they go in the same list
        jobs=jobs,
        sensors=sensors,
        resources={
            **resources,
            "loop_io_manager": IterationIOManager(home=resources["home"]),
            "loop_settings": LoopSettings(
                max_iterations=int(os.environ.get("ZEROFORGE_MAX_ITERATIONS", "3")),
                accept_failed_guards=[g for g in os.environ.get("ZEROFORGE_ACCEPT_FAILED_GUARDS", "").split(",") if g]),
        },
    )


defs = build_definitions()
