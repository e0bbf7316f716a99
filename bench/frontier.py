"""Active vs passive Active-Zero: does searching the pool give the Solver more useful GRPO groups?

One run, one zeroforge home, the same base model, pool and embedder, the same budgets:

  activezero          Searcher queries the pool (top-5 by the embedder), Questioner asks, Solver learns
  activezero_passive  images drawn uniformly from the same pool, no Searcher; everything else identical

Per iteration and arm it prints: the useful-sample ratio (share of the Solver's GRPO groups with non-zero
reward variance, `1 - frac_reward_zero_std` averaged over the Solver's steps; target >= 0.8 active), the kept
share and mean c of kept tasks, and the Solver's greedy held-out accuracy with its 95% interval (and the
parent's, for iteration 1). Iterations run through Dagster (`orchestration.runs.run_iteration`), so every
figure is also in the UI of that home.

    .venv/bin/python bench/frontier.py --home /tmp/zf-frontier --foundation smoke --profile smoke --iterations 1
    .venv/bin/python bench/frontier.py --home ~/.zeroforge --foundation demo --profile embedded --iterations 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402

ARMS = ("activezero", "activezero_passive")


def iteration_figures(home: Path, recipe: str, key: str) -> dict:
    import pandas as pd

    from assets.store import IterationStore

    store = IterationStore(home)
    df = pd.read_parquet(store.task_set_path(recipe, key))
    kept = df[df["kept"]]
    history = json.loads((store.role_dir(recipe, key, "solver") / "log_history.json").read_text())
    zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
    scores = json.loads(store.scores_path(recipe, key).read_text())
    g, pg = scores["procedural"]["greedy"], scores["parent_procedural"]["greedy"]
    return {
        "tasks": len(df), "kept": len(kept), "malformed": int((df["reason"] == "malformed").sum()),
        "distinct_images": int(df[df["image_id"] != ""]["image_id"].nunique()),
        "mean_c_kept": float(kept["c"].mean()) if len(kept) else None,
        "solver_steps": len(zero_std),
        "useful_ratio": 1.0 - sum(zero_std) / len(zero_std) if zero_std else None,
        "greedy": g["accuracy"], "greedy_ci95": g["ci95"], "n": g["n"],
        "parent_greedy": pg["accuracy"], "parent_ci95": pg["ci95"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True, help="zeroforge home (its Dagster instance records every run)")
    ap.add_argument("--foundation", default="smoke", help="foundation profile (orchestration.presets): smoke | embedded")
    ap.add_argument("--profile", default="smoke", help="recipe profile of each iteration (smoke | embedded | paper)")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--json", default="", help="write the figures here too")
    args = ap.parse_args()

    import os

    home = Path(args.home).expanduser().resolve()
    os.environ["ZEROFORGE_HOME"] = str(home)
    import dagster as dg

    from orchestration.instance import prepare_instance
    from orchestration.presets import foundation_run_config
    from orchestration.runs import run_foundation, run_iteration

    prepare_instance(home)  # dagster.yaml and $DAGSTER_HOME for this home
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    t0 = time.monotonic()
    # the same base `zeroforge demo --recipe activezero` builds: the Questioner's format plus the Searcher's
    foundation = foundation_run_config(args.foundation, recipes=["activezero"])
    if not run_foundation(instance, foundation).success:
        raise SystemExit("the foundation job failed; see the Dagster UI of this home")
    print(f"foundation ({args.foundation}) ready in {time.monotonic() - t0:.0f} s on {_common.machine()}")
    out: dict = {"foundation": args.foundation, "profile": args.profile, "machine": _common.machine(), "arms": {}}
    for arm in ARMS:
        out["arms"][arm] = []
        for n in range(1, args.iterations + 1):
            t0 = time.monotonic()
            r = run_iteration(instance, arm, n, {"profile": args.profile} if n == 1 else {})
            wall = time.monotonic() - t0
            if not r.success:
                errs = [e.step_failure_data.error.message[-400:] for e in r.get_step_failure_events()]
                print(f"{arm} iter {n}: FAILED after {wall:.0f} s: {errs}")
                out["arms"][arm].append({"iteration": n, "failed": errs})
                break
            fig = {"iteration": n, "wall_s": round(wall, 1), **iteration_figures(home, arm, f"iter-{n:04d}")}
            out["arms"][arm].append(fig)
            print(json.dumps({arm: fig}))
    print("\n| arm | iter | tasks | kept | mean c kept | useful-sample ratio | greedy held-out (95% CI) | parent greedy | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, figs in out["arms"].items():
        for f in figs:
            if "failed" in f:
                print(f"| {arm} | {f['iteration']} | failed | | | | | | |")
                continue
            mc = f"{f['mean_c_kept']:.3f}" if f["mean_c_kept"] is not None else "-"
            ur = f"{f['useful_ratio']:.3f}" if f["useful_ratio"] is not None else "-"
            print(f"| {arm} | {f['iteration']} | {f['tasks']} | {f['kept']} | {mc} | {ur} | {f['greedy']:.3f} "
                  f"({f['greedy_ci95'][0]:.3f}-{f['greedy_ci95'][1]:.3f}, n={f['n']}) | {f['parent_greedy']:.3f} | {f['wall_s']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
