"""Chaining iterations: a sensor that starts iteration N+1 once N is complete, up to a configured count.

"Complete" means `benchmark_scores` of N is materialized, which implies the
blocking `task_set_is_valid` check of N passed (the Solver never trains on a
task set that failed it), and no blocking guard of N failed (`assets.guards`:
a collapsed Solver or untrustworthy pseudo-labels stop the chain, and the
skip reason says which and how to go on). The sensor adds the next dynamic partition and
requests its run in one `SensorResult`; run keys make it idempotent. The run
carries no overrides: its `iteration_config` starts from N's frozen config,
so N+1 runs with N's settings (m, band, profile). It is off by default: turn
it on in the UI (Automation) per recipe.
"""

import dagster as dg

from assets.guards import failed_blocking_guards
from assets.resources import ZeroforgeHome
from assets.store import IterationStore, iteration_key, parse_iteration


class LoopSettings(dg.ConfigurableResource):
    """How far the chaining sensor goes (ZEROFORGE_MAX_ITERATIONS, default 3) and which failed guards it accepts."""

    max_iterations: int = 3
    # blocking guards whose failure the sensor chains past anyway (ZEROFORGE_ACCEPT_FAILED_GUARDS, comma separated)
    accept_failed_guards: list[str] = []


def build_chain_sensor(recipe: str, job, partitions: dg.DynamicPartitionsDefinition):
    scores_key = dg.AssetKey([recipe, "benchmark_scores"])

    @dg.sensor(name=f"{recipe}_chain_iterations", job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Starts iteration N+1 of {recipe} when N's scores exist and no blocking guard of N failed, up "
                           "to max_iterations (ZEROFORGE_MAX_ITERATIONS); N+1 starts from N's frozen config. Turn it on "
                           "here to chain iterations; or launch one by hand: add the partition iter-000N+1 in the "
                           f"{recipe}_iteration job's partition picker and materialize.")
    def chain(context: dg.SensorEvaluationContext, loop_settings: LoopSettings, home: ZeroforgeHome):
        keys = sorted(context.instance.get_dynamic_partitions(partitions.name))
        if not keys:
            return dg.SkipReason(f"no {recipe} iteration yet: add iter-0001 in the UI or run `zeroforge demo`")
        last = keys[-1]
        n = parse_iteration(last)
        if n >= loop_settings.max_iterations:
            return dg.SkipReason(f"{recipe} reached max_iterations={loop_settings.max_iterations}")
        done = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=scores_key, asset_partitions=[last]), limit=1)
        if not done.records:
            return dg.SkipReason(f"{recipe} {last} has no benchmark_scores yet" + (
                f": launch it from the {recipe}_iteration job (the sensor chains from there)" if n == 1 else ""))
        store = IterationStore(home.path)
        failed = {k: v for k, v in failed_blocking_guards(store, recipe, last).items()
                  if k not in loop_settings.accept_failed_guards}
        if failed:
            return dg.SkipReason(
                f"{recipe} {last} failed blocking guard(s) {', '.join(sorted(failed))}: " + " ".join(failed.values())
                + f" The chain stops here. To go on anyway, launch {iteration_key(n + 1)} with accept_failed_guards="
                f"{sorted(failed)} in the iteration_config launchpad, or set ZEROFORGE_ACCEPT_FAILED_GUARDS.")
        nxt = iteration_key(n + 1)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{recipe}-{nxt}", partition_key=nxt,
                                        tags={"zeroforge/inherits_config_from": last})],
            dynamic_partitions_requests=[partitions.build_add_request([nxt])],
        )

    return chain
