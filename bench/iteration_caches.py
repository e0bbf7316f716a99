"""What the per-step caches save: one iteration's wall time with and without them, side by side.

An iteration's steps ask for the same things several times: `task_set` votes with the parent
Solver and then audits with it, and each image is read for the proposal, the Solver's request,
its training rows and the lineage hash. `IterationContext.engine` keeps one engine per
checkpoint per step and `IterationImages` one decode per image per step. This script runs the
same iteration partition through the iteration job, alternating:

  cached     the code as it is
  uncached   the same code with both caches disabled in this process (an engine is loaded at
             every request, an image decoded at every read): what the steps did before the caches

Each run starts from nothing of the partition (its run folder and lineage records are removed),
on the same home, foundation and seed, so both arms do the same work but for the repeats.

    .venv/bin/python bench/iteration_caches.py [--home DIR] [--profile smoke] [--repeats 2] [--json out.json]

Without --home, the smoke foundation is built in a temp home first. Prints each run's wall time,
engine loads and image decodes, and the ratio uncached / cached of the medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402


class Counters:
    """Engine loads and image decodes of one run, counted at the two places the caches sit."""

    def __init__(self) -> None:
        self.engine_loads = 0
        self.decodes = 0


def instrument(cached: dict, counters: Counters):
    """Patch the caches in this process; `cached["on"]` switches them. Returns nothing to undo: the bench owns it."""
    from recipes.core import context

    original_engine = context.IterationContext.engine
    original_get = context.IterationImages.get
    original_factory = context.default_engine_factory

    def factory(device, batch_size):
        make = original_factory(device, batch_size)

        def counted(model_dir):
            counters.engine_loads += 1
            return make(model_dir)
        return counted

    def engine(self, model_dir):
        if not cached["on"]:
            self._engines.clear()  # no memo: every request loads its engine again
        return original_engine(self, model_dir)

    def get(self, image_id):
        if not cached["on"]:
            self._cache.clear()
        before = self.decodes
        img = original_get(self, image_id)
        counters.decodes += self.decodes - before
        return img

    context.default_engine_factory = factory
    context.IterationContext.engine = engine
    context.IterationImages.get = get


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="a home with a foundation (default: a temp home with the smoke foundation)")
    ap.add_argument("--recipe", default="vzero")
    ap.add_argument("--profile", default="smoke", help="the iteration's profile (launchpad `profile`)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per arm, alternating")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    from orchestration.instance import prepare_instance
    from orchestration.presets import foundation_run_config

    home = Path(args.home or tempfile.mkdtemp(prefix="zf-caches-")).resolve()
    prepare_instance(home)
    import dagster as dg

    from assets.store import IterationStore
    from orchestration.runs import run_foundation, run_iteration

    instance = dg.DagsterInstance.get()
    store = IterationStore(home)
    if not (home / "models").is_dir():
        assert run_foundation(instance, foundation_run_config("smoke")).success
    cached, counters = {"on": True}, Counters()
    instrument(cached, counters)
    partition = "iter-0001"

    def one(on: bool) -> dict:
        shutil.rmtree(store.iteration_dir(args.recipe, partition), ignore_errors=True)
        for rec in [*(home / "lineage").glob(f"{args.recipe}/{partition}*"), *(home / "lineage").glob(f"{args.recipe}/*/{partition}*")]:
            shutil.rmtree(rec, ignore_errors=True) if rec.is_dir() else rec.unlink()
        cached["on"], counters.engine_loads, counters.decodes = on, 0, 0
        t0 = time.perf_counter()
        res = run_iteration(instance, args.recipe, 1, {"profile": args.profile})
        wall = time.perf_counter() - t0
        assert res.success, "the iteration failed; see the Dagster run"
        return {"cached": on, "wall_s": wall, "engine_loads": counters.engine_loads, "decodes": counters.decodes}

    one(True)  # warm-up: imports, the base's evaluation (cached per recipe, so both arms reuse it)
    runs = []
    for _ in range(args.repeats):
        runs += [one(False), one(True)]
    med = {on: statistics.median(r["wall_s"] for r in runs if r["cached"] is on) for on in (True, False)}
    out = {"machine": _common.machine(), "recipe": args.recipe, "profile": args.profile, "runs": runs,
           "ratio_uncached_over_cached": med[False] / med[True]}
    print(f"machine: {out['machine']}; {args.recipe} {partition}, profile {args.profile}")
    for r in runs:
        print(f"  {'cached  ' if r['cached'] else 'uncached'}  {r['wall_s']:7.1f} s  engine loads {r['engine_loads']:3d}"
              f"  image decodes {r['decodes']:5d}")
    print(f"  median wall: cached {med[True]:.1f} s, uncached {med[False]:.1f} s; ratio uncached / cached "
          f"{out['ratio_uncached_over_cached']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
