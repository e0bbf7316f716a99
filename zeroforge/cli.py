"""The `zeroforge` command line.

    zeroforge demo [--profile demo|smoke]   run the main job on the embedded default, on a persistent instance
    zeroforge ui [--port 3000]              the Dagster webserver on 127.0.0.1, same instance as the demo
    zeroforge build-model --out DIR         build + warm-start an embedded model without Dagster

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
        "base_model": {"size": "small", "n_train_images": 800, "warm_start_steps": 600, "warm_start_minutes": 4.0},
        "image_pool": {"procedural_images": 2000},
    },
    "smoke": {
        "base_model": {
            "size": "tiny",
            "n_train_images": 40,
            "n_eval_images": 10,
            "warm_start_steps": 5,
            "warm_start_minutes": 1.0,
            "batch_size": 8,
        },
        "image_pool": {"procedural_images": 50, "include_skimage": False},
    },
}

DAGSTER_YAML = """\
# Written by `zeroforge` on first use; edit freely, it is not overwritten.
telemetry:
  enabled: false
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: true
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
    return {"ops": {name: {"config": cfg} for name, cfg in PROFILES[profile].items()}}


def cmd_demo(args: argparse.Namespace) -> int:
    home = zeroforge_home(args.home)
    prepare_instance(home)
    import dagster as dg

    from orchestration.definitions import defs

    t0 = time.monotonic()
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("demo_job")
    result = job.execute_in_process(instance=instance, run_config=run_config_for(args.profile), raise_on_error=False)
    wall = time.monotonic() - t0
    print(f"\nzeroforge demo ({args.profile}) {'succeeded' if result.success else 'FAILED'} in {wall:.0f} s; run {result.run_id}")
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        md = {k: v.value for k, v in mat.metadata.items() if not isinstance(v.value, str) or len(v.value) < 120}
        keep = {k: v for k, v in md.items() if not isinstance(v, (dict, list))}
        print(f"  {mat.asset_key.to_user_string()}: " + ", ".join(f"{k}={v}" for k, v in keep.items()))
    print(f"Instance: {os.environ['DAGSTER_HOME']} (see it with `make ui`)")
    return 0 if result.success else 1


def cmd_ui(args: argparse.Namespace) -> int:
    home = zeroforge_home(args.home)
    prepare_instance(home)
    exe = Path(sys.executable).parent / "dagster"
    argv = [str(exe), "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", str(REPO_ROOT / "workspace.yaml")]
    os.chdir(REPO_ROOT)
    os.execv(argv[0], argv)
    return 0  # not reached


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zeroforge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="zeroforge home (default $ZEROFORGE_HOME or ~/.zeroforge)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the main job on the embedded default")
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("ui", help="start the Dagster webserver on 127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(fn=cmd_ui)
    p = sub.add_parser("build-model", help="build and warm-start an embedded model (no Dagster)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="small")
    p.add_argument("--train-images", type=int, default=800)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--minutes", type=float, default=4.0)
    p.set_defaults(fn=cmd_build_model)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
