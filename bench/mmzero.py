"""MM-Zero's first tasks from a warm-started base: Proposer format rate, Coder render rate, render throughput.

The warm start should leave the base able to write the MM-Zero formats some
of the time, not always (the task makers then have something to learn). On a
base model directory this samples N Proposer texts (no image), parses them,
asks the Coder for one program per caption (the well-formed Proposer captions
and, so every run measures the Coder on N programs, held-out world captions),
renders every program in the sandbox and prints the rates, the render statuses
and the sandboxed renders/s of the model-written programs.

    .venv/bin/python bench/mmzero.py --model ~/.zeroforge/models/base-<fingerprint> [--n 32] [--temperature 0.7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench._common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a warm-started base model directory")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.7, help="the embedded profile's task temperature")
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch

    from models.generation import GenerationRequest, SamplingParams, TransformersEngine
    from models.loading import load_vlm
    from recipes.core.questioner import MalformedOutput
    from recipes.mmzero.config import MMZeroConfig
    from recipes.mmzero.formats import PROPOSER_PROMPT, coder_prompt, parse_proposer
    from recipes.mmzero.render import render_program
    from retrieval.world.splits import split_images

    model, proc = load_vlm(args.model, device="cpu", dtype=torch.float32)
    engine = TransformersEngine(model, proc, batch_size=32)
    params = SamplingParams(n=1, temperature=args.temperature, max_new_tokens=160, seed=0)
    texts = [t for (t,) in engine.generate([GenerationRequest(PROPOSER_PROMPT)] * args.n, params)]
    captions, reasons = [], Counter()
    for t in texts:
        try:
            captions.append(parse_proposer(t).caption)
        except MalformedOutput as err:
            reasons[str(err).split(",")[0][:50]] += 1
    proposer_ok = len(captions)
    held_out = [wi.caption for wi in split_images("validation", args.n)]
    captions = (captions + held_out)[: args.n]
    replies = engine.generate([GenerationRequest(coder_prompt(c)) for c in captions],
                              SamplingParams(n=1, temperature=args.temperature, max_new_tokens=256, seed=0))
    opts = MMZeroConfig()
    t0 = time.perf_counter()
    statuses = Counter(render_program(r, opts)[2].status for (r,) in replies)
    seconds = time.perf_counter() - t0
    res = {
        "machine": machine(), "model": args.model, "n": args.n, "temperature": args.temperature,
        "proposer_format_rate": proposer_ok / args.n, "proposer_malformed": dict(reasons),
        "coder_render_rate": statuses["ok"] / len(captions), "render_statuses": dict(statuses),
        "renders_per_s": len(captions) / seconds,
    }
    print(f"machine: {res['machine']}")
    print(f"Proposer format rate {res['proposer_format_rate']:.2f} ({proposer_ok}/{args.n}); malformed: {dict(reasons)}")
    print(f"Coder render rate {res['coder_render_rate']:.2f} of {len(captions)} programs; statuses {dict(statuses)}")
    print(f"sandboxed renders of model programs: {res['renders_per_s']:.1f}/s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
