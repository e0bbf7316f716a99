"""The training step of one role, run outside the Dagster process through Dagster Pipes.

`assets.training` launches this module when `ComputeResource.launcher` is
"subprocess" (a plain child process) or "accelerate" (`accelerate launch`,
for multi-GPU data parallelism). Pipes passes the step's identity as extras
(recipe, partition, role, home, device); the child loads the iteration's
frozen config and task set from where the IO manager stored them (nothing
is rebuilt by hand), Pipes streams this process's logs into the Dagster run, and carries back a small custom message (the reward
statistics, the pid); the weights, card and log history go to the same
checkpoint folder as in-process training, so the asset reports them the same
way. Under `accelerate launch` every rank trains and only the main one
talks to Dagster.

    python -m orchestration.pipes_train        (started by PipesSubprocessClient, never by hand)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader, open_dagster_pipes

from assets.io import FrozenConfig
from assets.iteration import step_context
from assets.resources import ComputeResource, ZeroforgeHome
from assets.store import IterationStore
from assets.training import run_training
from recipes import get_recipe


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def train_from_extras(extras: dict, log=None) -> dict:
    """Train the role the parent step names, from the iteration's frozen config (and task set, for the Solver)."""
    recipe_name, key, role = extras["recipe"], extras["partition"], extras["role"]
    home = ZeroforgeHome(root=extras["home"])
    compute = ComputeResource(device=extras["device"], launcher="in_process")
    store = IterationStore(home.path)
    cfg = FrozenConfig.load(recipe_name, store.config_path(recipe_name, key)).config
    roles = ("solver",) if role == "solver" else tuple(dict.fromkeys((role, *get_recipe(recipe_name).roles)))
    ctx, _ = step_context(recipe_name, key, cfg, home, compute, roles)
    task_set = pd.read_parquet(store.task_set_path(recipe_name, key)) if role == "solver" else None
    t0 = time.monotonic()
    result, summary, _ = run_training(None, compute, home, ctx, role, task_set)
    if log:
        log.info(f"{role} trained {result.steps} steps in {time.monotonic() - t0:.0f} s (pid {os.getpid()})")
    return {"summary": {k: float(v) for k, v in summary.items() if isinstance(v, (int, float))}, "pid": os.getpid(),
            "out_dir": str(result.out_dir)}


def main() -> None:
    if not _is_main_process():  # other accelerate ranks: train, stay silent
        train_from_extras(_extras_from_env())
        return
    with open_dagster_pipes() as pipes:
        pipes.log.info(f"zeroforge training child started (pid {os.getpid()}, cwd {Path.cwd()})")
        out = train_from_extras(dict(pipes.extras), log=pipes.log)
        pipes.report_custom_message(out)


def _extras_from_env() -> dict:
    """Non-main ranks read the extras from the Pipes context without opening the message channel."""
    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data["extras"])


if __name__ == "__main__":
    main()
