"""Screen a warm-start configuration on the validation split: does the base see, and how well?

Builds the embedded model (optionally with another patch or merge size), warm-starts it on the
world's labeled tasks as `recipes.core.bootstrap.build_base_model` does, and every `--eval-every`
steps scores the 4-option questions of `--val-images` validation images twice: with the image and
with a blank one (the same questions, paired). Accuracy above the blank-image figure is what the
model sees; the rest is answer priors. Choices are made here, never on the test split.

    .venv/bin/python bench/warm_start_screen.py --steps 1200 --patch 4 --merge 4 --json p4m4.json
    .venv/bin/python bench/warm_start_screen.py --steps 800 --curriculum-images 400 --curriculum-steps 250

One torch thread by default (`--threads`): on a shared 2-core machine two threads spin-wait.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402,F401  (offline settings, torchvision fallback)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000, help="warm-start steps (the demo's: 1000)")
    ap.add_argument("--train-images", type=int, default=1500, help="train images (the demo's: 1500)")
    ap.add_argument("--mix", default="", help="a retrieval.world.tasks.MIXES name, or a TaskMix as JSON "
                    "('{\"types\": {...}, \"kinds\": {...}}'); default: every 4-option type")
    ap.add_argument("--recipes", default="vzero", help="comma-separated recipes whose formats are taught (the demo's: vzero)")
    ap.add_argument("--curriculum-images", type=int, default=0, help="perception-curriculum images (0: none)")
    ap.add_argument("--curriculum-steps", type=int, default=0, help="first steps drawn from the curriculum alone")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--vision-lr-mult", type=float, default=1.0, help="learning-rate multiplier of the vision tower")
    ap.add_argument("--pixel-weight", type=float, default=1.0, help="weight of the dense perception loss (0: off; the demo's: 1)")
    ap.add_argument("--pixel-cell", type=int, default=8, help="points per side each visual token redraws")
    ap.add_argument("--size", default="small", help="models.tiny_vlm.TINY_SPECS key")
    ap.add_argument("--patch", type=int, default=0, help="vision patch size (0: the spec's)")
    ap.add_argument("--merge", type=int, default=0, help="spatial merge size (0: the spec's)")
    ap.add_argument("--kinds", default="", help="comma-separated answer kinds scored beside the 4-option questions "
                    "(yesno, open: the `all` mix's questions of those kinds on the same validation images)")
    ap.add_argument("--val-images", type=int, default=150, help="validation images whose 4-option questions are scored")
    ap.add_argument("--eval-every", type=int, default=400, help="score every this many steps (and at the end)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", help="write every evaluation here as it comes")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from PIL import Image

    from evaluation.multiple_choice import held_out_report
    from models.generation import TransformersEngine
    from models.loading import load_vlm
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from models.warmstart import WarmStartConfig, supervised_finetune
    from recipes.core.bootstrap import bootstrap_datasets, curriculum_examples, labeled_examples, tokenizer_corpus
    from retrieval.world.palette import BACKGROUND
    from retrieval.world.tasks import MIXES

    mix = json.loads(args.mix) if args.mix.startswith("{") else (args.mix or None)
    train, _ = bootstrap_datasets(args.train_images, 0, 0, args.recipes.split(","), task_mix=mix)
    cur = curriculum_examples(args.curriculum_images, 0) if args.curriculum_images else []
    val = labeled_examples("validation", args.val_images)
    for kind in filter(None, args.kinds.split(",")):
        val += labeled_examples("validation", args.val_images, mix=MIXES["all"].only(kind))
    blank = Image.new("RGB", (64, 64), BACKGROUND)
    val_blank = [dataclasses.replace(e, images=[blank]) for e in val]
    spec = TINY_SPECS[args.size]
    spec = dataclasses.replace(spec, patch_size=args.patch or spec.patch_size, merge_size=args.merge or spec.merge_size)
    out = Path(tempfile.mkdtemp(prefix="zf-screen-"))
    build_tiny_vlm(out, tokenizer_corpus(train + cur), spec)  # as build_base_model: never the scored questions
    model, proc = load_vlm(out, device="cpu", dtype=torch.float32)
    result = {"args": vars(args), "spec": dataclasses.asdict(spec), "train_examples": len(train) + len(cur),
              "val_questions": len(val), "evals": []}

    eval_cpu = [0.0]  # CPU seconds spent scoring inside the warm start, taken out of its per-step cost

    def evaluate(step: int) -> None:
        c0 = time.process_time()
        model.eval()
        engine = TransformersEngine(model, proc, batch_size=64)
        real, blind = held_out_report(engine, val), held_out_report(engine, val_blank)
        row = {"step": step, "mc": real["accuracy"]["all"], "mc_blank": blind["accuracy"]["all"],
               "by_type": {k: v["accuracy"] for k, v in real["accuracy"].items()},
               "by_type_blank": {k: v["accuracy"] for k, v in blind["accuracy"].items()},
               "by_kind": real["by_kind"], "by_kind_blank": blind["by_kind"]}
        result["evals"].append(row)
        model.train()
        mc, bl = row["mc"], row["mc_blank"]
        print(f"step {step}: {mc['accuracy']:.3f} [{mc['ci95'][0]:.3f}, {mc['ci95'][1]:.3f}] with the image, "
              f"{bl['accuracy']:.3f} blank (n = {mc['n']})"
              + "".join(f"; {k} {v['accuracy']:.3f} (n = {v['n']}, blank {row['by_kind_blank'][k]['accuracy']:.3f})"
                        for k, v in row["by_kind"].items() if k != "mc"), flush=True)
        eval_cpu[0] += time.process_time() - c0
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))

    cfg = WarmStartConfig(steps=args.steps, learning_rate=args.lr, curriculum_steps=args.curriculum_steps,
                          vision_lr_mult=args.vision_lr_mult, pixel_loss_weight=args.pixel_weight,
                          pixel_cell=args.pixel_cell)
    t0 = time.monotonic()

    def on_step(step: int, _loss: float) -> None:
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            evaluate(step + 1)

    hist = supervised_finetune(model, proc, train + cur, cfg, progress=True, on_step=on_step, curriculum=cur)
    inside = eval_cpu[0]  # the last evaluation runs after the warm start's clock stops
    evaluate(args.steps)
    result.update(seconds=time.monotonic() - t0,
                  cpu_seconds_per_step=(hist["cpu_seconds"] - inside) / hist["steps"])
    if "pixel_loss" in hist:
        result["pixel_loss"] = hist["pixel_loss"][:: max(1, len(hist["pixel_loss"]) // 100)]
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
