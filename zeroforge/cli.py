"""The `zeroforge` command line.

    zeroforge demo [--profile demo|smoke] [--recipe R]  run the main job on the embedded default, on a persistent instance
    zeroforge ui [--port 3000]              the Dagster webserver on 127.0.0.1, same instance as the demo
    zeroforge build-model --out DIR         build + warm-start an embedded model without Dagster
    zeroforge backfill [--recipe vzero]     re-execute the failed iterations from failure (a Dagster backfill)
    zeroforge lineage TARGET                what trained a checkpoint (task set, images, parent, config, code), verified
    zeroforge ui-snapshots --out DIR        screenshots of the UI on this home (headless Chromium)

Everything is written under $ZEROFORGE_HOME (default ~/.zeroforge; the
Makefile uses .zeroforge/ in the checkout); the Dagster instance lives in
$ZEROFORGE_HOME/dagster so the UI shows the runs the demo made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Launchpad-equivalent run configs. "demo" is README command 1; "smoke" is a
# seconds-long version for tests and for checking an install.
PROFILES: dict[str, dict] = {
    "demo": {
        # ~10 minutes of supervised warm start (once: the base is reused while its config is unchanged);
        # the base must be partly right for majority votes to mean anything
        "base_model": {"size": "small", "n_train_images": 1500, "warm_start_steps": 1200, "warm_start_minutes": 10.0},
        "image_pool": {"procedural_images": 2000},
    },
    "smoke": {
        "base_model": {
            "size": "tiny",
            "n_train_images": 24,
            "n_eval_images": 10,
            "warm_start_steps": 300,
            "warm_start_minutes": 10.0,  # bounded by steps, so a loaded machine gives the same model
            "batch_size": 16,
            "learning_rate": 3e-3,
        },
        "image_pool": {"procedural_images": 50, "include_skimage": False},
        "embedder": {"steps": 20, "batch_size": 16},
    },
}
# The loop part of each profile: recipe, iterations, and the IterationConfig for every iteration.
LOOP_PROFILES: dict[str, dict] = {
    "demo": {"recipe": "vzero", "iterations": 2, "config": {"profile": "embedded"}},
    "smoke": {"recipe": "vzero", "iterations": 1, "config": {"profile": "smoke"}},
}

DAGSTER_YAML = """\
# Written by `zeroforge` on first use; edit freely, it is not overwritten.
telemetry:
  enabled: false
nux:
  enabled: false  # no "join the community" dialog in the UI
# A failed run is re-executed once from its failed step (the daemon of `zeroforge ui` does it); training
# steps resume from their last trainer checkpoint.
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: true
# A run whose worker process died (OOM-killed, node lost) is marked failed, which triggers the retry above.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
concurrency:
  # Steps tagged pool "gpu" (training, sampling, evaluation) never run two at once on one machine.
  pools:
    granularity: op
    default_limit: 1
  # Iterations of one recipe depend on each other: queued runs of the same recipe start one at a time,
  # in order, so a backfill of iter-0002..iter-0004 runs them as a chain.
  runs:
    tag_concurrency_limits:
      - key: "zeroforge/loop"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def zeroforge_home(arg: str | None = None) -> Path:
    home = Path(arg or os.environ.get("ZEROFORGE_HOME") or Path.home() / ".zeroforge").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def prepare_instance(home: Path) -> Path:
    """Point ZEROFORGE_HOME and DAGSTER_HOME at `home` (must run before orchestration is imported)."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    os.environ["ZEROFORGE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return dagster_home


def run_config_for(profile: str) -> dict:
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    import copy

    return {"ops": {name: {"config": copy.deepcopy(cfg)} for name, cfg in PROFILES[profile].items()}}


def _iteration_row(recipe: str, key: str, md: dict[str, dict], wall: float) -> dict:
    ts = md.get(f"{recipe}/task_set", {})
    sc = md.get(f"{recipe}/benchmark_scores", {})
    ci = sc.get("greedy_ci95") or [0, 0]
    return {
        "iteration": key,
        "generated": ts.get("generated", "-"),
        "malformed": ts.get("malformed", "-"),
        "kept": ts.get("kept", "-"),
        "mean_c": f"{ts.get('mean_c', 0):.2f}",
        "pseudo_label_acc": f"{ts.get('pseudo_label_accuracy', 0):.3f}",
        "greedy_acc": f"{sc.get('greedy_accuracy', 0):.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if sc else "-",
        "n": sc.get("n", "-"),
        "sampled_acc": f"{sc.get('sampled_accuracy', 0):.3f}" if sc else "-",
        "maj@m_acc": f"{sc.get('majority_accuracy', 0):.3f}" if sc else "-",
        "parent_greedy": f"{sc.get('parent_greedy_accuracy', 0):.3f}" if sc else "-",
        "wall_s": f"{wall:.0f}",
    }


def _print_table(rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def _progress_plot(home: Path, recipe: str, keys: list[str]) -> Path | None:
    """Greedy / sampled / majority accuracy of base and each iteration, with 95% intervals."""
    from evaluation.plots import curves  # noqa: F401  (sets the headless backend)
    import matplotlib.pyplot as plt

    base = home / "runs" / recipe / "base_scores.json"
    points = [("base", json.loads(base.read_text())["procedural"])] if base.is_file() else []
    for k in keys:
        f = home / "runs" / recipe / k / "scores.json"
        if f.is_file():
            points.append((k, json.loads(f.read_text())["procedural"]))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(points))
    for metric in ("greedy", "sampled", "majority"):
        ys = [p[metric]["accuracy"] for _, p in points]
        lo = [y - p[metric]["ci95"][0] for y, (_, p) in zip(ys, points)]
        hi = [p[metric]["ci95"][1] - y for y, (_, p) in zip(ys, points)]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=metric)
    ax.axhline(0.25, ls="--", c="grey", lw=1, label="chance")
    ax.set_xticks(list(xs), [name for name, _ in points])
    ax.set_ylabel("procedural held-out accuracy")
    ax.set_title(f"{recipe}: Solver accuracy by iteration")
    ax.legend(fontsize=7)
    out = home / "runs" / recipe / "progress.png"
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    home = zeroforge_home(args.home)
    prepare_instance(home)
    import dagster as dg

    from assets.store import iteration_key
    from orchestration.runs import materialization_metadata, run_foundation, run_iteration, run_leaderboard

    if args.recipe:
        from recipes import RECIPES

        if args.recipe not in RECIPES:
            raise SystemExit(f"zeroforge demo: unknown recipe {args.recipe!r}; registered: {', '.join(sorted(RECIPES))}")
    loop = LOOP_PROFILES[args.profile]
    recipe = args.recipe or loop["recipe"]
    foundation = run_config_for(args.profile)
    # The base learns the formats of the recipe that runs (V-Zero's Questioner and the Solver's are shared by
    # all of them), not every recipe's: they would share one warm-start budget. Content-addressed, so each
    # recipe's base is built once and reused.
    foundation["ops"]["base_model"]["config"].setdefault("recipes", list(dict.fromkeys(["vzero", recipe])))
    t0 = time.monotonic()
    instance = dg.DagsterInstance.get()
    from orchestration.backfill import recover_dead_runs  # a killed earlier run's gpu slot, freed first

    recover_dead_runs(instance)
    result = run_foundation(instance, foundation)
    print(f"\nfoundation ({args.profile}) {'succeeded' if result.success else 'FAILED'} in {time.monotonic() - t0:.0f} s; run {result.run_id}")
    for key, md in materialization_metadata(result).items():
        keep = {k: v for k, v in md.items() if isinstance(v, (int, float)) or (isinstance(v, str) and len(v) < 120)}
        print(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in keep.items()))
    if not result.success:
        return 1
    n_iter = args.iterations if args.iterations is not None else loop["iterations"]
    rows, keys = [], []
    for n in range(1, n_iter + 1):
        t1 = time.monotonic()
        res = run_iteration(instance, recipe, n, loop["config"])
        keys.append(iteration_key(n))
        rows.append(_iteration_row(recipe, keys[-1], materialization_metadata(res), time.monotonic() - t1))
        if not res.success:
            print(f"\n{recipe} {keys[-1]} FAILED (run {res.run_id}); open `make ui` for the step's error and check reports")
            _print_table(rows)
            return 1
    print(f"\n{recipe}: {n_iter} iteration(s) on the embedded default")
    _print_table(rows)
    board = run_leaderboard(instance, recipe)
    if board.success:
        md = materialization_metadata(board).get(f"{recipe}/leaderboard", {})
        print(f"\nleaderboard (evaluation harness, greedy; {md.get('path', '')}):\n{md.get('table', '')}")
    plot = _progress_plot(home, recipe, keys)
    print(f"\nzeroforge demo ({args.profile}) succeeded in {time.monotonic() - t0:.0f} s")
    if plot:
        print(f"Plot: {plot}")
    print(f"Instance: {os.environ['DAGSTER_HOME']} (see it with `make ui`)")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    home = zeroforge_home(args.home)
    prepare_instance(home)
    from orchestration.ui import serve_dev  # stops on SIGINT/SIGTERM, its process group included

    return serve_dev(port=args.port)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Mark this machine's dead in-process runs failed, then backfill the failed iterations from failure."""
    home = zeroforge_home(args.home)
    prepare_instance(home)
    import dagster as dg

    from orchestration.backfill import (
        failed_partitions, latest_runs_by_partition, launch_failed_backfill, recover_dead_runs, wait_for_backfill,
    )

    instance = dg.DagsterInstance.get()
    recover_dead_runs(instance, dry_run=args.dry_run)  # dead runs and their pool slots (orchestration.backfill)
    latest = latest_runs_by_partition(instance, args.recipe)
    for key in sorted(latest):
        print(f"  {args.recipe} {key}: {latest[key].status.value} (run {latest[key].run_id})")
    keys = args.partitions.split(",") if args.partitions else failed_partitions(instance, args.recipe)
    if not keys:
        print(f"no failed {args.recipe} iterations: nothing to backfill")
        return 0
    if args.dry_run:
        print(f"would backfill from failure: {', '.join(keys)}")
        return 0
    backfill_id, keys = launch_failed_backfill(instance, args.recipe, keys)
    print(f"backfill {backfill_id}: re-executing {', '.join(keys)} from failure")
    print(f"the daemon of `zeroforge ui` runs it: http://127.0.0.1:{args.port}/runs/b/{backfill_id}")
    if args.wait:
        status = wait_for_backfill(instance, backfill_id, timeout_s=args.timeout)
        print(f"backfill {backfill_id}: {status}")
        return 0 if status in ("COMPLETED", "COMPLETED_SUCCESS") else 1
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Which task set and images trained TARGET, from which parent, with which config and code; hashes verified."""
    home = zeroforge_home(args.home)
    from assets.lineage import format_report, lineage_report

    try:
        rep = lineage_report(home, args.target)
    except LookupError as e:
        raise SystemExit(f"zeroforge lineage: {e}") from e
    print(json.dumps(rep, indent=2, default=str) if args.json else format_report(rep))
    return 0 if rep["ok"] else 2


def cmd_ui_snapshots(args: argparse.Namespace) -> int:
    """Start the webserver on the home, render the main views in headless Chromium, save PNGs."""
    home = zeroforge_home(args.home)
    prepare_instance(home)
    from orchestration.ui import Browser, Webserver, ui_screenshots

    with Webserver(home, port=args.port or None) as ui, Browser(size=(1400, 850)) as browser:
        shots = ui_screenshots(ui, browser, Path(args.out), recipe=args.recipe, partition=args.partition,
                               backfill_id=args.backfill_id)
    for name, path in shots.items():
        print(f"{name}: {path}")
    return 0


def cmd_build_model(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from models.warmstart import WarmStartConfig
    from recipes.bootstrap import BaseModelBuild, build_base_model

    cfg = BaseModelBuild(
        size=args.size,
        n_train_images=args.train_images,
        warm_start=WarmStartConfig(steps=args.steps, max_minutes=args.minutes),
    )
    report = build_base_model(args.out, cfg)
    print(json.dumps({k: v for k, v in report.items() if k != "loss"}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a local HF VLM directory on benchmarks; no Dagster involved."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from evaluation.benchmarks import parse_bench_arg
    from evaluation.readers import BenchmarkFileError, BenchmarkFormatError
    from evaluation.runner import REPORT_FILE, evaluate_model
    from models.loading import ModelDirectoryError

    out = Path(args.out) if args.out else zeroforge_home(args.home) / "eval" / time.strftime("%Y%m%d-%H%M%S")
    try:
        benches = dict(parse_bench_arg(text) for text in args.bench)
        report = evaluate_model(args.model, benches, out, batch_size=args.batch_size, limit=args.limit,
                               device=args.device, max_new_tokens=args.max_new_tokens)
    except (BenchmarkFileError, BenchmarkFormatError, ModelDirectoryError, ValueError) as e:
        raise SystemExit(f"zeroforge eval: {e}") from e
    print(report.table())
    print(f"\nPredictions: {out / 'predictions'}\nReport: {out / REPORT_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zeroforge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="zeroforge home (default $ZEROFORGE_HOME or ~/.zeroforge)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the main job on the embedded default")
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    p.add_argument("--iterations", type=int, default=None, help="loop iterations after the foundation (profile default)")
    p.add_argument("--recipe", help="the recipe whose iterations run: vzero (default), activezero, activezero_passive, "
                   "mmzero, visionzero")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("ui", help="start the Dagster webserver on 127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(fn=cmd_ui)
    p = sub.add_parser("backfill", help="re-execute the failed iterations from failure (a Dagster backfill)")
    p.add_argument("--recipe", default="vzero")
    p.add_argument("--partitions", help="comma-separated iteration keys (default: those whose latest run failed)")
    p.add_argument("--dry-run", action="store_true", help="list what would be backfilled and stop")
    p.add_argument("--wait", action="store_true", help="wait until the daemon (`zeroforge ui`) has finished it")
    p.add_argument("--timeout", type=float, default=6 * 3600)
    p.add_argument("--port", type=int, default=3000, help="the webserver's port, for the printed link")
    p.set_defaults(fn=cmd_backfill)
    p = sub.add_parser("lineage", help="what trained a checkpoint, with verified content hashes")
    p.add_argument("target", help="a checkpoint folder or task set file, or recipe/iter-NNNN[/role] (role default: solver)")
    p.add_argument("--json", action="store_true", help="the full record and checks as JSON")
    p.set_defaults(fn=cmd_lineage)
    p = sub.add_parser("ui-snapshots", help="screenshots of the UI on this home (needs chromium)")
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", default="vzero")
    p.add_argument("--partition", default="iter-0001")
    p.add_argument("--backfill-id", help="also shoot this backfill's page")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.set_defaults(fn=cmd_ui_snapshots)
    p = sub.add_parser("build-model", help="build and warm-start an embedded model (no Dagster)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="small")
    p.add_argument("--train-images", type=int, default=800)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--minutes", type=float, default=4.0)
    p.set_defaults(fn=cmd_build_model)
    p = sub.add_parser("eval", help="score a model directory on benchmarks (no Dagster)")
    p.add_argument("--model", required=True, help="a local Hugging Face VLM directory")
    p.add_argument("--bench", action="append", required=True, metavar="NAME[=PATH]",
                   help="benchmark and its file or folder, e.g. MathVista=/data/vlmeval; 'procedural' needs no path; repeatable")
    p.add_argument("--out", help="output folder (default $ZEROFORGE_HOME/eval/<timestamp>)")
    p.add_argument("--limit", type=int, help="first N samples of each benchmark")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, help="reply length limit (default: per benchmark, 8-32 tokens)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.set_defaults(fn=cmd_eval)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
