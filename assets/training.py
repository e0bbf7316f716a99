"""Where a role's GRPO training runs (here, or in a child process through Dagster Pipes), and what the UI shows of it.

`run_training` trains one role of the step's iteration where
`ComputeResource.launcher` says: in this process (the CPU default), or in a
child process through Dagster Pipes (`orchestration.pipes_train`, plain or
under `accelerate launch`), which receives the step's identity and rebuilds
nothing by hand: it loads the same frozen config and task set the IO manager
stores. `grpo_metadata` turns the result into the asset's metadata: reward and
loss curves (with plots), zero-variance group share, hyperparameters, resume
point, wall time.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.iteration import write_png
from assets.resources import ComputeResource, ZeroforgeHome
from assets.store import IterationStore
from evaluation.plots import curves, png_markdown
from models.checkpoint import read_card
from models.grpo import GRPOResult
from recipes.core.context import IterationContext
from recipes.core.loop import train_solver, train_task_maker

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_training(context, compute: ComputeResource, home: ZeroforgeHome, ctx: IterationContext, role: str,
                 task_set: pd.DataFrame | None = None) -> tuple[GRPOResult, dict, dict]:
    """(GRPOResult, reward summary, where it ran) for one role of `ctx`'s iteration; the Solver needs `task_set`."""
    out_dir = IterationStore(home.path).role_dir(ctx.recipe.name, ctx.partition, role)
    launcher = compute.resolved_launcher()
    if launcher == "in_process":
        if role == "solver":
            return train_solver(ctx, task_set, out_dir), {}, {"launcher": "in_process"}
        result, summary = train_task_maker(ctx, role, out_dir)
        return result, summary, {"launcher": "in_process"}
    extras = {"recipe": ctx.recipe.name, "partition": ctx.partition, "role": role, "home": str(home.path), "device": ctx.device}
    client = dg.PipesSubprocessClient(cwd=str(REPO_ROOT), env={"ZEROFORGE_HOME": str(home.path)})
    invocation = client.run(context=context, command=compute.training_command(), extras=extras)
    messages = invocation.get_custom_messages()
    reply = messages[-1] if messages else {}
    return GRPOResult.load(out_dir), reply.get("summary", {}), {"launcher": f"{launcher} (Dagster Pipes)",
                                                                 "training_pid": int(reply.get("pid", -1))}


def grpo_metadata(result: GRPOResult, parent_label: str, extra: dict) -> dict:
    label = f"{result.out_dir.name}, {result.out_dir.parent.name}"  # e.g. "solver, iter-0002"
    reward_keys = sorted({k for h in result.log_history for k in h if k.startswith("rewards/") and k.endswith("/mean")})
    series = {"reward": result.series("reward"), **{k.split("/")[1]: result.series(k) for k in reward_keys}}
    png = curves(series, "GRPO rewards per step")
    zero_std = result.series("frac_reward_zero_std")
    loss_png = curves({"loss": result.series("loss"), "frac_reward_zero_std": zero_std}, "loss / zero-variance groups")
    write_png(result.out_dir / "rewards.png", png)
    card = read_card(result.out_dir)
    if result.skipped:  # the recipe paused this role for the iteration: say so next to the 0 steps
        extra = {"skipped": result.skipped, **extra}
    if card.get("recipe_state"):
        extra = {"recipe_state": dg.MetadataValue.json(card["recipe_state"]), **extra}
    rewards = series["reward"]
    refilled = result.series("dynamic_sampling/refilled_share")
    if refilled:  # DAPO's dynamic sampling ran: what the plain filter would have kept, and what was refilled
        sampled, trained = result.series("dynamic_sampling/useful_share_sampled"), result.series("dynamic_sampling/useful_share_trained")
        extra = {"dynamic_sampling_refilled_share_mean": sum(refilled) / len(refilled),
                 "dynamic_sampling_useful_share_sampled_mean": sum(sampled) / max(1, len(sampled)),
                 "dynamic_sampling_useful_share_trained_mean": sum(trained) / max(1, len(trained)), **extra}
    return {
        "path": dg.MetadataValue.path(str(result.out_dir)),
        "parent": parent_label,
        "steps": result.steps,
        "resumed_from": result.resumed_from or "",
        "wall_time_s": round(result.seconds, 1),
        "reward_first": rewards[0] if rewards else 0.0,
        "reward_last": rewards[-1] if rewards else 0.0,
        "reward_curve": dg.MetadataValue.json(rewards),
        "loss_curve": dg.MetadataValue.json(result.series("loss")),
        # share of groups whose rewards were all equal (no gradient): the "useful sample" complement
        "frac_reward_zero_std_mean": sum(zero_std) / len(zero_std) if zero_std else 0.0,
        f"reward curves, {label} (PNG)": dg.MetadataValue.md(png_markdown(png, f"GRPO rewards per step, {label}")),
        f"loss curve, {label} (PNG)": dg.MetadataValue.md(png_markdown(loss_png, f"loss and zero-variance groups, {label}")),
        "hyperparams": dg.MetadataValue.json(card["hyperparams"]),
        **extra,
    }
