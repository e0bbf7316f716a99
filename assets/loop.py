"""The self-evolution loop as partitioned assets, generated once per registered recipe.

For a recipe with roles (task makers..., solver) `build_loop_assets` makes,
under the key prefix of the recipe and partitioned by its dynamic
`<recipe>_iterations` partitions (`iter-0001`, ...):

    iteration_config -> <task maker>_checkpoint (in training order) -> task_set
      -[task_set_is_valid: blocking GX check; guards]-> solver_checkpoint -> benchmark_scores [guards]
                                                          solver_checkpoint -> curriculum_lineage

Each asset is thin: receive its inputs through the IO manager (`assets.io`:
the frozen config, the task set, checkpoint paths), build the step's context
(`assets.iteration.step_context`: the parents via the store, which refuses to
start N before N-1), call one function of `recipes.core.loop`, record lineage,
and report metadata (counts, mean c, reward and loss curves, wall time, plots).
"""

import time

import dagster as dg
import pandas as pd

from assets import lineage
from assets.guards import build_guard_checks, failed_blocking_guards
from assets.iteration import freeze_config, launchpad_config, step_context, write_png
from assets.resources import GPU_STEP_TAGS, BenchmarkSuite, ComputeResource, ZeroforgeHome
from assets.scores import build_score_assets, score_iteration
from assets.store import IterationStore, iteration_key, parse_iteration
from assets.training import grpo_metadata, run_training
from evaluation.plots import consistency_histogram, png_markdown
from models.files import atomic_write_json, sha256_bytes
from recipes import get_recipe
from recipes.core.audit import label_audit
from recipes.core.bootstrap import labeled_tasks
from recipes.core.config import LoopConfig
from recipes.core.context import IterationImages
from recipes.core.keep import KeepRule
from recipes.core.loop import task_set_stats
from retrieval.pool import ImagePool

FOUNDATION = [dg.AssetKey("base_model"), dg.AssetKey("image_pool")]


class GuardFailedError(RuntimeError):
    """An iteration was asked to start from one that failed a blocking guard."""
_LOOP_IO = "loop_io_manager"


def iterations_partitions(recipe: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{recipe}_iterations")


def _with_lineage(value, metadata: dict, record: dict) -> dg.Output:
    """The value, its metadata, and the content hash as Dagster's data version (and in the metadata)."""
    h = record["output"]["hash"]
    extra = {"content_hash": h, "lineage_code_version": (record["code"] or {}).get("git_commit") or "unknown"}
    return dg.Output(value, metadata={**metadata, **extra}, data_version=dg.DataVersion(h))


def _recipe_metadata(values: dict) -> dict:
    """A recipe's plain task-set metadata as Dagster values: strings are markdown (tables, contact sheets), dicts/lists JSON."""
    out = {}
    for k, v in values.items():
        if isinstance(v, str):
            out[k] = dg.MetadataValue.md(v)
        elif isinstance(v, (dict, list)):
            out[k] = dg.MetadataValue.json(v)
        else:
            out[k] = v
    return out


def build_loop_assets(recipe_name: str) -> list:
    recipe = get_recipe(recipe_name)
    parts = iterations_partitions(recipe_name)
    prefix = [recipe_name]
    config_key = dg.AssetKey([recipe_name, "iteration_config"])
    config_in = {"loop": dg.AssetIn(key=config_key)}  # "config" is the run config's reserved name
    common = {"key_prefix": prefix, "partitions_def": parts, "group_name": recipe_name, "io_manager_key": _LOOP_IO}
    gpu = {"pool": "gpu", "op_tags": GPU_STEP_TAGS}
    Launchpad = launchpad_config(recipe_name)
    out = []

    @dg.asset(name="iteration_config", deps=FOUNDATION + [dg.AssetKey(k) for k in recipe.requires], kinds={"json"},
              description=f"The {recipe_name} iteration's settings, resolved once and frozen: an explicit profile, else the "
                          "parent iteration's frozen config, else the default profile; then the launchpad's overrides.",
              **common)
    def iteration_config(context: dg.AssetExecutionContext, config: Launchpad, home: ZeroforgeHome):
        store = IterationStore(home.path)
        frozen, how = freeze_config(recipe_name, context.partition_key, config, store)
        refuse_after_failed_guards(store, recipe_name, context.partition_key, config.accept_failed_guards or [])
        prov = frozen.provenance
        context.log.info(f"{recipe_name} {context.partition_key}: config {how}, based on {prov['based_on']}, "
                         f"overrides {prov['overrides'] or 'none'}")
        return dg.Output(frozen, metadata={
            "path": dg.MetadataValue.path(str(store.config_path(recipe_name, context.partition_key))),
            "status": how, "based_on": prov["based_on"], "inherited_from": prov.get("inherited_from", ""),
            "overrides": dg.MetadataValue.json(prov["overrides"]),
            "config": dg.MetadataValue.json(frozen.config.to_dict()),
        })

    out.append(iteration_config)
    prev = []
    for role in recipe.task_makers:

        def make_maker(role=role, deps=tuple(prev)):
            @dg.asset(name=f"{role}_checkpoint", ins=config_in, deps=list(deps), kinds={"pytorch", "trl"},
                      retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
                      description=f"{recipe_name} {role}, GRPO-trained from its previous checkpoint.", **common, **gpu)
            def maker(context: dg.AssetExecutionContext, loop: LoopConfig, home: ZeroforgeHome, compute: ComputeResource):
                # a task maker's reward may run any role's previous checkpoint (Active-Zero's Searcher asks the Questioner)
                ctx, labels = step_context(recipe_name, context.partition_key, loop, home, compute,
                                           tuple(dict.fromkeys((role, *recipe.roles))))
                result, summary, launched = run_training(context, compute, home, ctx, role)
                context.log.info(f"{role} trained {result.steps} steps in {result.seconds:.0f} s: {summary}")
                md = grpo_metadata(result, labels[role], {**{k: (float(v) if isinstance(v, (int, float)) else str(v))
                                                             for k, v in summary.items()}, **launched})
                store, key = IterationStore(home.path), context.partition_key
                rec = lineage.record_lineage(
                    home.path, f"{recipe_name}/{role}_checkpoint", key, lineage.artifact("checkpoint", result.out_dir),
                    inputs={"parent_checkpoint": lineage.parent_input(home.path, store, recipe_name, key, role),
                            "solver_parent": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                            "image_pool": lineage.pool_input(home.path),
                            "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
                    config=loop.to_dict(), run_id=context.run_id, log=context.log)
                return _with_lineage(result.out_dir, md, rec)

            return maker

        asset = make_maker()
        out.append(asset)
        prev = [asset.key]

    maker_ins = {f"{r}_checkpoint": dg.AssetIn(key=dg.AssetKey([recipe_name, f"{r}_checkpoint"])) for r in recipe.task_makers}

    @dg.asset(name="task_set", ins={**config_in, **maker_ins}, deps=[dg.AssetKey("image_pool")], kinds={"pandas", "parquet"},
              description="Synthesized tasks with the Solver's m answers, majority label, c, and kept/dropped with reason.",
              **common, **gpu)
    def task_set(context: dg.AssetExecutionContext, loop: LoopConfig, home: ZeroforgeHome, compute: ComputeResource, **makers):
        key = context.partition_key
        ctx, labels = step_context(recipe_name, key, loop, home, compute, ("solver",))
        maker_dirs = {name.removesuffix("_checkpoint"): path for name, path in makers.items()}
        t0 = time.monotonic()
        df = recipe.build_task_set(ctx, maker_dirs)
        rule = recipe.keep_rule(loop)
        stats = task_set_stats(df, recipe.reasons(loop), rule)
        # Pseudo-label audit: the same labeling Solver through the loop's own labeling code, on labeled questions
        # of the audit split (with an independent vote on the same samples beside it, for the label_quality guard)
        audit = label_audit(ctx, ctx.engine(ctx.parents["solver"]), labeled_tasks("audit", loop.eval_images // 2),
                            KeepRule.band(loop.band_low, loop.band_high))
        store = IterationStore(home.path)
        iteration_dir = store.iteration_dir(recipe_name, key)
        atomic_write_json(store.audit_path(recipe_name, key), audit)
        decided = df[df["reason"].isin(["kept", *rule.drop_reasons()])] if len(df) else df
        png = consistency_histogram(decided[rule.column].tolist() if len(decided) else [], (loop.band_low, loop.band_high),
                                    f"{key}: Solver agreement c")
        write_png(iteration_dir / "task_set_c.png", png)
        preview = df[df["kept"]].head(10)[["task_id", "image_id", "question", "options", "majority", "c"]] if len(df) else df
        context.log.info(f"task set {key}: {stats}; pseudo-label accuracy {audit['pseudo_label']['accuracy']:.3f}")
        generated = ctx.images.generated_ids()
        # the task set's lineage: the parquet bytes the IO manager writes (deterministic for the same table),
        # and the pixels of every image it refers to (pool or generated)
        path = store.task_set_path(recipe_name, key)
        payload = df.to_parquet(index=False)
        output = {"kind": "file", "path": str(path.resolve()), "hash": sha256_bytes(payload),
                  "files": {path.name: {"bytes": len(payload), "sha256": sha256_bytes(payload)}}}
        rec = lineage.record_lineage(
            home.path, f"{recipe_name}/task_set", key, output,
            inputs={**{f"task_maker_{role}": lineage.upstream(home.path, f"{recipe_name}/{role}_checkpoint", key, "checkpoint", d)
                       for role, d in maker_dirs.items()},
                    "solver_parent": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                    "images": lineage.images_input(ctx.image, [i for i in df["image_id"].tolist() if i] if len(df) else []),
                    "image_pool": lineage.pool_input(home.path),
                    "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
            config=loop.to_dict(), run_id=context.run_id, log=context.log)
        return _with_lineage(df, {
            "path": dg.MetadataValue.path(str(path)),
            "labeled_by": labels["solver"],
            **stats,
            "generated_images": len(generated),
            "pseudo_label_accuracy": audit["pseudo_label"]["accuracy"],
            "pseudo_label_accuracy_in_band": audit["in_rule"]["accuracy"],
            "pseudo_label_audit": dg.MetadataValue.json({k: v for k, v in audit.items() if k != "predictions"}),
            "wall_time_s": round(time.monotonic() - t0, 1),
            "image_decodes": ctx.images.decodes,
            f"c histogram, {key} (PNG)": dg.MetadataValue.md(png_markdown(png, f"Solver agreement c of the labeled tasks, {key}")),
            "kept_preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "no kept tasks"),
            # recipe-specific extras (e.g. MM-Zero's contact sheet of renders and its program/reward table)
            **_recipe_metadata(recipe.task_set_metadata(df, ctx)),
        }, rec)

    out.append(task_set)

    @dg.asset_check(asset=task_set, name="task_set_is_valid", blocking=True, partitions_def=parts, additional_ins=config_in,
                    description="great-expectations suite: schema, declared reasons, 4 options, label among options, "
                                "every kept row within the recipe's declared keep rule, no duplicates, images resolvable.")
    def task_set_is_valid(context: dg.AssetCheckExecutionContext, task_set: pd.DataFrame, loop: LoopConfig,
                          home: ZeroforgeHome) -> dg.AssetCheckResult:
        key = context.partition_key
        store = IterationStore(home.path)
        images = step_images(home, store, recipe_name, key)
        report = recipe.validate_task_set(task_set, loop, images.has)
        if not report.success and report.next_step.startswith("Empty iteration"):
            report.next_step += (f" The iteration's config is frozen in {store.config_path(recipe_name, key)}: rerun with "
                                 "refreeze=True in the iteration_config launchpad to apply new settings.")
        if not report.success:
            context.log.error(f"task set {key} failed validation: {report.next_step}")
        return dg.AssetCheckResult(passed=report.success, description=report.next_step or None, metadata={
            "rows": report.rows, "failed_expectations": len(report.failures()), "report": dg.MetadataValue.md(report.markdown()),
            **({"next_step": report.next_step} if report.next_step else {}),
        })

    out.append(task_set_is_valid)

    @dg.asset(name="solver_checkpoint", ins={**config_in, "task_set": dg.AssetIn(key=task_set.key)}, kinds={"pytorch", "trl"},
              retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
              description="The Solver, GRPO-trained on the kept tasks' majority labels (0.9 accuracy + 0.1 format).",
              **common, **gpu)
    def solver_checkpoint(context: dg.AssetExecutionContext, loop: LoopConfig, task_set: pd.DataFrame, home: ZeroforgeHome,
                          compute: ComputeResource):
        key = context.partition_key
        ctx, labels = step_context(recipe_name, key, loop, home, compute, ("solver",))
        result, _, launched = run_training(context, compute, home, ctx, "solver", task_set)
        store = IterationStore(home.path)
        md = grpo_metadata(result, labels["solver"], {"train_tasks": int(task_set["kept"].sum()), **launched})
        rec = lineage.record_lineage(
            home.path, f"{recipe_name}/solver_checkpoint", key, lineage.artifact("checkpoint", result.out_dir),
            inputs={"parent_checkpoint": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                    "task_set": {"asset": f"{recipe_name}/task_set", "partition": key,
                                 **((lineage.read_record(home.path, f"{recipe_name}/task_set", key) or {}).get("output") or {})},
                    "images": lineage.images_input(ctx.image, task_set[task_set["kept"]]["image_id"].tolist()),
                    "image_pool": lineage.pool_input(home.path),
                    "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
            config=loop.to_dict(), run_id=context.run_id, log=context.log)
        return _with_lineage(result.out_dir, md, rec)

    out.append(solver_checkpoint)

    @dg.asset(name="benchmark_scores", ins={**config_in, "solver_checkpoint": dg.AssetIn(key=solver_checkpoint.key)},
              kinds={"pandas"}, description="The Solver on the procedural held-out set: greedy, sampled and majority-of-m "
                                            "accuracy, vs its parent; plus the configured benchmarks.",
              **common, **gpu)
    def benchmark_scores(context: dg.AssetExecutionContext, loop: LoopConfig, solver_checkpoint, home: ZeroforgeHome,
                         compute: ComputeResource, benchmarks: BenchmarkSuite):
        ctx, labels = step_context(recipe_name, context.partition_key, loop, home, compute, ("solver",))
        scores, metadata = score_iteration(ctx, solver_checkpoint, labels["solver"], IterationStore(home.path), benchmarks)
        return dg.Output(scores, metadata=metadata)

    out.append(benchmark_scores)

    # after every curriculum asset (so a run of any subset syncs what it wrote), not after the scores: a guard
    # failing on the scores must not leave the lineage unsynced
    @dg.asset(name="curriculum_lineage", deps=[*(i.key for i in maker_ins.values()), task_set.key, solver_checkpoint.key], key_prefix=prefix,
              partitions_def=parts,
              group_name=recipe_name, kinds={"dvc"},
              description="Brings DVC up to date with this iteration's lineage records (dvc.yaml, dvc commit, push), "
                          "once per iteration and off the training steps' critical path.")
    def curriculum_lineage(context: dg.AssetExecutionContext, home: ZeroforgeHome) -> dg.MaterializeResult:
        return lineage_result(lineage.sync_lineage(home.path, log=context.log))

    out.append(curriculum_lineage)
    out += build_guard_checks(recipe_name, task_set, benchmark_scores, parts, config_in)
    out += build_score_assets(recipe_name, benchmark_scores, parts)
    return out


def refuse_after_failed_guards(store: IterationStore, recipe_name: str, partition: str, accepted: list[str]) -> None:
    """Iteration N+1 does not start from an N (or a base) that failed a blocking guard, unless told to accept it."""
    n = parse_iteration(partition)
    parent = iteration_key(n - 1) if n > 1 else None
    failed = failed_blocking_guards(store, recipe_name, parent)
    failed = {k: v for k, v in failed.items() if k not in accepted}
    if failed:
        where = parent or "the base model"
        raise GuardFailedError(
            f"{recipe_name} {partition} would start from {where}, which failed blocking guard(s) "
            + "; ".join(f"{k}: {v}" for k, v in failed.items())
            + f" To go on anyway, set accept_failed_guards={sorted(failed)} in {recipe_name}/iteration_config's launchpad.")


def step_images(home: ZeroforgeHome, store: IterationStore, recipe_name: str, partition: str) -> IterationImages:
    """The images an iteration's rows may refer to: the pool and the iteration's own generated images."""
    return IterationImages(ImagePool(home.pool_root()), store.generated_images_dir(recipe_name, partition))


def lineage_result(dvc: dict) -> dg.MaterializeResult:
    md = {"dvc_enabled": bool(dvc.get("enabled"))}
    if dvc.get("enabled"):
        md["dvc_stages"] = len(dvc.get("stages", []))
        md["dvc_pushed"] = str(dvc.get("pushed"))
    else:
        md["dvc_note"] = dvc.get("error") or dvc.get("reason") or ""
    return dg.MaterializeResult(metadata=md)
