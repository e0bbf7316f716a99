"""The guards through Dagster: a collapsed checkpoint and a labeling bug each fail the right check with the right
message, the chain stops after a failed blocking guard (the sensor skips, the next iteration refuses) and goes on
when told to accept it; a healthy smoke iteration passes them (tests/assets/test_assets_loop.py).
"""

import random
import shutil

import dagster as dg
import pytest
import torch

import recipes.core.loop
from assets.resources import ZeroforgeHome
from assets.store import IterationStore
from models.loading import load_vlm
from models.warmstart import SupervisedExample, WarmStartConfig, supervised_finetune
from orchestration.definitions import defs
from orchestration.presets import foundation_run_config
from orchestration.runs import run_foundation, run_iteration
from orchestration.sensors import LoopSettings
from recipes.core.bootstrap import solver_examples
from recipes.core.questioner import questioner_examples
from recipes.core.voting import Vote
from retrieval.world.splits import split_images

SMOKE = {"profile": "smoke"}


def checks_of(result) -> dict:
    return {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"}


@pytest.fixture(scope="module")
def collapsed_base(smoke_foundation, tmp_path_factory):
    """The smoke base taught to answer every Solver question \\boxed{B} (it still writes questions)."""
    src = next((smoke_foundation / "models").glob("base-*"))
    out = tmp_path_factory.mktemp("collapsed") / "model"
    shutil.copytree(src, out)
    images = split_images("train", 24)
    rng = random.Random(0)
    always_b = [SupervisedExample(e.prompt, "\\boxed{B}", e.images, e.task_type) for e in solver_examples(images, rng)]
    model, proc = load_vlm(out, device="cpu", dtype=torch.float32)
    supervised_finetune(model, proc, always_b + questioner_examples(images, rng),
                        WarmStartConfig(steps=60, batch_size=16, learning_rate=3e-3, warmup_steps=5), progress=False)
    model.save_pretrained(out)
    return out


def test_a_collapsed_checkpoint_fails_the_collapse_guard_and_stops_the_chain(smoke_home_factory, collapsed_base):
    home, instance = smoke_home_factory("guards_collapse")
    store = IterationStore(home)
    foundation = foundation_run_config("smoke")
    foundation["ops"]["base_model"]["config"] = {"model_path": str(collapsed_base)}
    base_run = run_foundation(instance, foundation)
    base_check = checks_of(base_run)["base_model_is_above_chance"]
    assert not base_run.success and not base_check.passed  # blocking: the foundation run fails, with the reason
    assert "cannot self-evolve" in base_check.description

    refused = run_iteration(instance, "vzero", 1, SMOKE)  # iteration 1 will not start from a base at chance ...
    assert not refused.success
    errors = " ".join(str(e.step_failure_data.error.cause or e.step_failure_data.error) for e in refused.get_step_failure_events())
    assert "base_above_chance" in errors and "accept_failed_guards" in errors
    r = run_iteration(instance, "vzero", 1, {**SMOKE, "accept_failed_guards": ["base_above_chance"]})  # ... unless told
    checks = checks_of(r)
    collapse = checks["solver_did_not_collapse"]
    assert not collapse.passed and collapse.severity == dg.AssetCheckSeverity.ERROR
    assert "answers 'B' to 100%" in collapse.description and not r.success
    assert store.guard_results("vzero", "iter-0001")["answer_collapse"]["blocking"] is True

    sensor = defs.resolve_sensor_def("vzero_chain_iterations")
    skipped = sensor(dg.build_sensor_context(instance=instance, resources={
        "loop_settings": LoopSettings(max_iterations=5), "home": ZeroforgeHome(root=str(home))}))
    assert isinstance(skipped, dg.SkipReason) and "failed blocking guard(s) answer_collapse" in skipped.skip_message
    accepted = sensor(dg.build_sensor_context(instance=instance, resources={
        "loop_settings": LoopSettings(max_iterations=5, accept_failed_guards=["answer_collapse"]),
        "home": ZeroforgeHome(root=str(home))}))
    assert [q.partition_key for q in accepted.run_requests] == ["iter-0002"]


def test_shuffled_pseudo_labels_fail_the_label_guard_before_the_solver_trains(smoke_home_factory, monkeypatch):
    home, instance = smoke_home_factory("guards_labels")
    real_vote = recipes.core.loop.vote

    def shuffled(*args, **kwargs):  # the labeling bug: every label moved to the next option letter
        return [Vote(v.replies, v.answers, "BCDA"["ABCD".index(v.label)] if v.label else None, v.c) for v in real_vote(*args, **kwargs)]

    monkeypatch.setattr(recipes.core.loop, "vote", shuffled)
    r = run_iteration(instance, "vzero", 1, SMOKE)
    labels = checks_of(r)["pseudo_labels_are_trustworthy"]
    assert not labels.passed and "labeling bug" in labels.description
    assert labels.metadata["agreement_with_own_votes"].value < 0.95
    assert not r.success and not IterationStore(home).checkpoint_complete(IterationStore(home).role_dir("vzero", "iter-0001", "solver"))
