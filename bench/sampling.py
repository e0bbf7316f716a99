"""Majority-vote sampling: m answers for N questions, one prefill per question vs `generate`'s n prefills.

The loop labels every synthesized question by sampling the Solver m = 10 times
(temperature 1.0). The published code does this one request at a time through
an HTTP service. `models.generation.HFGenerateEngine` (the reference) calls
`model.generate(num_return_sequences=m)`, which expands the inputs before the
prefill, so each question's prompt and image go through the model m times.
`models.generation.TransformersEngine` (the default) prefills each question
once, repeats its KV cache m times and decodes all rows together. This
measures, in one run on the same model, questions and sampling settings:

  reference per-sample     HFGenerateEngine, one call per (question, sample)    N*m calls (timed on a slice)
  reference per-question   HFGenerateEngine, one call per question, n = m       N calls
  reference batched        HFGenerateEngine, B questions x m samples per call   N/B calls
  shared per-question      TransformersEngine, one call per question, n = m     N calls
  shared batched           TransformersEngine, B questions x m samples per call N/B calls

The modes run interleaved at a fine grain (each repeat walks the questions in
chunks of --batch-size and runs every mode on each chunk, in rotating order)
so that a change in machine load hits all of them alike; throughput is total
samples over total time, and each ratio is also given per repeat. Headline:
shared batched vs reference per-question (target >= 3x).

    .venv/bin/python bench/sampling.py [--model DIR] [--n 64] [--m 10] [--batch-size 32] [--warm-steps 60] [--threads 1]

Without --model it builds the embedded `small` model (the demo base's
architecture) and warm-starts it for --warm-steps supervised steps, so that
its replies have the demo base's shape ("blue \\boxed{B}", about 7 tokens and
an end-of-turn) rather than a random model's max_new_tokens of noise; the
mean reply length is printed, since the speed-up depends on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench._common import machine, model_dir  # noqa: E402


def warm_started(path: Path, steps: int, seed: int = 0):
    """(model, processor) from `path`, briefly supervised on the bootstrap Solver examples."""
    import torch

    from models.loading import load_vlm
    from models.warmstart import WarmStartConfig, supervised_finetune
    from recipes.core.bootstrap import bootstrap_datasets

    model, proc = load_vlm(path, device="cuda" if torch.cuda.is_available() else "cpu")
    if steps > 0:
        train, _ = bootstrap_datasets(120, 0, seed, recipes=())
        supervised_finetune(model, proc, train, WarmStartConfig(steps=steps, batch_size=16, warmup_steps=5), progress=False)
    return model, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a model directory (default: build the embedded --size model)")
    ap.add_argument("--size", default="small")
    ap.add_argument("--warm-steps", type=int, default=60, help="supervised steps on a built model (0: random init)")
    ap.add_argument("--n", type=int, default=64, help="questions")
    ap.add_argument("--m", type=int, default=10, help="samples per question")
    ap.add_argument("--batch-size", type=int, default=32, help="questions per call in the batched modes")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-per-sample", action="store_true")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice); on a CPU "
                    "shared with other jobs, 1 avoids OpenMP threads waiting on each other")
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from models.generation import GenerationRequest, HFGenerateEngine, SamplingParams, TransformersEngine
    from recipes.core.bootstrap import labeled_examples

    path = model_dir(args.model, args.size)
    model, proc = warm_started(path, 0 if args.model else args.warm_steps)
    examples = labeled_examples("validation", args.n)[: args.n]
    reqs = [GenerationRequest(e.prompt, list(e.images)) for e in examples]
    many = SamplingParams(n=args.m, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=0)
    single = SamplingParams(n=1, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=0)

    ref_one, ref_batched = HFGenerateEngine(model, proc, batch_size=1), HFGenerateEngine(model, proc, batch_size=args.batch_size)
    new_one, new_batched = TransformersEngine(model, proc, batch_size=1), TransformersEngine(model, proc, batch_size=args.batch_size)
    # Each mode as fn(chunk of requests) -> (outputs, samples drawn). per-sample is slow: it runs on the first
    # quarter of each chunk (favours it: no tail effects).
    modes = {
        "reference_per_question": lambda rs: (ref_one.generate(rs, many), len(rs) * args.m),
        "shared_per_question": lambda rs: (new_one.generate(rs, many), len(rs) * args.m),
        "reference_batched": lambda rs: (ref_batched.generate(rs, many), len(rs) * args.m),
        "shared_batched": lambda rs: (new_batched.generate(rs, many), len(rs) * args.m),
    }
    if not args.skip_per_sample:
        def per_sample(rs):
            part = rs[: max(1, len(rs) // 4)]
            return [ref_one.generate([r], single) for r in part for _ in range(args.m)], len(part) * args.m
        modes["reference_per_sample"] = per_sample

    # warm-up: first calls pay allocator and kernel set-up
    ref_batched.generate(reqs[:2], many)
    new_batched.generate(reqs[:2], many)
    # Interleaved at a fine grain so that a change in machine load hits every mode alike: each repeat walks the
    # questions in chunks of batch_size, and runs every mode on the chunk (in an order that rotates by chunk).
    load_before = os.getloadavg()
    chunks = [reqs[i : i + args.batch_size] for i in range(0, len(reqs), args.batch_size)]
    names = list(modes)
    seconds = {name: [0.0] * args.repeats for name in names}
    samples = {name: [0] * args.repeats for name in names}
    shared_outputs = []
    for rep in range(args.repeats):
        for c, chunk in enumerate(chunks):
            for name in names[c % len(names):] + names[: c % len(names)]:
                t0 = time.perf_counter()
                outs, count = modes[name](chunk)
                seconds[name][rep] += time.perf_counter() - t0
                samples[name][rep] += count
                if name == "shared_batched" and rep == 0:
                    shared_outputs += outs
    load_after = os.getloadavg()

    tok = proc.tokenizer
    replies = [s for out in shared_outputs for s in out]
    reply_tokens = sum(len(tok(s, add_special_tokens=False)["input_ids"]) + 1 for s in replies) / len(replies)
    results = {}
    for name in names:
        per_rep = [samples[name][r] / seconds[name][r] for r in range(args.repeats)]
        results[name] = {"samples_per_s": sum(samples[name]) / sum(seconds[name]), "per_repeat_samples_per_s": per_rep}

    def speedup(a: str, b: str) -> dict:
        ratios = sorted(seconds[b][r] / samples[b][r] * samples[a][r] / seconds[a][r] for r in range(args.repeats))
        return {"overall": results[a]["samples_per_s"] / results[b]["samples_per_s"], "per_repeat": ratios}

    ratio = speedup("shared_batched", "reference_per_question")
    out = {
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before, "load_average_after": load_after,
        "model": str(path), "warm_steps": 0 if args.model else args.warm_steps,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "questions": len(reqs), "m": args.m, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature, "repeats": args.repeats, "mean_reply_tokens": reply_tokens,
        **results,
        "speedup_shared_batched_vs_reference_per_question": ratio,
        "speedup_shared_batched_vs_reference_batched": speedup("shared_batched", "reference_batched"),
        "speedup_shared_per_question_vs_reference_per_question": speedup("shared_per_question", "reference_per_question"),
    }
    print(f"machine: {out['machine']} ({out['torch_threads']} torch threads); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    origin = "given" if args.model else f"embedded {args.size}, {args.warm_steps} warm-start steps"
    print(f"model: {out['model_parameters']:,} parameters ({origin}); "
          f"N={len(reqs)} questions, m={args.m}, batch {args.batch_size} questions, temperature {args.temperature}, "
          f"max {args.max_new_tokens} new tokens, mean reply {reply_tokens:.1f} tokens; {args.repeats} repeats, modes interleaved per chunk")
    for name in names:
        r = results[name]
        print(f"  {name:24s} {r['samples_per_s']:8.1f} samples/s (per repeat: {', '.join(f'{x:.1f}' for x in r['per_repeat_samples_per_s'])})")
    rng = lambda d: f"{d['overall']:.2f}x (per repeat {d['per_repeat'][0]:.2f}-{d['per_repeat'][-1]:.2f}x)"  # noqa: E731
    print(f"  shared batched vs reference per-question: {rng(ratio)} (target >= 3x)")
    print(f"  shared batched vs reference batched: {rng(out['speedup_shared_batched_vs_reference_batched'])}")
    print(f"  shared vs reference, one question per call: {rng(out['speedup_shared_per_question_vs_reference_per_question'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
