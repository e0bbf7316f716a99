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
