
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


def test_warm_start_stops_on_wall_time(tiny_model_copy, world_images):
    model, proc = load_vlm(tiny_model_copy, device="cpu")
    ex = [SupervisedExample("q", "\\boxed{A}", [world_images[0].image])]
    history = supervised_finetune(model, proc, ex, WarmStartConfig(steps=10_000, batch_size=1, max_minutes=0.0), progress=False)
    assert history["stopped"] == "max_minutes" and history["steps"] == 1
