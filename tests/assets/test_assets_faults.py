"""Faults: a Solver killed mid-training resumes through Dagster; partial checkpoints never look complete."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.store import IterationStore
from models.checkpoint import CARD, file_manifest, recover_checkpoint_dir
from models.checkpoint import _publish as publish_checkpoint
from models.files import atomic_write_json as write_json_atomic
from models.grpo import last_trainer_checkpoint

REPO = Path(__file__).resolve().parents[2]
# Enough Solver steps, each checkpointed, for a kill to land between the first checkpoint and the end.
KILL_CFG = {"profile": "smoke", "solver_steps": 6, "save_steps": 1}
SOLVER = "vzero/solver_checkpoint"

# The child: the iteration job, Solver step only, on the instance of the home given as argv[1].
CHILD = """
import json, sys
from pathlib import Path
from orchestration.instance import prepare_instance
prepare_instance(Path(sys.argv[1]))
import dagster as dg
from orchestration.runs import run_iteration
r = run_iteration(dg.DagsterInstance.get(), "vzero", 1, json.loads(sys.argv[2]), assets=["vzero/solver_checkpoint"])
sys.exit(0 if r.success else 1)
"""


# -- detection of partial writes (no model needed) ----------------------------------------------------------


def _trainer_ckpt(trainer: Path, n: int, state: str | None) -> Path:
    d = trainer / f"checkpoint-{n}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w" * 10)
    if state is not None:
        (d / "trainer_state.json").write_text(state)
    return d


def test_last_trainer_checkpoint_skips_checkpoints_killed_mid_write(tmp_path):
    trainer = tmp_path / "trainer"
    assert last_trainer_checkpoint(trainer) is None
    good = _trainer_ckpt(trainer, 1, json.dumps({"global_step": 1}))
    _trainer_ckpt(trainer, 2, None)  # killed before the Trainer wrote its state (written last)
    _trainer_ckpt(trainer, 3, '{"global_st')  # killed while writing it
    _trainer_ckpt(trainer, 4, json.dumps({"global_step": 2}))  # not the state of step 4
    assert last_trainer_checkpoint(trainer) == good
    ten = _trainer_ckpt(trainer, 10, json.dumps({"global_step": 10}))
    assert last_trainer_checkpoint(trainer) == ten  # numeric, not text, order


def _complete_checkpoint(path: Path) -> None:

    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"x" * 100)
    write_json_atomic(path / CARD, {"steps": 1, "files": file_manifest(path)})


def test_checkpoint_complete_needs_the_card_and_every_file_it_lists(tmp_path):
    ok = tmp_path / "ok"
    _complete_checkpoint(ok)
    assert IterationStore.checkpoint_complete(ok)

    half = tmp_path / "half"  # weights written, killed before the card
    half.mkdir()
    (half / "config.json").write_text("{}")
    (half / "model.safetensors").write_bytes(b"x" * 100)
    assert not IterationStore.checkpoint_complete(half)

    (half / CARD).write_text('{"steps": 1, "fil')  # a torn card
    assert not IterationStore.checkpoint_complete(half)

    truncated = tmp_path / "truncated"
    _complete_checkpoint(truncated)
    (truncated / "model.safetensors").write_bytes(b"x" * 50)  # the card says 100 bytes
    assert not IterationStore.checkpoint_complete(truncated)

    legacy = tmp_path / "legacy"  # a card from before manifests: weights must exist
    legacy.mkdir()
    (legacy / "config.json").write_text("{}")
    (legacy / CARD).write_text(json.dumps({"steps": 1}))
    assert not IterationStore.checkpoint_complete(legacy)
    (legacy / "model.safetensors").write_bytes(b"x")
    assert IterationStore.checkpoint_complete(legacy)


def test_publish_swaps_whole_folders_and_recovers_from_a_kill_between_renames(tmp_path):
    out = tmp_path / "solver"
    (out / "trainer" / "checkpoint-2").mkdir(parents=True)
    (out / "model.safetensors").write_bytes(b"old")
    (out / "stale.bin").write_bytes(b"from the previous layout")
    staging = tmp_path / ".tmp-solver-abc"
    _complete_checkpoint(staging)
    publish_checkpoint(staging, out)
    assert IterationStore.checkpoint_complete(out) and (out / "trainer" / "checkpoint-2").is_dir()
    assert not (out / "stale.bin").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["solver"]

    # Killed after trainer/ moved into the staging folder, before the swap: the old checkpoint is intact,
    # and the next training moves the resume state back and drops the staging folder.
    staging = tmp_path / ".tmp-solver-def"
    staging.mkdir()
    (out / "trainer").rename(staging / "trainer")
    recover_checkpoint_dir(out)
    assert (out / "trainer" / "checkpoint-2").is_dir() and not staging.exists()

    # Killed after the old folder was renamed away: no checkpoint at all (incomplete), resume state recovered.
    staging = tmp_path / ".tmp-solver-ghi"
    _complete_checkpoint(staging)
    (out / "trainer").rename(staging / "trainer")
    out.rename(tmp_path / ".old-solver-jkl")
    assert not IterationStore.checkpoint_complete(out)
    recover_checkpoint_dir(out)
    assert (out / "trainer" / "checkpoint-2").is_dir() and not IterationStore.checkpoint_complete(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solver"]


# -- resuming restores the checkpoint's weights ---------------------------------------------------------------


def test_resumed_training_starts_from_the_checkpoint_weights(tiny_model_copy, world_images, tmp_path):
    """Trainer's own resume loads nothing into Qwen2.5-VL (key names differ); train_grpo loads it strictly."""
    import torch
    from transformers import TrainerCallback

    from models.formats import solver_prompt
    from models.generation import build_messages
    from models.grpo import GRPOHyperParams, train_grpo
    from models.loading import load_vlm
    rows = [{"prompt": build_messages(solver_prompt("What color is the circle?", ["red", "blue", "green", "yellow"]), 1),
             "image": wi.image, "pseudo_label": "A"} for wi in world_images[:4]]
    hp = GRPOHyperParams(num_generations=4, prompts_per_step=2, steps=2, learning_rate=1e-2, max_completion_length=6, save_steps=1)

    def text_hash(completions, **kw):  # varies within every group, so step 1 has a gradient
        return [(sum(map(ord, str(c))) % 97) / 97 for c in completions]

    out = tmp_path / "solver"
    train_grpo(tiny_model_copy, out, rows, [text_hash], hp)
    import shutil

    shutil.rmtree(out / "trainer" / "checkpoint-2")  # as if killed before step 2's checkpoint

    class Capture(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    cap = Capture()
    res = train_grpo(tiny_model_copy, out, rows, [text_hash], hp, callbacks=[cap])
    assert res.resumed_from.endswith("checkpoint-1") and res.steps == 2
    ckpt = load_vlm(out / "trainer" / "checkpoint-1")[0].state_dict()
    parent = load_vlm(tiny_model_copy)[0].state_dict()
    assert all(torch.equal(cap.weights[k], ckpt[k]) for k in ckpt)
    assert any(not torch.equal(ckpt[k], parent[k]) for k in ckpt)  # step 1 changed something: the check has teeth


# -- a Solver killed mid-run, rerun through Dagster -------------------------------------------------------------


@pytest.fixture(scope="module")
def killed_and_resumed(smoke_home_factory, tmp_path_factory):
    from orchestration.backfill import fail_dead_runs, failed_partitions
    from orchestration.runs import materialization_metadata, run_iteration

    home, instance = smoke_home_factory("killed")
    store = IterationStore(home)
    assert run_iteration(instance, "vzero", 1, KILL_CFG, assets=["vzero/questioner_checkpoint", "vzero/task_set"]).success
    solver = store.role_dir("vzero", "iter-0001", "solver")
    log = tmp_path_factory.mktemp("child") / "child.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(home), json.dumps(KILL_CFG)], cwd=REPO,
                                start_new_session=True, stdout=fh, stderr=subprocess.STDOUT)
    first = solver / "trainer" / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + 3600  # an outer limit only: a busy machine makes this slower, never red
    try:
        while not first.is_file():
            assert proc.poll() is None, f"the child ended before its first checkpoint:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no trainer checkpoint within an hour"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = last_trainer_checkpoint(solver / "trainer")
    state = {
        "home": home, "instance": instance, "store": store, "solver": solver, "killed_at": killed_at,
        "card_after_kill": (solver / CARD).exists(), "complete_after_kill": store.checkpoint_complete(solver),
        "slots_before_recovery": instance.event_log_storage.get_concurrency_info("gpu").claimed_slots,
    }
    state["dead"] = fail_dead_runs(instance)
    state["failed_before"] = failed_partitions(instance, "vzero")
    state["slots_after_recovery"] = instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    rerun = run_iteration(instance, "vzero", 1, KILL_CFG, assets=[SOLVER])
    state["rerun"] = rerun
    state["md"] = materialization_metadata(rerun).get(SOLVER, {})
    state["failed_after"] = failed_partitions(instance, "vzero")
    return state


def test_killed_solver_resumes_from_its_last_checkpoint(killed_and_resumed):
    from models.loading import load_vlm

    s = killed_and_resumed
    solver, killed_at = s["solver"], s["killed_at"]
    # The kill landed mid-run: a checkpoint exists, training had not finished, nothing looked complete.
    assert killed_at is not None and 1 <= int(killed_at.name.split("-")[1]) < 6
    assert not s["card_after_kill"] and not s["complete_after_kill"]
    # The killed run still held the gpu pool slot; recovery failed it and freed the slot.
    assert len(s["slots_before_recovery"]) == 1 and s["slots_after_recovery"] == []
    [dead] = s["dead"]
    assert s["instance"].get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert s["failed_before"] == ["iter-0001"] and s["failed_after"] == []

    assert s["rerun"].success
    card = json.loads((solver / CARD).read_text())
    assert card["resumed_from"] == str(killed_at) == s["md"]["resumed_from"]
    assert card["steps"] == 6 == s["md"]["steps"]
    history = json.loads((solver / "log_history.json").read_text())
    assert [h["step"] for h in history if "reward" in h] == [1, 2, 3, 4, 5, 6]  # none lost, none twice
    model, _ = load_vlm(solver)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert s["store"].checkpoint_complete(solver)
    assert not [p for p in solver.parent.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_half_written_checkpoint_is_detected_and_redone(killed_and_resumed, activate_home):
    from orchestration.runs import materialization_metadata, run_iteration

    s = killed_and_resumed
    home, store, solver = s["home"], s["store"], s["solver"]
    instance = activate_home(home)
    weights_sha = json.loads((solver / CARD).read_text())["files"]["model.safetensors"]["sha256"]
    (solver / CARD).unlink()  # weights present, no card: what a kill under a non-atomic writer leaves
    assert (solver / "model.safetensors").is_file() and not store.checkpoint_complete(solver)

    # The next iteration refuses to start from it, naming the partition to redo.
    r2 = run_iteration(instance, "vzero", 2, {"profile": "smoke"}, assets=["vzero/questioner_checkpoint"])
    assert not r2.success
    messages = " ".join(e.step_failure_data.error.cause.message for e in r2.get_step_failure_events() if e.step_failure_data.error.cause)
    assert "iter-0001" in messages and "incomplete" in messages

    redo = run_iteration(instance, "vzero", 1, KILL_CFG, assets=[SOLVER])
    assert redo.success and store.checkpoint_complete(solver)
    card = json.loads((solver / CARD).read_text())
    assert card["steps"] == 6 and card["resumed_from"].endswith("checkpoint-6")
    assert materialization_metadata(redo)[SOLVER]["steps"] == 6
    # Resumed at the last step: no further training, and the restored weights are the trained ones, so the
    # content hash, which is the asset's Dagster data version, is unchanged.
    assert card["files"]["model.safetensors"]["sha256"] == weights_sha
    versions = [r.asset_materialization.tags["dagster/data_version"] for r in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(SOLVER), asset_partitions=["iter-0001"]), limit=2).records]
    assert len(versions) == 2 and versions[0] == versions[1] == materialization_metadata(redo)[SOLVER]["content_hash"]
