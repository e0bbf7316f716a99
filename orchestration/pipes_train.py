"""The training step of one role, run outside the Dagster process through Dagster Pipes.

`assets.loop` launches this module when `ComputeResource.launcher` is
"subprocess" (a plain child process) or "accelerate" (`accelerate launch`,
for multi-GPU data parallelism). Pipes passes the step's identity as extras
(recipe, partition, role, home, device), streams this process's logs into
the Dagster run, and carries back a small custom message (the reward
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


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def train_from_extras(extras: dict, log=None) -> dict:
    """Rebuild the step's context from the frozen iteration config and train; returns what the asset needs back."""
    import pandas as pd

    import models  # noqa: F401  (the torchvision fallback before transformers loads)
    from assets.iteration import IterationConfig, iteration_context
    from assets.resources import ComputeResource, ZeroforgeHome
    from recipes import get_recipe
    from recipes.loop import train_solver, train_task_maker

    recipe_name, key, role = extras["recipe"], extras["partition"], extras["role"]
    home = ZeroforgeHome(root=extras["home"])
    compute = ComputeResource(device=extras["device"], launcher="in_process")
    # The parent step froze the iteration config already: the default IterationConfig is never used.
    roles = ("solver",) if role == "solver" else get_recipe(recipe_name).roles  # a task maker's reward may call any role
    ctx, store, _ = iteration_context(recipe_name, key, IterationConfig(), home, compute, roles)
    out_dir = store.role_dir(recipe_name, key, role)
    t0 = time.monotonic()
    if role == "solver":
        result, summary = train_solver(ctx, pd.read_parquet(store.task_set_path(recipe_name, key)), out_dir), {}
    else:
        result, summary = train_task_maker(get_recipe(recipe_name), role, ctx, out_dir)
    if log:
        log.info(f"{role} trained {result.steps} steps in {time.monotonic() - t0:.0f} s (pid {os.getpid()})")
    return {"summary": {k: float(v) for k, v in summary.items()}, "pid": os.getpid(), "out_dir": str(out_dir)}


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    if not _is_main_process():  # other accelerate ranks: train, stay silent
        train_from_extras(_extras_from_env())
        return
    with open_dagster_pipes() as pipes:
        pipes.log.info(f"zeroforge training child started (pid {os.getpid()}, cwd {Path.cwd()})")
        out = train_from_extras(dict(pipes.extras), log=pipes.log)
        pipes.report_custom_message(out)


def _extras_from_env() -> dict:
    """Non-main ranks read the extras from the Pipes context without opening the message channel."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data["extras"])


if __name__ == "__main__":
    main()
