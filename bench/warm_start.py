"""The warm start's cost per step: one padded batch against micro-batches of similar length, side by side.

The demo's warm start mixes Solver examples (~60 tokens) with task-maker formats (~120-210 tokens);
padded as one batch, nearly every step runs 32 x ~200 tokens. `WarmStartConfig.length_buckets`
runs the batch as up to k micro-batches of similar length instead (the same step: gradients are
summed with the batch-mean weights). This script trains the same model from the same init on the
same examples with `length_buckets` 1 and k, alternating, and prints CPU seconds and wall seconds
per step, their ratio and the largest loss difference between the two (float rounding only).

    .venv/bin/python bench/warm_start.py [--images 300] [--steps 20] [--repeats 2] [--buckets 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300, help="train images (the demo uses 1,500; the mix is the same)")
    ap.add_argument("--size", default="small", help="models.tiny_vlm.TINY_SPECS key (the demo's: small)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    ap.add_argument("--batch-size", type=int, default=32, help="examples per step (the demo's: 32)")
    ap.add_argument("--buckets", type=int, default=3, help="length_buckets of the bucketed arm")
    ap.add_argument("--repeats", type=int, default=2, help="runs per arm, alternating")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    import torch

    from models.loading import load_vlm
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from models.warmstart import WarmStartConfig, supervised_finetune
    from recipes import recipe_names
    from recipes.core.bootstrap import bootstrap_datasets, tokenizer_corpus

    train, _ = bootstrap_datasets(args.images, 0, 0, recipe_names())  # every recipe's formats, as the demo's base
    init = Path(tempfile.mkdtemp(prefix="zf-warm-"))
    build_tiny_vlm(init, tokenizer_corpus(train), TINY_SPECS[args.size])

    def run(buckets: int) -> dict:
        work = Path(tempfile.mkdtemp(prefix="zf-warm-run-"))
        shutil.copytree(init, work / "m")
        model, proc = load_vlm(work / "m", device="cpu", dtype=torch.float32)
        cfg = WarmStartConfig(steps=args.steps, batch_size=args.batch_size, length_buckets=buckets)
        hist = supervised_finetune(model, proc, train, cfg, progress=False)
        shutil.rmtree(work, ignore_errors=True)
        return {"buckets": buckets, "cpu_s_per_step": hist["cpu_seconds_per_step"],
                "wall_s_per_step": hist["seconds"] / hist["steps"], "loss": hist["loss"]}

    runs = []
    for _ in range(args.repeats):
        runs += [run(1), run(args.buckets)]
    arm = {b: [r for r in runs if r["buckets"] == b] for b in (1, args.buckets)}
    med = {b: {k: statistics.median(r[k] for r in rs) for k in ("cpu_s_per_step", "wall_s_per_step")} for b, rs in arm.items()}
    loss_diff = max(abs(a - b) for x in arm[1] for y in arm[args.buckets] for a, b in zip(x["loss"], y["loss"]))
    out = {"machine": _common.machine(), "examples": len(train), "steps": args.steps, "batch_size": args.batch_size,
           "runs": [{k: v for k, v in r.items() if k != "loss"} for r in runs], "median": med,
           "cpu_ratio": med[1]["cpu_s_per_step"] / med[args.buckets]["cpu_s_per_step"],
           "wall_ratio": med[1]["wall_s_per_step"] / med[args.buckets]["wall_s_per_step"], "max_loss_diff": loss_diff}
    print(f"machine: {out['machine']}; {len(train)} examples, {args.steps} steps x {args.batch_size}")
    for r in runs:
        print(f"  length_buckets={r['buckets']}: {r['cpu_s_per_step']:.2f} CPU-s/step, {r['wall_s_per_step']:.2f} s/step")
    print(f"  one padded batch / {args.buckets} buckets: CPU {out['cpu_ratio']:.2f}x, wall {out['wall_ratio']:.2f}x; "
          f"largest loss difference {loss_diff:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
