"""Scores across iterations: the regression check on `benchmark_scores` and the `leaderboard`.

`benchmark_scores_did_not_regress` is a non-blocking (WARN) check: it flags a
benchmark whose score dropped from the parent (base model or iteration N-1)
by more than the two 95% intervals allow (`evaluation.runner.regressed`); the
iteration goes on, the UI shows the warning. `leaderboard` is unpartitioned:
it compares the base model and every iteration on every benchmark, with a
table and a plot, rebuilt from the evaluation reports on disk.
"""

import dagster as dg

from assets.resources import ZeroforgeHome
from assets.store import IterationStore


def build_score_assets(recipe: str, benchmark_scores: dg.AssetsDefinition, parts) -> list:
    @dg.asset_check(asset=benchmark_scores, name="benchmark_scores_did_not_regress", blocking=False, partitions_def=parts,
                    description="WARN when a benchmark drops from the parent by more than the 95% intervals allow.")
    def did_not_regress(context: dg.AssetCheckExecutionContext, home: ZeroforgeHome) -> dg.AssetCheckResult:
        from evaluation.runner import EvalReport, regressed

        store = IterationStore(home.path)
        key = context.partition_key
        cur = EvalReport.load(store.eval_dir(recipe, key))
        prev = EvalReport.load(store.parent_eval_dir(recipe, key))
        rows, dropped = [], []
        for name, r in cur.results.items():
            if name not in prev.results:
                continue
            p = prev.results[name]
            bad = regressed(p, r)
            dropped += [name] if bad else []
            rows.append(f"| {name} | {p.score:.4f} [{p.ci95[0]:.4f}, {p.ci95[1]:.4f}] | {r.score:.4f} [{r.ci95[0]:.4f}, {r.ci95[1]:.4f}] | {'REGRESSED' if bad else 'ok'} |")
        table = "| benchmark | parent | this iteration | verdict |\n|---|---|---|---|\n" + "\n".join(rows)
        return dg.AssetCheckResult(passed=not dropped, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"regressed": dg.MetadataValue.json(dropped), "comparison": dg.MetadataValue.md(table)})

    @dg.asset(name="leaderboard", key_prefix=[recipe], deps=[benchmark_scores.key], group_name=f"{recipe}_summary",
              kinds={"pandas"}, description=f"Base model and every {recipe} iteration on every benchmark.")
    def leaderboard(context: dg.AssetExecutionContext, home: ZeroforgeHome) -> dg.MaterializeResult:
        from evaluation.plots import png_markdown
        from evaluation.runner import compare

        store = IterationStore(home.path)
        reports = {}
        if (store.base_eval_dir(recipe) / "report.json").is_file():
            reports["base"] = store.base_eval_dir(recipe)
        for key in store.iterations(recipe):
            if (store.eval_dir(recipe, key) / "report.json").is_file():
                reports[key] = store.eval_dir(recipe, key)
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
            "plot": dg.MetadataValue.md(png_markdown(png, "leaderboard")),
            "path": dg.MetadataValue.path(str(out / "leaderboard.csv")),
        })

    return [did_not_regress, leaderboard]


def leaderboard_plot(table) -> bytes:
    """Score with 95% interval per model (x) for each benchmark (one line each)."""
    from evaluation.plots import _to_png, plt

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
