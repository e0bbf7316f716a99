
import pytest
import torch
from PIL import Image

from models.generation import GenerationRequest, SamplingParams, TransformersEngine
from models.loading import load_vlm
from models.warmstart import SupervisedExample, WarmStartConfig, collate, supervised_finetune


def test_labels_cover_only_the_reply_and_im_end(tiny_model_dir, world_images):
    _, proc = load_vlm(tiny_model_dir, device="cpu")
    ex = [
        SupervisedExample("What color is the circle?", "\\boxed{B}", [world_images[0].image]),
        SupervisedExample("How many shapes are there?\nA. 1\nB. 2\nC. 3\nD. 4", "\\boxed{C}", [world_images[1].image]),
    ]
    batch = collate(proc, ex)
    for i, e in enumerate(ex):
        labelled = batch["labels"][i][batch["labels"][i] != -100].tolist()
        assert proc.tokenizer.decode(labelled) == e.target + "<|im_end|>"
    # right padding for training: padded positions are masked out of the loss
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_warm_start_learns_a_visual_task(tiny_model_copy):
    """Four solid colours -> their names: loss falls and greedy answers become right."""
    model, proc = load_vlm(tiny_model_copy, device="cpu")
    colours = ["red", "green", "blue", "yellow"]
    examples = [SupervisedExample("What color is the square?", f"\\boxed{{{c}}}", [Image.new("RGB", (64, 64), c)]) for c in colours]
    cfg = WarmStartConfig(steps=40, batch_size=8, learning_rate=3e-3, warmup_steps=5)
    history = supervised_finetune(model, proc, examples * 4, cfg, progress=False)
    assert history["steps"] == 40
    assert sum(history["loss"][-5:]) / 5 < 0.25 * sum(history["loss"][:5]) / 5
    out = TransformersEngine(model, proc).generate(
        [GenerationRequest("What color is the square?", [Image.new("RGB", (64, 64), c)]) for c in colours],
        SamplingParams(max_new_tokens=8),
    )
    assert sum(o[0] == f"\\boxed{{{c}}}" for o, c in zip(out, colours)) >= 3


def test_warm_start_is_capped_by_steps_and_deterministic(tiny_model_dir, tmp_path, world_images):
    """Same configuration and seed, same weights bit for bit; the budget is steps, whatever the clock says."""
    import shutil

    ex = [SupervisedExample(f"q{i}", f"\\boxed{{{c}}}", [w.image]) for i, (w, c) in enumerate(zip(world_images[:6], "ABCDAB"))]
    states = []
    for run in range(2):
        shutil.copytree(tiny_model_dir, tmp_path / f"m{run}")
        model, proc = load_vlm(tmp_path / f"m{run}", device="cpu")
        hist = supervised_finetune(model, proc, ex, WarmStartConfig(steps=4, batch_size=3, warmup_steps=1), progress=False)
        assert hist["steps"] == 4 and hist["stopped"] == "steps" and hist["cpu_seconds_per_step"] > 0
        states.append(model.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    with pytest.raises(TypeError):
        WarmStartConfig(steps=2, max_minutes=0.0)  # there is no wall-time cap to set


def test_learning_rate_schedule_warms_up_and_decays_to_the_floor():
    cfg = WarmStartConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert cfg.lr_factor(0) == 0.1 and cfg.lr_factor(9) == 1.0
    assert cfg.lr_factor(10) == 1.0 and abs(cfg.lr_factor(100) - 0.1) < 1e-9
    assert all(cfg.lr_factor(s) >= cfg.lr_factor(s + 1) for s in range(10, 100))


def test_loss_only_on_labelled_positions_matches_the_full_logits_loss(tiny_model_dir, world_images):
    from models.warmstart import per_example_loss

    model, proc = load_vlm(tiny_model_dir, device="cpu")
    ex = [SupervisedExample("What color is the circle?", "\\boxed{red}", [world_images[0].image]),
          SupervisedExample("How many shapes are there?\nA. 1\nB. 2\nC. 3\nD. 4", "\\boxed{3}", [world_images[1].image])]
    batch = collate(proc, ex)
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1]
    target = batch["labels"][:, 1:]
    per_tok = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    mask = (target != -100).float()
    expected = ((per_tok * mask).sum(1) / mask.sum(1)).mean()
    assert torch.allclose(per_example_loss(model, batch), expected, atol=1e-5)


def test_curriculum_steps_draw_only_from_the_curriculum(tiny_model_copy, world_images, monkeypatch):
    import models.warmstart as ws

    seen = []
    real = ws.collate
    monkeypatch.setattr(ws, "collate", lambda proc, batch: (seen.append([e.target for e in batch]), real(proc, batch))[1])
    model, proc = load_vlm(tiny_model_copy, device="cpu")
    easy = [SupervisedExample("q", "\\\\boxed{easy}", [world_images[0].image])]
    rest = [SupervisedExample("q", "\\\\boxed{hard}", [world_images[1].image])]
    cfg = WarmStartConfig(steps=5, batch_size=2, warmup_steps=1, curriculum_steps=3)
    supervised_finetune(model, proc, rest, cfg, progress=False, curriculum=easy)
    assert seen == [["\\\\boxed{easy}"] * 2] * 3 + [["\\\\boxed{hard}"] * 2] * 2
    with pytest.raises(ValueError, match="no curriculum"):
        supervised_finetune(model, proc, rest, cfg, progress=False)


def test_length_buckets_cover_every_example_once_and_cut_padding():
    from models.warmstart import length_buckets

    lengths = [60, 210, 61, 62, 120, 60, 59, 211]
    groups = length_buckets(lengths, 3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    padded = sum(len(g) * max(lengths[i] for i in g) for g in groups)
    assert len(groups) == 3 and padded == 5 * 62 + 120 + 2 * 211 < len(lengths) * 211
    assert length_buckets(lengths, 1) == [sorted(range(len(lengths)), key=lambda i: (lengths[i], i))]
    assert len(length_buckets([64] * 5, 3)) == 1  # equal lengths: one batch, no needless split


def test_micro_batches_by_length_give_the_same_steps_as_one_padded_batch(tiny_model_dir, tmp_path, world_images):
    """Bucketing is a speed-up only: the loss curve and the weights match the single padded batch."""
    import shutil

    long_q = "Describe the image in detail, then list every object with its colour and its shape. " * 3
    ex = [SupervisedExample("What color is it?" if i % 3 else long_q, f"\\boxed{{{c}}}", [w.image])
          for i, (w, c) in enumerate(zip(world_images[:6], ["red", "blue", "green", "red", "yellow", "blue"]))]
    runs = {}
    for buckets in (1, 3):
        shutil.copytree(tiny_model_dir, tmp_path / f"b{buckets}")
        model, proc = load_vlm(tmp_path / f"b{buckets}", device="cpu")
        cfg = WarmStartConfig(steps=3, batch_size=6, warmup_steps=1, length_buckets=buckets)
        runs[buckets] = (supervised_finetune(model, proc, ex, cfg, progress=False)["loss"], model.state_dict())
    (loss1, w1), (loss3, w3) = runs[1], runs[3]
    assert all(abs(a - b) < 1e-4 for a, b in zip(loss1, loss3))
    assert all(torch.allclose(w1[k], w3[k], atol=1e-5) for k in w1)
