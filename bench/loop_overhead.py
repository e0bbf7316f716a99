"""Overhead of running Solver GRPO as a Dagster asset vs a bare TRL script.

Same model, same task set, same GRPOConfig, one run, alternating:

  dagster   materialize `<recipe>/solver_checkpoint` for one iteration partition through the
            iteration job (run storage, event log, resources, config freezing, metadata, plots)
  bare      a plain script: load the parent model, the prebuilt dataset, GRPOTrainer(...).train()
            with the same GRPOConfig (trainer checkpoints included), save_pretrained; nothing of
            zeroforge's loop in between (--bare-no-checkpoints: without trainer checkpoints)

    .venv/bin/python bench/loop_overhead.py --home .zeroforge [--partition iter-0001] [--repeats 2]

`--home` must hold a materialized task set for the partition (e.g. after `make demo`);
without it the script builds the smoke foundation and iteration in a temp home first.
Reports the median wall time of each and the ratio dagster / bare (target <= 1.05).
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

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402


def bare_trl(parent: Path, out: Path, rows: list[dict], hp, checkpoints: bool = True) -> None:
    """The baseline: TRL alone."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from models.loading import load_vlm
    from recipes.core.rewards import choice_format, solver_accuracy

    model, proc = load_vlm(parent, device="cpu")
    args = hp.to_grpo_config(out / "trainer", "cpu")
    args.reward_weights = [0.9, 0.1]
    if not checkpoints:  # --bare-no-checkpoints: measure what the asset's resumability costs
        args.save_strategy = "no"
    trainer = GRPOTrainer(model=model, reward_funcs=[solver_accuracy, choice_format], args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=proc)
    trainer.train()
    trainer.model.save_pretrained(out)
    proc.save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home")
    ap.add_argument("--recipe", default="vzero")
    ap.add_argument("--partition", default="iter-0001")
    ap.add_argument("--steps", type=int, default=0, help="override the frozen solver steps (0: keep)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--bare-no-checkpoints", action="store_true", help="bare script without trainer checkpoints")
    ap.add_argument("--json")
    args = ap.parse_args()

    from orchestration.instance import prepare_instance
    from orchestration.presets import foundation_run_config

    home = Path(args.home or tempfile.mkdtemp(prefix="zf-overhead-")).resolve()
    prepare_instance(home)
    import dagster as dg
    import pandas as pd

    from assets.io import FrozenConfig
    from assets.iteration import step_context
    from assets.resources import ComputeResource, ZeroforgeHome
    from assets.store import IterationStore, parse_iteration
    from orchestration.definitions import defs
    from orchestration.runs import run_foundation, run_iteration
    from recipes.core.loop import solver_rows

    instance = dg.DagsterInstance.get()
    store = IterationStore(home)
    if not store.task_set_path(args.recipe, args.partition).is_file():
        assert run_foundation(instance, foundation_run_config("smoke")).success
        assert run_iteration(instance, args.recipe, parse_iteration(args.partition), {"profile": "smoke"}).success
    cfg_path = store.config_path(args.recipe, args.partition)
    frozen = json.loads(cfg_path.read_text())
    if args.steps:
        frozen["config"]["solver"]["steps"] = args.steps
        cfg_path.write_text(json.dumps(frozen, indent=2))
    loop = FrozenConfig.load(args.recipe, cfg_path).config
    parent, _ = store.parent_checkpoint(args.recipe, args.partition, "solver")
    task_set = pd.read_parquet(store.task_set_path(args.recipe, args.partition))
    ctx, _ = step_context(args.recipe, args.partition, loop, ZeroforgeHome(root=str(home)), ComputeResource(device="cpu"), ("solver",))
    rows = solver_rows(ctx, task_set)
    solver_dir = store.role_dir(args.recipe, args.partition, "solver")
    job = defs.resolve_job_def(f"{args.recipe}_iteration")
    key = dg.AssetKey([args.recipe, "solver_checkpoint"])

    def via_dagster() -> float:
        shutil.rmtree(solver_dir, ignore_errors=True)  # no resume: train from scratch each time
        t0 = time.perf_counter()
        res = job.execute_in_process(instance=instance, partition_key=args.partition, asset_selection=[key], raise_on_error=True)
        assert res.success
        return time.perf_counter() - t0

    def bare() -> float:
        out = Path(tempfile.mkdtemp(prefix="zf-bare-"))
        t0 = time.perf_counter()
        bare_trl(parent, out, rows, loop.solver, checkpoints=not args.bare_no_checkpoints)
        dt = time.perf_counter() - t0
        shutil.rmtree(out, ignore_errors=True)
        return dt

    bare()  # warm-up (imports, allocator) outside the timings
    t_d, t_b = [], []
    for _ in range(args.repeats):
        t_d.append(via_dagster())
        t_b.append(bare())
    md, mb = statistics.median(t_d), statistics.median(t_b)
    out = {"machine": _common.machine(), "rows": len(rows), "solver_steps": loop.solver.steps,
           "completions_per_step": loop.solver.prompts_per_step * loop.solver.num_generations,
           "dagster_s": t_d, "bare_s": t_b, "ratio_median": md / mb}
    print(f"machine: {out['machine']}; {len(rows)} kept tasks, {loop.solver.steps} GRPO steps x {out['completions_per_step']} completions")
    print(f"  dagster asset: {', '.join(f'{t:.1f}' for t in t_d)} s (median {md:.1f})")
    print(f"  bare TRL:      {', '.join(f'{t:.1f}' for t in t_b)} s (median {mb:.1f})")
    print(f"  ratio dagster / bare: {md / mb:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
