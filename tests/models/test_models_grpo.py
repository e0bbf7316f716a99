import json

import pytest
import torch

from models.generation import build_messages
from models.grpo import GRPOHyperParams, last_trainer_checkpoint, train_grpo
from models.loading import load_vlm
from recipes.core.rewards import choice_format, solver_accuracy


def _rows(world_images, n=4):
    from models.formats import solver_prompt

    return [{"prompt": build_messages(solver_prompt("What color is the circle?", ["red", "blue", "green", "yellow"]), 1),
             "image": wi.image, "pseudo_label": "A"} for wi in world_images[:n]]


def test_grpo_config_on_cpu():
    hp = GRPOHyperParams(num_generations=4, prompts_per_step=3, beta=0.01, epsilon_high=0.28)
    cfg = hp.to_grpo_config("/tmp/x", "cpu")
    assert cfg.per_device_train_batch_size == 12 and cfg.num_generations == 4  # completions, not prompts
    assert cfg.use_cpu and not cfg.bf16 and not cfg.gradient_checkpointing
    assert cfg.beta == 0.01 and cfg.epsilon_high == 0.28 and cfg.max_steps == hp.steps


def _length(completions, **_):
    from recipes.core.rewards import completion_text

    return [float(len(completion_text(c))) for c in completions]


def test_grpo_trains_saves_and_resumes(tiny_model_copy, world_images, tmp_path):
    hp = GRPOHyperParams(num_generations=2, prompts_per_step=2, steps=2, learning_rate=1e-4, max_completion_length=6, save_steps=1)
    out = tmp_path / "solver"
    first = train_grpo(tiny_model_copy, out, _rows(world_images), [solver_accuracy, choice_format, _length], hp, reward_weights=[0.9, 0.1, 0.01])
    assert first.steps == 2 and first.resumed_from is None
    assert len(first.series("reward")) == 2 and "rewards/solver_accuracy/mean" in first.log_history[0]
    card = json.loads((out / "zeroforge_train.json").read_text())
    assert card["hyperparams"]["steps"] == 2 and card["reward_weights"] == [0.9, 0.1, 0.01] and card["parent"] == str(tiny_model_copy)
    assert last_trainer_checkpoint(out / "trainer").name == "checkpoint-2"
    load_vlm(out)  # a full HF checkpoint

    # A rerun with a larger budget continues from the last trainer checkpoint instead of starting over.
    hp.steps = 3
    from transformers import TrainerCallback

    class Capture(TrainerCallback):  # the weights the resumed run actually starts from
        def on_train_begin(self, args, state, control, model=None, **kw):
            self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}

    capture = Capture()
    second = train_grpo(tiny_model_copy, out, _rows(world_images), [solver_accuracy, choice_format, _length], hp,
                        reward_weights=[0.9, 0.1, 0.01], callbacks=[capture])
    saved, _ = load_vlm(out / "trainer" / "checkpoint-2")
    parent, _ = load_vlm(tiny_model_copy)
    saved_sd, parent_sd = saved.state_dict(), parent.state_dict()
    assert all(torch.equal(v, saved_sd[k]) for k, v in capture.start.items())  # resumed from step 2's weights ...
    assert any(not torch.equal(v, parent_sd[k]) for k, v in capture.start.items())  # ... not the parent's
    assert second.resumed_from.endswith("checkpoint-2") and second.steps == 3
    assert [h["step"] for h in second.log_history if "reward" in h] == [1, 2, 3]  # history carried over, not redone


def test_lora_training_saves_a_merged_full_checkpoint(tiny_model_copy, world_images, tmp_path):
    hp = GRPOHyperParams(num_generations=2, prompts_per_step=2, steps=1, learning_rate=1e-3, max_completion_length=6,
                         use_lora=True, lora_r=4, lora_alpha=8, save_steps=10)
    out = tmp_path / "lora"
    res = train_grpo(tiny_model_copy, out, _rows(world_images), [solver_accuracy], hp)
    assert res.steps == 1
    assert not (out / "adapter_config.json").exists()  # merged: the next role loads it like any model
    model, _ = load_vlm(out)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_empty_dataset_is_a_clear_error(tiny_model_copy, tmp_path):
    with pytest.raises(ValueError, match="empty dataset"):
        train_grpo(tiny_model_copy, tmp_path / "x", [], [solver_accuracy], GRPOHyperParams())
