"""The self-evolution loop as partitioned assets, generated once per registered recipe.

For a recipe with roles (task makers..., solver) `build_loop_assets` makes,
under the key prefix of the recipe and partitioned by its dynamic
`<recipe>_iterations` partitions (`iter-0001`, ...):

    <task maker>_checkpoint (in training order) -> task_set -[task_set_is_valid: blocking GX check]->
    solver_checkpoint -> benchmark_scores

Each asset is thin: resolve the iteration context (frozen config, parents via
the store, which refuses to start N before N-1), call one function of
`recipes.loop`, write artifacts atomically, and report metadata (counts,
mean c, reward and loss curves, wall time, plots).
"""

import json
import shutil
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets import lineage
from assets.iteration import IterationConfig, iteration_context, write_png
from assets.resources import GPU_STEP_TAGS, BenchmarkSuite, ComputeResource, ZeroforgeHome
from evaluation.plots import consistency_histogram, curves, png_markdown
from recipes import get_recipe
from recipes.loop import build_task_set, task_set_stats, train_solver, train_task_maker

FOUNDATION = [dg.AssetKey("base_model"), dg.AssetKey("image_pool")]
REPO_ROOT = Path(__file__).resolve().parent.parent


def iterations_partitions(recipe: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{recipe}_iterations")


def _grpo_metadata(result, parent_label: str, extra: dict) -> dict:
    reward_keys = sorted({k for h in result.log_history for k in h if k.startswith("rewards/") and k.endswith("/mean")})
    series = {"reward": result.series("reward"), **{k.split("/")[1]: result.series(k) for k in reward_keys}}
    png = curves(series, "GRPO rewards per step")
    loss_png = curves({"loss": result.series("loss"), "frac_reward_zero_std": result.series("frac_reward_zero_std")}, "loss / zero-variance groups")
    write_png(result.out_dir / "rewards.png", png)
    card = json.loads((result.out_dir / "zeroforge_train.json").read_text())
    if result.skipped:  # the recipe paused this role for the iteration: say so next to the 0 steps
        extra = {"skipped": result.skipped, **extra}
    if card.get("recipe_state"):
        extra = {"recipe_state": dg.MetadataValue.json(card["recipe_state"]), **extra}
    rewards = series["reward"]
    zero_std = result.series("frac_reward_zero_std")
    return {
        "path": dg.MetadataValue.path(str(result.out_dir)),
        "parent": parent_label,
        "steps": result.steps,
        "resumed_from": result.resumed_from or "",
        "wall_time_s": round(result.seconds, 1),
        "reward_first": rewards[0] if rewards else 0.0,
        "reward_last": rewards[-1] if rewards else 0.0,
        "reward_curve": dg.MetadataValue.json(rewards),
        "loss_curve": dg.MetadataValue.json(result.series("loss")),
        # share of groups whose rewards were all equal (no gradient): the "useful sample" complement
        "frac_reward_zero_std_mean": sum(zero_std) / len(zero_std) if zero_std else 0.0,
        "rewards_plot": dg.MetadataValue.md(png_markdown(png, "rewards")),
        "loss_plot": dg.MetadataValue.md(png_markdown(loss_png, "loss")),
        "hyperparams": dg.MetadataValue.json(card["hyperparams"]),
        **extra,
    }


def _train(context, compute: ComputeResource, home: ZeroforgeHome, recipe_name: str, key: str, role: str, here):
    """Run one role's GRPO training where `compute.launcher` says: here, or in a child process through Pipes.

    Returns (GRPOResult, reward summary, metadata about where it ran). `here` trains in this process.
    """
    launcher = compute.resolved_launcher()
    if launcher == "in_process":
        result, summary = here()
        return result, summary, {"launcher": "in_process"}
    from assets.store import IterationStore
    from models.grpo import GRPOResult

    extras = {"recipe": recipe_name, "partition": key, "role": role, "home": str(home.path), "device": compute.resolved_device()}
    client = dg.PipesSubprocessClient(cwd=str(REPO_ROOT), env={"ZEROFORGE_HOME": str(home.path)})
    invocation = client.run(context=context, command=compute.training_command(), extras=extras)
    messages = invocation.get_custom_messages()
    reply = messages[-1] if messages else {}
    result = GRPOResult.load(IterationStore(home.path).role_dir(recipe_name, key, role))
    return result, reply.get("summary", {}), {"launcher": f"{launcher} (Dagster Pipes)", "training_pid": int(reply.get("pid", -1))}


def _with_lineage(metadata: dict, record: dict) -> dg.MaterializeResult:
    """The content hash as Dagster's data version and in the metadata, next to where the lineage record is."""
    h = record["output"]["hash"]
    dvc = record.get("dvc") or {}
    extra = {"content_hash": h, "lineage_code_version": (record["code"] or {}).get("git_commit") or "unknown"}
    if dvc.get("enabled"):
        extra["dvc_stages"] = len(dvc["stages"])
    elif dvc.get("error"):
        extra["dvc_error"] = dvc["error"][-500:]
    return dg.MaterializeResult(metadata={**metadata, **extra}, data_version=dg.DataVersion(h))


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
    out = []
    prev_keys = list(FOUNDATION) + [dg.AssetKey(k) for k in recipe.requires]

    for role in recipe.task_makers:

        def make_maker(role=role, deps=tuple(prev_keys)):
            @dg.asset(
                name=f"{role}_checkpoint", key_prefix=prefix, partitions_def=parts, deps=list(deps),
                group_name=recipe_name, kinds={"pytorch", "trl"}, pool="gpu", op_tags=GPU_STEP_TAGS,
                retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
                description=f"{recipe_name} {role}, GRPO-trained from its previous checkpoint.",
            )
            def maker(context: dg.AssetExecutionContext, config: IterationConfig, home: ZeroforgeHome, compute: ComputeResource):
                # a task maker's reward may run any role's previous checkpoint (Active-Zero's Searcher asks the Questioner)
                roles = tuple(dict.fromkeys((role, *recipe.roles)))
                ctx, store, labels = iteration_context(recipe_name, context.partition_key, config, home, compute, roles)
                key = context.partition_key
                t0 = time.monotonic()
                result, summary, launched = _train(
                    context, compute, home, recipe_name, key, role,
                    lambda: train_task_maker(recipe, role, ctx, store.role_dir(recipe_name, key, role)))
                context.log.info(f"{role} trained {result.steps} steps in {time.monotonic() - t0:.0f} s: {summary}")
                md = _grpo_metadata(result, labels[role], {**{k: (float(v) if isinstance(v, (int, float)) else str(v)) for k, v in summary.items()},
                                                           **launched})
                rec = lineage.record_lineage(
                    home.path, f"{recipe_name}/{role}_checkpoint", key, lineage.artifact("checkpoint", result.out_dir),
                    inputs={"parent_checkpoint": lineage.parent_input(home.path, store, recipe_name, key, role),
                            "solver_parent": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                            "image_pool": lineage.pool_input(home.path),
                            "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
                    config=ctx.config.to_dict(), run_id=context.run_id, log=context.log)
                return _with_lineage(md, rec)

            return maker

        asset = make_maker()
        out.append(asset)
        prev_keys = [asset.key]

    maker_keys = [a.key for a in out]

    @dg.asset(
        name="task_set", key_prefix=prefix, partitions_def=parts, deps=maker_keys + [dg.AssetKey("image_pool")],
        group_name=recipe_name, kinds={"pandas", "parquet"}, pool="gpu", op_tags=GPU_STEP_TAGS,
        description="Synthesized tasks with the Solver's m answers, majority label, c, and kept/dropped with reason.",
    )
    def task_set(context: dg.AssetExecutionContext, config: IterationConfig, home: ZeroforgeHome, compute: ComputeResource):
        from evaluation.self_consistency import consistency_report
        from recipes.bootstrap import held_out_examples

        key = context.partition_key
        ctx, store, labels = iteration_context(recipe_name, key, config, home, compute, ("solver",))
        makers = {}
        for role in recipe.task_makers:
            d = store.role_dir(recipe_name, key, role)
            if not store.checkpoint_complete(d):
                raise FileNotFoundError(f"task_set of {key} needs this iteration's {role} checkpoint at {d}: materialize it first")
            makers[role] = d
        t0 = time.monotonic()
        df = build_task_set(recipe, ctx, makers)
        path = store.task_set_path(recipe_name, key)
        tmp = path.with_suffix(".tmp.parquet")
        df.to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a half-written task set never looks complete
        stats = task_set_stats(df)
        # Pseudo-label audit: the same labeling Solver, the same majority vote, on labeled held-out questions.
        audit = consistency_report(ctx.engine(ctx.parents["solver"]), held_out_examples(ctx.config.eval_images // 2, salt=7),
                                   m=ctx.config.m, band=(ctx.config.band_low, ctx.config.band_high), seed=ctx.config.seed)
        (path.parent / "pseudo_label_audit.json").write_text(json.dumps(audit, indent=2))
        labeled = df[df["reason"].isin(["kept", "too_easy", "too_hard"])]
        png = consistency_histogram(labeled["c"].tolist(), (ctx.config.band_low, ctx.config.band_high), f"{key}: Solver agreement c")
        write_png(path.parent / "task_set_c.png", png)
        preview = df[df["kept"]].head(10)[["task_id", "image_id", "question", "options", "majority", "c"]]
        context.log.info(f"task set {key}: {stats}; pseudo-label accuracy {audit['majority']['accuracy']:.3f}")
        rec = lineage.record_lineage(
            home.path, f"{recipe_name}/task_set", key, lineage.artifact("file", path),
            inputs={**{f"task_maker_{role}": lineage.upstream(home.path, f"{recipe_name}/{role}_checkpoint", key, "checkpoint", d)
                       for role, d in makers.items()},
                    "solver_parent": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                    "images": lineage.images_input(ctx.pool, [i for i in df["image_id"].tolist() if i]),
                    "image_pool": lineage.pool_input(home.path),
                    "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
            config=ctx.config.to_dict(), run_id=context.run_id, log=context.log)
        # recipe-specific extras (e.g. MM-Zero's contact sheet of renders and its program/reward table)
        return _with_lineage({
            "path": dg.MetadataValue.path(str(path)),
            "labeled_by": labels["solver"],
            **stats,
            "pseudo_label_accuracy": audit["majority"]["accuracy"],
            "pseudo_label_accuracy_in_band": audit["majority_in_band"]["accuracy"],
            "pseudo_label_audit": dg.MetadataValue.json(audit),
            "wall_time_s": round(time.monotonic() - t0, 1),
            "c_histogram": dg.MetadataValue.md(png_markdown(png, "c histogram")),
            "kept_preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "no kept tasks"),
            **_recipe_metadata(recipe.task_set_metadata(df, ctx)),
        }, rec)

    out.append(task_set)

    @dg.asset_check(asset=task_set, name="task_set_is_valid", blocking=True, partitions_def=parts,
                    description="great-expectations suite: schema, 4 options, label among options, c in band, no duplicates, images resolvable.")
    def task_set_is_valid(context: dg.AssetCheckExecutionContext, home: ZeroforgeHome) -> dg.AssetCheckResult:
        from assets.iteration import loop_config_from_dict
        from assets.store import IterationStore
        from retrieval.pool import ImagePool

        key = context.partition_key if context.has_partition_key else None
        store = IterationStore(home.path)
        loop = loop_config_from_dict(json.loads(store.config_path(recipe_name, key).read_text()))
        df = pd.read_parquet(store.task_set_path(recipe_name, key))
        ids = set(ImagePool(home.pool_root()).ids())
        report = recipe.validate_task_set(df, loop, ids.__contains__)
        if not report.success and report.next_step.startswith("Empty iteration"):
            report.next_step += (f" The iteration's config is frozen in {store.config_path(recipe_name, key)}: delete that "
                                 "file before rerunning with new settings, or the rerun reads the old ones.")
        if not report.success:
            context.log.error(f"task set {key} failed validation: {report.next_step}")
        return dg.AssetCheckResult(passed=report.success, description=report.next_step or None, metadata={
            "rows": report.rows, "failed_expectations": len(report.failures()), "report": dg.MetadataValue.md(report.markdown()),
            **({"next_step": report.next_step} if report.next_step else {}),
        })

    out.append(task_set_is_valid)

    @dg.asset(
        name="solver_checkpoint", key_prefix=prefix, partitions_def=parts, deps=[task_set.key],
        group_name=recipe_name, kinds={"pytorch", "trl"}, pool="gpu", op_tags=GPU_STEP_TAGS,
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
        description="The Solver, GRPO-trained on the kept tasks' majority labels (0.9 accuracy + 0.1 format).",
    )
    def solver_checkpoint(context: dg.AssetExecutionContext, config: IterationConfig, home: ZeroforgeHome, compute: ComputeResource):
        key = context.partition_key
        ctx, store, labels = iteration_context(recipe_name, key, config, home, compute, ("solver",))
        task_set_path = store.task_set_path(recipe_name, key)
        df = pd.read_parquet(task_set_path)
        result, _, launched = _train(context, compute, home, recipe_name, key, "solver",
                                     lambda: (train_solver(ctx, df, store.role_dir(recipe_name, key, "solver")), {}))
        md = _grpo_metadata(result, labels["solver"], {"task_set": str(task_set_path), "train_tasks": int(df["kept"].sum()), **launched})
        rec = lineage.record_lineage(
            home.path, f"{recipe_name}/solver_checkpoint", key, lineage.artifact("checkpoint", result.out_dir),
            inputs={"parent_checkpoint": lineage.parent_input(home.path, store, recipe_name, key, "solver"),
                    "task_set": lineage.upstream(home.path, f"{recipe_name}/task_set", key, "file", task_set_path),
                    "images": lineage.images_input(ctx.pool, df[df["kept"]]["image_id"].tolist()),
                    "image_pool": lineage.pool_input(home.path),
                    "iteration_config": lineage.config_input(store.config_path(recipe_name, key))},
            config=ctx.config.to_dict(), run_id=context.run_id, log=context.log)
        return _with_lineage(md, rec)

    out.append(solver_checkpoint)

    @dg.asset(
        name="benchmark_scores", key_prefix=prefix, partitions_def=parts, deps=[solver_checkpoint.key],
        group_name=recipe_name, kinds={"pandas"}, pool="gpu", op_tags=GPU_STEP_TAGS,
        description="The Solver on the procedural held-out set: greedy, sampled and majority-of-m accuracy, vs its parent.",
    )
    def benchmark_scores(context: dg.AssetExecutionContext, config: IterationConfig, home: ZeroforgeHome,
                         compute: ComputeResource, benchmarks: BenchmarkSuite):
        from evaluation.plots import accuracy_bars
        from evaluation.runner import EvalReport, evaluate_model
        from evaluation.self_consistency import consistency_report
        from recipes.bootstrap import held_out_examples

        key = context.partition_key
        ctx, store, labels = iteration_context(recipe_name, key, config, home, compute, ("solver",))
        examples = held_out_examples(ctx.config.eval_images)
        band = (ctx.config.band_low, ctx.config.band_high)

        def score(model_dir):
            return consistency_report(ctx.engine(model_dir), examples, m=ctx.config.m, band=band, seed=ctx.config.seed)

        t0 = time.monotonic()
        parent_path = store.parent_scores(recipe_name, key)
        if not parent_path.is_file():  # iteration 1: score the base model once, on the same questions
            parent_path.parent.mkdir(parents=True, exist_ok=True)
            parent_path.write_text(json.dumps({"procedural": score(ctx.parents["solver"])}, indent=2))
        parent = json.loads(parent_path.read_text())["procedural"]
        solver_dir = store.role_dir(recipe_name, key, "solver")
        current = score(solver_dir)
        # Configured benchmarks through the evaluation harness (greedy, per-sample predictions as parquet);
        # the parent's report is computed once for iteration 1 (the base model) and reused after that.
        suite, limit = benchmarks.parsed(), (benchmarks.limit or None)
        eval_dir = store.eval_dir(recipe_name, key)
        report = evaluate_model(solver_dir, suite, eval_dir, batch_size=ctx.config.engine_batch_size, limit=limit, device=ctx.device)
        parent_eval = store.parent_eval_dir(recipe_name, key)
        if not (parent_eval / "report.json").is_file():
            evaluate_model(ctx.parents["solver"], suite, parent_eval, batch_size=ctx.config.engine_batch_size, limit=limit, device=ctx.device)
        parent_report = EvalReport.load(parent_eval)
        bench_rows = "| benchmark | metric | score | 95% CI | n | parent score |\n|---|---|---|---|---|---|\n" + "\n".join(
            f"| {r.name} | {r.metric} | {r.score:.4f} | {r.ci95[0]:.4f}-{r.ci95[1]:.4f} | {r.n} | "
            f"{parent_report.results[r.name].score:.4f} |" if r.name in parent_report.results else f"| {r.name} | {r.metric} | {r.score:.4f} | - | {r.n} | - |"
            for r in report.results.values()
        )
        scores = {"procedural": current, "parent": labels["solver"], "parent_procedural": parent}
        path = store.scores_path(recipe_name, key)
        path.write_text(json.dumps(scores, indent=2))
        png = accuracy_bars({f"{k} ({'parent' if who == 'p' else key})": s[k] for k in ("greedy", "sampled", "majority")
                             for who, s in (("p", parent), ("c", current))}, f"{key} vs parent: procedural held-out")
        write_png(path.parent / "scores.png", png)
        delta = current["greedy"]["accuracy"] - parent["greedy"]["accuracy"]
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(path)),
            "greedy_accuracy": current["greedy"]["accuracy"],
            "greedy_ci95": dg.MetadataValue.json(current["greedy"]["ci95"]),
            "sampled_accuracy": current["sampled"]["accuracy"],
            "majority_accuracy": current["majority"]["accuracy"],
            "n": current["greedy"]["n"],
            "parent_greedy_accuracy": parent["greedy"]["accuracy"],
            "greedy_delta_vs_parent": delta,
            "wall_time_s": round(time.monotonic() - t0, 1),
            "scores_plot": dg.MetadataValue.md(png_markdown(png, "scores")),
            "benchmarks": dg.MetadataValue.md(bench_rows),
            "eval_report": dg.MetadataValue.path(str(eval_dir / "report.json")),
            **{f"{name}_score": r.score for name, r in report.results.items()},
        })

    out.append(benchmark_scores)
    from assets.scores import build_score_assets

    out += build_score_assets(recipe_name, benchmark_scores, parts)
    return out
