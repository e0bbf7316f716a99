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


def test_dynamic_sampling_refills_groups_without_reward_variance(tiny_model_copy, world_images, tmp_path):
    """Prompts whose reward is constant carry no gradient; dynamic sampling replaces their groups from further prompts."""
    from models.formats import solver_prompt

    rows = [{"prompt": build_messages(solver_prompt("What color is the circle?", ["red", "blue", "green", "yellow"]), 1),
             "image": wi.image, "varies": i % 2} for i, wi in enumerate(world_images[:12])]

    def reward(completions, varies, **_):  # varies within a group only for odd rows
        from recipes.core.rewards import completion_text

        return [float(len(completion_text(c)) % 2) if v else 0.5 for c, v in zip(completions, varies)]

    hp = GRPOHyperParams(num_generations=3, prompts_per_step=4, steps=3, learning_rate=1e-4, max_completion_length=6,
                         save_steps=100, dynamic_sampling=True, max_refill_rounds=4, seed=1)
    res = train_grpo(tiny_model_copy, tmp_path / "ds", rows, [reward], hp)
    sampled = res.series("dynamic_sampling/useful_share_sampled")
    trained = res.series("dynamic_sampling/useful_share_trained")
    refilled = res.series("dynamic_sampling/refilled_share")
    assert len(trained) == 3 and all(t >= s for s, t in zip(sampled, trained))
    assert sum(refilled) > 0 and max(trained) > max(sampled) - 1e-9
    assert all(abs(t - s - r) < 1e-6 for s, t, r in zip(sampled, trained, refilled))  # trained = kept + refilled


def test_merge_generation_outputs_pads_and_masks():
    from models.grpo import merge_generation_outputs

    def out(lp, lc, adv):
        n = len(adv)
        return {"prompt_ids": torch.arange(n * lp).view(n, lp) + 1, "prompt_mask": torch.ones(n, lp, dtype=torch.long),
                "completion_ids": torch.arange(n * lc).view(n, lc) + 1, "completion_mask": torch.ones(n, lc, dtype=torch.long),
                "advantages": torch.tensor(adv, dtype=torch.float)}

    a, b = out(3, 2, [0.0, 0.0, 1.0, -1.0]), out(5, 4, [0.5, -0.5, 0.0, 0.0])
    m = merge_generation_outputs([(a, [1], False), (b, [0], False), (a, [0], True)], g=2, pad_token_id=0)
    assert m["prompt_ids"].shape == (6, 5) and m["completion_ids"].shape == (6, 4)
    assert m["prompt_ids"][0].tolist() == [0, 0, 7, 8, 9]  # left-padded prompt of a's sample 2
    assert m["completion_ids"][0].tolist() == [5, 6, 0, 0]  # right-padded completion
    assert m["advantages"].tolist() == [1.0, -1.0, 0.5, -0.5, 0.0, 0.0]
    assert m["completion_mask"][4:].sum() == 0 and m["completion_mask"][:2].sum() == 4  # the masked part adds no tokens
