"""Majority-vote sampling: m answers for N questions, batched vs one question at a time.

The loop labels every synthesized question by sampling the Solver m = 10 times
(temperature 1.0). The published code does this one request at a time through
an HTTP service; zeroforge batches questions and draws the m samples of each
with `num_return_sequences`. This measures, in one run on the same model and
questions:

  per-sample       one generate call per (question, sample)           N*m calls
  per-question     one call per question, n = m                       N calls
  batched          B questions x m samples per call                   N/B calls

    .venv/bin/python bench/sampling.py [--model DIR] [--n 64] [--m 10] [--batch-size 32]

Prints samples/s for each and the speed-ups (target: batched >= 5x per-question).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench._common import machine, model_dir, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--size", default="small")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()

    from models.generation import GenerationRequest, SamplingParams, TransformersEngine
    from models.loading import load_vlm
    from recipes.bootstrap import held_out_examples

    path = model_dir(args.model, args.size)
    model, proc = load_vlm(path, device="cuda" if __import__("torch").cuda.is_available() else "cpu")
    examples = held_out_examples(args.n)[: args.n]
    reqs = [GenerationRequest(e.prompt, list(e.images)) for e in examples]
    total = len(reqs) * args.m

    one = TransformersEngine(model, proc, batch_size=1)
    batched = TransformersEngine(model, proc, batch_size=args.batch_size)
    many = SamplingParams(n=args.m, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    single = SamplingParams(n=1, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)

    batched.generate(reqs[:2], many)  # warm-up: first calls pay allocator and kernel set-up
    results = {}
    # per-sample is slow; time it on a slice and scale, which favours it (no tail effects)
    k = max(4, len(reqs) // 8)
    best, med, _ = timed(lambda: [one.generate([r], single) for r in reqs[:k] for _ in range(args.m)], args.repeats)
    results["per_sample"] = {"samples_per_s": k * args.m / best, "median_samples_per_s": k * args.m / med}
    best, med, _ = timed(lambda: one.generate(reqs, many), args.repeats)
    results["per_question"] = {"samples_per_s": total / best, "median_samples_per_s": total / med}
    best, med, _ = timed(lambda: batched.generate(reqs, many), args.repeats)
    results["batched"] = {"samples_per_s": total / best, "median_samples_per_s": total / med}

    out = {
        "machine": machine(),
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "questions": len(reqs), "m": args.m, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        **results,
        "speedup_batched_vs_per_question": results["batched"]["samples_per_s"] / results["per_question"]["samples_per_s"],
        "speedup_batched_vs_per_sample": results["batched"]["samples_per_s"] / results["per_sample"]["samples_per_s"],
    }
    print(f"machine: {out['machine']}; model {out['model_parameters']:,} parameters; N={len(reqs)} questions, m={args.m}")
    for name in ("per_sample", "per_question", "batched"):
        print(f"  {name:13s} {results[name]['samples_per_s']:8.1f} samples/s (median {results[name]['median_samples_per_s']:.1f})")
    print(f"  batched vs per-question: {out['speedup_batched_vs_per_question']:.1f}x; vs per-sample: {out['speedup_batched_vs_per_sample']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
