"""Scores: an iteration's Solver against its parent, the regression check, and the `leaderboard`.

`score_iteration` is the body of `benchmark_scores`: the Solver and its parent
(scored once for iteration 1: the base model) on the procedural held-out set
(greedy, sampled and majority-of-m accuracy, the self-consistency audit) and
on the configured benchmarks through the evaluation harness.
`benchmark_scores_did_not_regress` is a non-blocking (WARN) check: it flags a
benchmark whose score dropped from the parent (base model or iteration N-1)
by more than the two 95% intervals allow (`evaluation.runner.regressed`); the
iteration goes on, the UI shows the warning. `leaderboard` is unpartitioned:
it compares the base model and every iteration on every benchmark, with a
table and a plot, rebuilt from the evaluation reports on disk.
"""

import json
import time
from pathlib import Path

import dagster as dg

from assets.iteration import write_png
from assets.resources import BenchmarkSuite, ZeroforgeHome
from assets.store import IterationStore
from evaluation.plots import _to_png, accuracy_bars, plt, png_markdown
from evaluation.runner import EvalReport, compare, evaluate_model, regression_verdict
from models.files import atomic_write_json
from recipes.core.audit import consistency_report
from recipes.core.bootstrap import labeled_examples
from recipes.core.context import IterationContext

REGRESSION_ALPHA = 0.05  # one-sided: only losses count against an iteration


def score_iteration(ctx: IterationContext, solver_dir: Path, parent_label: str, store: IterationStore,
                    benchmarks: BenchmarkSuite) -> tuple[dict, dict]:
    """(scores, Dagster metadata) of this iteration's Solver, next to its parent's on the same questions."""
    cfg, recipe = ctx.config, ctx.recipe.name
    examples = labeled_examples("test", cfg.eval_images)
    band = (cfg.band_low, cfg.band_high)

    def score(model_dir):
        return consistency_report(ctx.engine(model_dir), examples, m=cfg.m, band=band, seed=cfg.seed)

    t0 = time.monotonic()
    parent_path = store.parent_scores(recipe, ctx.partition)
    if not parent_path.is_file():  # iteration 1: score the base model once, on the same questions
        atomic_write_json(parent_path, {"procedural": score(ctx.parents["solver"])})
    parent = json.loads(parent_path.read_text())["procedural"]
    current = score(solver_dir)
    # Configured benchmarks through the evaluation harness (greedy, per-sample predictions as parquet);
    # the parent's report is computed once for iteration 1 (the base model) and reused after that.
    suite, limit = benchmarks.parsed(), (benchmarks.limit or None)
    eval_dir = store.eval_dir(recipe, ctx.partition)
    report = evaluate_model(solver_dir, suite, eval_dir, batch_size=cfg.engine_batch_size, limit=limit, device=ctx.device)
    parent_eval = store.parent_eval_dir(recipe, ctx.partition)
    if not (parent_eval / "report.json").is_file():
        evaluate_model(ctx.parents["solver"], suite, parent_eval, batch_size=cfg.engine_batch_size, limit=limit, device=ctx.device)
    parent_report = EvalReport.load(parent_eval)
    rows = []
    for r in report.results.values():
        parent_score = f"{parent_report.results[r.name].score:.4f}" if r.name in parent_report.results else "-"
        rows.append(f"| {r.name} | {r.metric} | {r.score:.4f} | {r.ci95[0]:.4f}-{r.ci95[1]:.4f} | {r.n} | {parent_score} |")
    bench_rows = "| benchmark | metric | score | 95% CI | n | parent score |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    scores = {"procedural": current, "parent": parent_label, "parent_procedural": parent}
    png = accuracy_bars({f"{k} ({'parent' if who == 'p' else ctx.partition})": s[k] for k in ("greedy", "sampled", "majority")
                         for who, s in (("p", parent), ("c", current))}, f"{ctx.partition} vs parent: procedural held-out")
    path = store.scores_path(recipe, ctx.partition)
    write_png(path.parent / "scores.png", png)
    delta = current["greedy"]["accuracy"] - parent["greedy"]["accuracy"]
    metadata = {
        "path": dg.MetadataValue.path(str(path)),
        "greedy_accuracy": current["greedy"]["accuracy"],
        "greedy_ci95": dg.MetadataValue.json(current["greedy"]["ci95"]),
        "sampled_accuracy": current["sampled"]["accuracy"],
        "majority_accuracy": current["majority"]["accuracy"],
        "n": current["greedy"]["n"],
        "parent_greedy_accuracy": parent["greedy"]["accuracy"],
        "greedy_delta_vs_parent": delta,
        "wall_time_s": round(time.monotonic() - t0, 1),
        f"accuracy vs parent, {ctx.partition} (PNG)": dg.MetadataValue.md(png_markdown(png, "held-out accuracy")),
        "benchmarks": dg.MetadataValue.md(bench_rows),
        "eval_report": dg.MetadataValue.path(str(eval_dir / "report.json")),
        **{f"{name}_score": r.score for name, r in report.results.items()},
    }
    return scores, metadata


def build_score_assets(recipe: str, benchmark_scores: dg.AssetsDefinition, parts) -> list:
    @dg.asset_check(asset=benchmark_scores, name="benchmark_scores_did_not_regress", blocking=False, partitions_def=parts,
                    description="WARN when a configured benchmark lost significantly more questions than it gained, "
                                "against the parent or against the base model (exact one-sided McNemar test on the same "
                                "questions, p < 0.05; without per-question predictions, a drop beyond the two 95% "
                                "intervals). Against the base too, so a slow drift over several iterations, each step "
                                "within noise, is still seen.")
    def did_not_regress(context: dg.AssetCheckExecutionContext, home: ZeroforgeHome) -> dg.AssetCheckResult:
        store = IterationStore(home.path)
        key = context.partition_key
        cur = EvalReport.load(store.eval_dir(recipe, key))
        prev = EvalReport.load(store.parent_eval_dir(recipe, key))
        base_dir = store.base_eval_dir(recipe)
        base = EvalReport.load(base_dir) if base_dir != store.parent_eval_dir(recipe, key) and (base_dir / "report.json").is_file() else None
        rows, dropped, changes = [], [], {}
        for name, r in cur.results.items():
            if name not in prev.results:
                continue
            p = prev.results[name]
            bad, vs_parent, changes[f"{name} vs parent"] = regression_verdict(p, r, REGRESSION_ALPHA)
            vs_base = "-"
            if base is not None and name in base.results:
                bad_base, vs_base, changes[f"{name} vs base"] = regression_verdict(base.results[name], r, REGRESSION_ALPHA)
                bad = bad or bad_base
            dropped += [name] if bad else []
            rows.append(f"| {name} | {p.score:.4f} | {r.score:.4f} [{r.ci95[0]:.4f}, {r.ci95[1]:.4f}] | {vs_parent} | {vs_base} | "
                        f"{'REGRESSED' if bad else 'ok'} |")
        table = ("| benchmark | parent | this iteration | vs parent | vs base | verdict |\n|---|---|---|---|---|---|\n"
                 + "\n".join(rows))
        return dg.AssetCheckResult(passed=not dropped, severity=dg.AssetCheckSeverity.WARN,
                                   description=(f"regressed: {', '.join(dropped)}" if dropped else "no benchmark lost significantly"),
                                   metadata={"regressed": dg.MetadataValue.json(dropped), "comparison": dg.MetadataValue.md(table),
                                             "paired": dg.MetadataValue.json({k: v for k, v in changes.items() if v})})

    @dg.asset(name="leaderboard", key_prefix=[recipe], deps=[benchmark_scores.key], group_name=f"{recipe}_summary",
              kinds={"pandas"}, description=f"Base model and every {recipe} iteration on every benchmark.")
    def leaderboard(context: dg.AssetExecutionContext, home: ZeroforgeHome) -> dg.MaterializeResult:
        store = IterationStore(home.path)
        reports = {}
        if (store.base_eval_dir(recipe) / "report.json").is_file():
            reports["base"] = store.base_eval_dir(recipe)
        for key in store.iterations(recipe):
            if (store.eval_dir(recipe, key) / "report.json").is_file():
                failed = [name for name, r in store.guard_results(recipe, key).items() if not r["passed"]]
                # an iteration that failed a guard says so where its scores are compared
                reports[f"{key} (failed {', '.join(failed)})" if failed else key] = store.eval_dir(recipe, key)
        if not reports:
            raise FileNotFoundError(f"no evaluation reports under {home.path / 'runs' / recipe}: materialize benchmark_scores first")
        table = compare(reports)
        out = home.dir("runs", recipe)
        table.to_csv(out / "leaderboard.csv")
        png = leaderboard_plot(table)
        (out / "leaderboard.png").write_bytes(png)
        flat = table.xs("score", axis=1, level="field")
        return dg.MaterializeResult(metadata={
            "models": dg.MetadataValue.json(list(reports)),
            "table": dg.MetadataValue.md(flat.round(4).to_markdown()),
            "leaderboard plot (PNG)": dg.MetadataValue.md(png_markdown(png, "leaderboard")),
            "path": dg.MetadataValue.path(str(out / "leaderboard.csv")),
        })

    return [did_not_regress, leaderboard]


def leaderboard_plot(table) -> bytes:
    """Score with 95% interval per model (x) for each benchmark (one line each)."""
    labels = list(dict.fromkeys(table.columns.get_level_values("label")))
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(labels)), 3))
    for bench in table.index:
        ys = [table.loc[bench, (lab, "score")] for lab in labels]
        lo = [y - table.loc[bench, (lab, "ci_low")] for y, lab in zip(ys, labels)]
        hi = [table.loc[bench, (lab, "ci_high")] - y for y, lab in zip(ys, labels)]
        ax.errorbar(range(len(labels)), ys, yerr=[lo, hi], marker="o", capsize=3, label=bench)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_title("leaderboard")
    ax.legend(fontsize=7)
    return _to_png(fig)
