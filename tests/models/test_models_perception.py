"""The dense perception loss: targets aligned with the vision tower's tokens, a loss that learns, and off means off."""

import shutil

import numpy as np
import torch

from models.loading import load_vlm
from models.perception import N_CLASSES, PixelHead, capture_visual_tokens, colour_classes, pixel_targets
from models.warmstart import SupervisedExample, WarmStartConfig, collate, supervised_finetune


def test_the_world_colours_fall_in_distinct_classes():
    from retrieval.world.palette import BACKGROUND, COLORS, INK

    classes = colour_classes(np.array([BACKGROUND, INK, *COLORS.values()], dtype=np.uint8))
    assert len(set(classes.tolist())) == len(classes) and classes.max() < N_CLASSES


def test_targets_follow_the_merged_token_order_of_the_processor(tiny_model_dir, world_images):
    """Rebuild each merged token's cell from the processor's own pixel_values: the targets must match it."""
    _, proc = load_vlm(tiny_model_dir, device="cpu")
    ip = proc.image_processor
    ims = [w.image for w in world_images[:3]]
    enc = proc(text=["<|vision_start|><|image_pad|><|vision_end|>"] * 3, images=ims, return_tensors="pt")
    targets = pixel_targets(ims, enc["image_grid_thw"], ip.patch_size, ip.merge_size, 8)
    p, m = ip.patch_size, ip.merge_size
    x = enc["pixel_values"].view(-1, m * m, 3, 2, p, p)[:, :, :, 0]
    mean, std = torch.tensor(ip.image_mean).view(1, 1, 3, 1, 1), torch.tensor(ip.image_std).view(1, 1, 3, 1, 1)
    x = ((x * std + mean) * 255).round().clamp(0, 255)
    x = x.view(-1, m, m, 3, p, p).permute(0, 1, 4, 2, 5, 3).reshape(-1, m * p, m * p, 3).numpy().astype(np.uint8)
    rebuilt = colour_classes(x)[:, 1::2, 1::2].reshape(x.shape[0], -1)
    assert targets.shape == (int(enc["image_grid_thw"].prod(-1).sum()) // (m * m), 64)
    assert (torch.from_numpy(rebuilt) == targets).float().mean() > 0.99
    assert len(set(targets.flatten().tolist())) > 2  # not all background


def test_the_hook_sees_the_tokens_the_text_model_reads(tiny_model_dir, world_images):
    model, proc = load_vlm(tiny_model_dir, device="cpu")
    ex = [SupervisedExample("q", "\\boxed{A}", [w.image]) for w in world_images[:2]]
    batch = collate(proc, ex)
    with capture_visual_tokens(model) as seen:
        model.model(**{k: v for k, v in batch.items() if k != "labels"})
    n = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert seen.tokens is not None and seen.tokens.shape == (n, model.config.text_config.hidden_size)
    assert not model.model.visual._forward_hooks  # removed on exit


def test_the_pixel_loss_falls_and_off_leaves_the_warm_start_unchanged(tiny_model_dir, tmp_path, world_images):
    ex = [SupervisedExample(f"q{i}", "\\boxed{A}", [w.image]) for i, w in enumerate(world_images[:6])]
    states, hist = [], None
    for run, weight in enumerate((0.0, 0.0, 1.0)):
        shutil.copytree(tiny_model_dir, tmp_path / f"m{run}")
        model, proc = load_vlm(tmp_path / f"m{run}", device="cpu")
        cfg = WarmStartConfig(steps=30, batch_size=3, warmup_steps=2, learning_rate=5e-3, pixel_loss_weight=weight)
        hist = supervised_finetune(model, proc, ex, cfg, progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])  # the loss reaches the tower
    assert states[2].keys() == states[0].keys()  # the head is not saved with the model
    px = hist["pixel_loss"]
    assert len(px) == 30 and np.mean(px[-5:]) < 0.5 * np.mean(px[:5])


def test_a_cell_size_that_does_not_divide_the_merged_cell_is_refused(world_images):
    import pytest

    with pytest.raises(ValueError, match="must divide"):
        pixel_targets([world_images[0].image], torch.tensor([[1, 8, 8]]), 8, 2, 5)
    head = PixelHead(16, 4)
    with pytest.raises(ValueError, match="visual tokens"):
        head.loss(torch.zeros(3, 16), torch.zeros(2, 16, dtype=torch.long))
