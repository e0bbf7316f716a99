"""The `zeroforge` command line: thin commands over orchestration (Dagster) and the plain libraries.

    zeroforge demo [--profile embedded|smoke] [--recipe R]   the main job on the embedded default, on a persistent instance
    zeroforge ui [--port 3000]                the Dagster webserver on 127.0.0.1, same instance as the demo
    zeroforge eval --model DIR --bench N=P    score any local VLM on benchmarks (no Dagster)
    zeroforge build-model --out DIR           build + warm-start an embedded model (no Dagster)
    zeroforge backfill [--recipe vzero]       re-execute the failed iterations from failure (a Dagster backfill)
    zeroforge lineage TARGET                  what trained a checkpoint (task set, images, parent, config, code), verified
    zeroforge ui-snapshots --out DIR          screenshots of the UI on this home (headless Chromium)

The CLI sits on top of everything (it may import dagster through
`orchestration`); heavy imports happen inside the command that needs them, so
`zeroforge --help` answers at once. Everything is written under the zeroforge
home: `--home` (before or after the command), else $ZEROFORGE_HOME, else a
`.zeroforge/` folder in the current directory or a parent, else ~/.zeroforge.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from evaluation.custom import RULE_OPTION_HELP, RULES_HELP
from evaluation.input_checks import ON_BAD_IMAGE, ON_BAD_IMAGE_HELP
from orchestration.instance import prepare_instance, resolve_home
from orchestration.presets import LOOP_DEFAULTS, PROFILES

REPO_ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    try:
        return version("zeroforge")
    except PackageNotFoundError:
        return "unknown"


def home_for(args: argparse.Namespace, announce: bool = True) -> Path:
    """The home this command uses, created if missing; says which one and why (stderr, so --json stays clean)."""
    home, how = resolve_home(getattr(args, "home", None))
    home.mkdir(parents=True, exist_ok=True)
    if announce:
        print(f"zeroforge home: {home} ({how})", file=sys.stderr)
    return home


def _instance(home: Path):
    """The home's Dagster instance, after freeing the slots of this machine's dead runs (and saying so)."""
    prepare_instance(home)
    import dagster as dg

    from orchestration.backfill import recover_dead_runs
    from orchestration.runs import open_first_iterations

    instance = dg.DagsterInstance.get()
    recover_dead_runs(instance, echo=lambda line: print(line, file=sys.stderr))  # a killed earlier run's gpu slot
    open_first_iterations(instance)  # so a recipe that never ran shows as missing in the UI, not as green
    return instance


def cmd_demo(args: argparse.Namespace) -> int:
    home = home_for(args)
    instance = _instance(home)
    from orchestration.demo import run_demo
    from recipes import RECIPES

    recipe = args.recipe or LOOP_DEFAULTS[args.profile]["recipe"]
    if recipe not in RECIPES:
        raise SystemExit(f"zeroforge demo: unknown recipe {recipe!r}; registered: {', '.join(sorted(RECIPES))}")
    return run_demo(instance, home, args.profile, recipe, args.iterations, accept_failed_base=not args.stop_at_failed_base)


def cmd_ui(args: argparse.Namespace) -> int:
    home = home_for(args)
    _instance(home)
    from orchestration.ui import serve_dev

    return serve_dev(port=args.port)


def cmd_backfill(args: argparse.Namespace) -> int:
    """List the failed iterations and backfill them from failure; --dry-run changes nothing."""
    home = home_for(args)
    prepare_instance(home)
    import dagster as dg

    from orchestration.backfill import (
        dead_runs,
        fail_dead_runs,
        failed_partitions,
        latest_runs_by_partition,
        launch_failed_backfill,
        wait_for_backfill,
    )

    instance = dg.DagsterInstance.get()
    if args.dry_run:
        for run_id in dead_runs(instance):
            print(f"run {run_id}: its worker process is gone (would mark it failed and free its gpu slot)")
    else:
        for run_id in fail_dead_runs(instance):
            print(f"run {run_id}: its worker process is gone; marked it failed and freed its gpu slot")
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
    home = home_for(args)
    from assets.lineage import format_report, lineage_report

    try:
        rep = lineage_report(home, args.target)
    except LookupError as e:
        raise SystemExit(f"zeroforge lineage: {e}") from e
    print(json.dumps(rep, indent=2, default=str) if args.json else format_report(rep))
    return 0 if rep["ok"] else 2


def cmd_ui_snapshots(args: argparse.Namespace) -> int:
    """Start the webserver on the home, render the main views in headless Chromium, save PNGs."""
    home = home_for(args)
    _instance(home)
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
    from recipes.core.bootstrap import BaseModelBuild, build_base_model

    cfg = BaseModelBuild(size=args.size, n_train_images=args.train_images, recipes=tuple(args.recipes.split(",")),
                         warm_start=WarmStartConfig(steps=args.steps, batch_size=args.batch_size,
                                                    pixel_loss_weight=args.pixel_weight))
    report = build_base_model(args.out, cfg)
    print(json.dumps({k: v for k, v in report.items() if k != "loss"}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a local HF VLM directory on benchmarks; no Dagster involved."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from evaluation.benchmarks import parse_bench_arg
    from evaluation.custom import parse_rule_arg
    from evaluation.readers import BenchmarkFileError, BenchmarkFormatError
    from evaluation.runner import REPORT_FILE, evaluate_model
    from models.loading import ModelDirectoryError

    out = Path(args.out) if args.out else home_for(args) / "eval" / time.strftime("%Y%m%d-%H%M%S")
    try:
        benches = dict(parse_bench_arg(text) for text in args.bench)
        rules = dict(parse_rule_arg(text) for text in args.rule or [])
        report = evaluate_model(args.model, benches, out, batch_size=args.batch_size, limit=args.limit,
                                device=args.device, max_new_tokens=args.max_new_tokens, progress=not args.quiet,
                                on_bad_image=args.on_bad_image, rules=rules)
    except (BenchmarkFileError, BenchmarkFormatError, ModelDirectoryError, ValueError) as e:
        raise SystemExit(f"zeroforge eval: {e}") from e
    print(report.text_table())
    print(f"\nPredictions: {out / 'predictions'}\nReport: {out / REPORT_FILE}")
    return 0


def _add_home(p: argparse.ArgumentParser, top: bool = False) -> None:
    # accepted before and after the command; the command's own copy must not overwrite the top-level one
    p.add_argument("--home", default=None if top else argparse.SUPPRESS, metavar="DIR",
                   help="zeroforge home (default: $ZEROFORGE_HOME, else a .zeroforge/ folder here or in a parent, "
                        "else ~/.zeroforge)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="zeroforge", description=__doc__, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"zeroforge {_version()}")
    _add_home(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the main job (foundation + iterations) on the embedded default", formatter_class=fmt)
    p.add_argument("--profile", default="embedded", choices=PROFILES,
                   help="embedded: the tiny model on CPU (README command 1); smoke: seconds-long, for checking an install "
                        "(default: %(default)s)")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="loop iterations after the foundation (default: 2 for embedded, 1 for smoke)")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="the recipe whose iterations run: vzero, activezero, activezero_passive, mmzero, visionzero "
                        "(default: vzero)")
    p.add_argument("--stop-at-failed-base", action="store_true",
                   help="stop after the foundation when the base fails base_model_is_above_chance (the chain sensor always "
                        "does). By default the demo runs its iterations anyway, says so, and records the acceptance in "
                        "iter-0001's config: the embedded base is blind (docs/efficacy.md) and the demo shows the loop and "
                        "its guards telling you so")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("ui", help="start the Dagster webserver on 127.0.0.1 (same instance as the demo)")
    p.add_argument("--port", type=int, default=3000, help="port of the webserver (default: %(default)s)")
    p.set_defaults(fn=cmd_ui)

    p = sub.add_parser("eval", help="score a model directory on benchmarks (no Dagster)", formatter_class=fmt,
                       epilog=RULES_HELP)
    p.add_argument("--model", required=True, metavar="DIR", help="a local Hugging Face VLM directory")
    p.add_argument("--bench", action="append", required=True, metavar="NAME[=PATH]",
                   help="benchmark and its file or folder, e.g. MathVista=/data/vlmeval; 'procedural' needs no path; "
                        "repeatable")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <home>/eval/<timestamp>)")
    p.add_argument("--limit", type=int, metavar="N", help="score only the first N samples of each benchmark (default: all)")
    p.add_argument("--batch-size", type=int, default=16, help="requests per generation batch (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="reply length limit (default: per benchmark, 8-32 tokens)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--rule", action="append", metavar="NAME=RULE", help=RULE_OPTION_HELP)
    p.add_argument("--on-bad-image", choices=ON_BAD_IMAGE, default="error", help=ON_BAD_IMAGE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: a bar per benchmark on stderr)")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("build-model", help="build and warm-start an embedded model (no Dagster)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the model is written")
    p.add_argument("--size", default="small", help="architecture, a key of models.tiny_vlm.TINY_SPECS (default: %(default)s)")
    p.add_argument("--train-images", type=int, default=800, help="world images the warm start trains on (default: %(default)s)")
    p.add_argument("--steps", type=int, default=400, help="warm-start optimizer steps (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="warm-start batch size (default: %(default)s)")
    p.add_argument("--pixel-weight", type=float, default=1.0,
                   help="weight of the dense perception loss, each visual token redrawing its cell (0: off; default: %(default)s)")
    p.add_argument("--recipes", default="vzero", help="comma-separated recipes whose formats are taught (default: %(default)s)")
    p.set_defaults(fn=cmd_build_model)

    p = sub.add_parser("backfill", help="re-execute the failed iterations from failure (a Dagster backfill)")
    p.add_argument("--recipe", default="vzero", help="the recipe whose iterations are backfilled (default: %(default)s)")
    p.add_argument("--partitions", metavar="KEYS", help="comma-separated iteration keys (default: those whose latest run failed)")
    p.add_argument("--dry-run", action="store_true", help="list what would be done and change nothing")
    p.add_argument("--wait", action="store_true", help="wait until the daemon (`zeroforge ui`) has finished it")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="--wait: seconds to wait at most (default: %(default)s)")
    p.add_argument("--port", type=int, default=3000, help="the webserver's port, for the printed link (default: %(default)s)")
    p.set_defaults(fn=cmd_backfill)

    p = sub.add_parser("lineage", help="what trained a checkpoint, with verified content hashes")
    p.add_argument("target", help="a checkpoint folder or task set file, or recipe/iter-NNNN[/role] (role default: solver)")
    p.add_argument("--json", action="store_true", help="print the full record and checks as JSON")
    p.set_defaults(fn=cmd_lineage)

    p = sub.add_parser("ui-snapshots", help="screenshots of the UI on this home (needs chromium)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the PNGs are written")
    p.add_argument("--recipe", default="vzero", help="the recipe whose pages are shot (default: %(default)s)")
    p.add_argument("--partition", default="iter-0001", help="the iteration whose pages are shot (default: %(default)s)")
    p.add_argument("--backfill-id", help="also shoot this backfill's page")
    p.add_argument("--port", type=int, default=0, help="port of the webserver (default: a free port)")
    p.set_defaults(fn=cmd_ui_snapshots)
    for action in sub.choices.values():
        _add_home(action)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
