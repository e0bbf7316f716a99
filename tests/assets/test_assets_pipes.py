"""The training launcher switch: in-process by default, a Dagster Pipes child process on request."""

import json
import os

import dagster as dg
import pytest

from assets.resources import ComputeResource

SMOKE = {"profile": "smoke"}
SOLVER = "vzero/solver_checkpoint"


def test_launcher_switch_and_commands(monkeypatch):
    monkeypatch.delenv("ZEROFORGE_LAUNCHER", raising=False)
    assert ComputeResource().resolved_launcher() == "in_process"  # the default: the CPU path stays in the step
    monkeypatch.setenv("ZEROFORGE_LAUNCHER", "subprocess")
    assert ComputeResource().resolved_launcher() == "subprocess"
    assert ComputeResource(launcher="in_process").resolved_launcher() == "in_process"  # explicit config wins
    assert ComputeResource().training_command()[-2:] == ["-m", "orchestration.pipes_train"]
    acc = ComputeResource(launcher="accelerate", accelerate_args="--num_processes 8 --mixed_precision bf16").training_command()
    assert acc[1:3] == ["-m", "accelerate.commands.launch"] and acc[3:7] == ["--num_processes", "8", "--mixed_precision", "bf16"]
    assert acc[-2:] == ["-m", "orchestration.pipes_train"]
    with pytest.raises(ValueError, match="launcher must be one of"):
        ComputeResource(launcher="slurm").resolved_launcher()


def test_solver_trains_in_a_pipes_child_process(smoke_home_factory, monkeypatch):
    from assets.store import IterationStore
    from models.loading import load_vlm
    from orchestration.runs import materialization_metadata, run_iteration

    home, instance = smoke_home_factory("pipes")
    monkeypatch.delenv("ZEROFORGE_LAUNCHER", raising=False)
    first = run_iteration(instance, "vzero", 1, SMOKE, assets=["vzero/questioner_checkpoint", "vzero/task_set"])
    assert first.success
    assert materialization_metadata(first)["vzero/questioner_checkpoint"]["launcher"] == "in_process"

    monkeypatch.setenv("ZEROFORGE_LAUNCHER", "subprocess")
    run = run_iteration(instance, "vzero", 1, SMOKE, assets=[SOLVER])
    assert run.success
    md = materialization_metadata(run)[SOLVER]
    assert md["launcher"] == "subprocess (Dagster Pipes)" and md["training_pid"] not in (-1, os.getpid())
    assert md["steps"] == 2 and md["content_hash"]  # the same metadata and lineage as in-process training
    solver = IterationStore(home).role_dir("vzero", "iter-0001", "solver")
    assert json.loads((solver / "zeroforge_train.json").read_text())["steps"] == 2
    load_vlm(solver)
    # the child's log lines were streamed into the run's event log by Pipes
    messages = [e.user_message for e in instance.all_logs(run.run_id)]
    assert any("zeroforge training child started" in m for m in messages)
    assert any("solver trained 2 steps" in m for m in messages)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS


@pytest.mark.slow
def test_solver_trains_on_two_processes_through_accelerate(smoke_home_factory, monkeypatch):
    """`accelerate launch --multi_gpu --num_processes 2` on CPU (gloo) through Pipes: the same global batch and steps
    as one process, one published checkpoint, and a rerun that resumes instead of training again."""
    from assets.store import IterationStore
    from models.checkpoint import read_card
    from orchestration.runs import materialization_metadata, run_iteration

    home, instance = smoke_home_factory("accelerate")
    store = IterationStore(home)
    monkeypatch.delenv("ZEROFORGE_LAUNCHER", raising=False)
    assert run_iteration(instance, "vzero", 1, SMOKE, assets=["vzero/questioner_checkpoint", "vzero/task_set", SOLVER]).success
    solver = store.role_dir("vzero", "iter-0001", "solver")
    single = read_card(solver)
    import shutil

    shutil.rmtree(solver)
    monkeypatch.setenv("ZEROFORGE_LAUNCHER", "accelerate")
    monkeypatch.setenv("ZEROFORGE_ACCELERATE_ARGS", "--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no "
                                                    "--dynamo_backend no")
    run = run_iteration(instance, "vzero", 1, SMOKE, assets=[SOLVER])
    assert run.success
    multi = read_card(solver)
    assert (multi["processes"], single["processes"]) == (2, 1)
    assert multi["global_batch"] == single["global_batch"] and multi["steps"] == single["steps"]
    assert store.checkpoint_complete(solver) and not list(solver.parent.glob(".tmp-solver-*"))  # published once
    assert materialization_metadata(run)[SOLVER]["launcher"] == "accelerate (Dagster Pipes)"
    again = run_iteration(instance, "vzero", 1, SMOKE, assets=[SOLVER])  # a rerun resumes from the last checkpoint
    assert again.success and read_card(solver)["resumed_from"] and read_card(solver)["steps"] == single["steps"]
