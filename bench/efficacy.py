"""Does label-free (majority-vote) GRPO improve the Solver, and how does it compare to true labels?

One run, same base model, same questions, same GRPO budget:

  label-free   pseudo-label = majority of the base Solver's m samples; keep c in the band; GRPO
  true-label   the same kept questions and steps, rewarded against the world's true labels (control)

Questions are labeled procedural-world questions from a seed range disjoint
from the warm start and from the held-out set, so this isolates the Solver
side of the loop (a perfect Questioner); the full V-Zero loop's figures
(Questioner-generated tasks) come from `make demo` and are read from --home
when given. Every model is scored on the same procedural held-out questions:
greedy, single-sample and majority-of-m accuracy with 95% intervals, and the
greedy difference to the base with a paired bootstrap interval.

Diagnostics printed with the result, to find out *why* when label-free does
not help: pseudo-label accuracy on the training questions (overall and within
the band), the kept share, the share of GRPO groups with zero reward variance,
and each arm's reward curve.

    .venv/bin/python bench/efficacy.py --base .zeroforge/models/base [--steps 40] [--questions 256]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import the shared helpers as bench._common from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
from bench import _common  # noqa: E402


def paired_bootstrap(a: list[bool], b: list[bool], seed: int = 0) -> tuple[float, float, float]:
    """Mean of b - a over paired questions and its 95% bootstrap interval (questions resampled together)."""
    import numpy as np

    from evaluation.stats import bootstrap_interval

    diffs = np.array([int(y) - int(x) for x, y in zip(a, b)], dtype=float)
    lo, hi = bootstrap_interval(len(diffs), lambda idx: diffs[idx].mean(), n_resamples=2000, seed=seed)
    return float(diffs.mean()), lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="base model directory (e.g. .zeroforge/models/base after make demo)")
    ap.add_argument("--home", help="a zeroforge home with V-Zero iterations to report beside (optional)")
    ap.add_argument("--questions", type=int, default=256, help="training questions offered to both arms")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--band", type=float, nargs=2, default=[0.3, 0.8])
    ap.add_argument("--eval-images", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()

    from evaluation.multiple_choice import choice_accuracy
    from evaluation.self_consistency import consistency_report
    from evaluation.stats import Accuracy
    from models.formats import extract_choice
    from models.generation import GenerationRequest, TransformersEngine, build_messages
    from models.grpo import GRPOHyperParams, train_grpo
    from models.loading import load_vlm
    from recipes.bootstrap import held_out_examples, solver_examples
    from recipes.rewards import choice_format, solver_accuracy
    from recipes.voting import band_reason, majority_vote, sample_choices
    from retrieval.world import sample_world

    t_start = time.time()
    base = Path(args.base)
    # training questions: unseen by the warm start (seeds < 10^6 used there) and by the held-out set
    images = sample_world(max(1, args.questions // 3), seed=500_000 + args.seed)
    train_q = solver_examples(images, random.Random(args.seed))[: args.questions]
    held = held_out_examples(args.eval_images, seed=args.seed)

    model, proc = load_vlm(base, device="cpu")
    engine = TransformersEngine(model, proc, batch_size=64)
    reqs = [GenerationRequest(q.prompt, list(q.images)) for q in train_q]
    _, letters = sample_choices(engine, reqs, args.m, seed=args.seed)
    truth = [extract_choice(q.target) for q in train_q]
    kept, pl_all, pl_band = [], [], []
    for q, t, ans in zip(train_q, truth, letters):
        label, c = majority_vote(ans)
        pl_all.append(label == t)
        if label is not None and band_reason(c, *args.band) == "kept":
            kept.append((q, label, t, c))
            pl_band.append(label == t)
    print(f"{len(train_q)} training questions; kept {len(kept)} in band {args.band}; "
          f"pseudo-label accuracy {Accuracy(sum(pl_all), len(pl_all))} overall, {Accuracy(sum(pl_band), len(pl_band))} in band")
    if not kept:
        raise SystemExit("no question fell in the band: nothing to train on")

    hp = GRPOHyperParams(num_generations=5, steps=args.steps, prompts_per_step=8, learning_rate=args.lr,
                         max_completion_length=12, save_steps=10_000, seed=args.seed)

    def rows(use_truth: bool) -> list[dict]:
        return [{"prompt": build_messages(q.prompt, 1), "image": q.images[0], "pseudo_label": t if use_truth else label}
                for q, label, t, _ in kept]

    def score(model_dir: Path) -> tuple[dict, list[bool]]:
        m, p = load_vlm(model_dir, device="cpu")
        e = TransformersEngine(m, p, batch_size=64)
        rep = consistency_report(e, held, m=args.m, band=tuple(args.band), seed=args.seed)
        _, per = choice_accuracy(e, held)
        return rep, [r["correct"] for r in per]

    results = {}
    base_rep, base_ok = score(base)
    results["base"] = {"scores": base_rep}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, use_truth in (("label_free", False), ("true_label", True)):
            t0 = time.time()
            res = train_grpo(base, Path(tmp) / arm, rows(use_truth), [solver_accuracy, choice_format], hp, reward_weights=[0.9, 0.1])
            rep, ok = score(Path(tmp) / arm)
            diff = paired_bootstrap(base_ok, ok)
            zero = res.series("frac_reward_zero_std")
            results[arm] = {
                "scores": rep, "greedy_delta": diff, "train_seconds": res.seconds, "steps": res.steps,
                "reward_curve": res.series("reward"), "frac_reward_zero_std_mean": sum(zero) / max(1, len(zero)),
                "wall_s": time.time() - t0,
            }

    def fmt(s: dict) -> str:
        return f"{100 * s['accuracy']:.1f} [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"

    print(f"\nmachine: {_common.machine()}; base {base}; {args.steps} GRPO steps x {hp.prompts_per_step} prompts x {hp.num_generations}; "
          f"lr {args.lr}; held-out n={len(held)}; m={args.m}")
    print(f"{'model':11s} {'greedy %':>20s} {'sampled %':>20s} {'maj@m %':>20s} {'greedy delta vs base (pts, 95% CI)':>36s} {'zero-std groups':>16s}")
    for name, r in results.items():
        s = r["scores"]
        delta = r.get("greedy_delta")
        dtxt = f"{100 * delta[0]:+.1f} [{100 * delta[1]:+.1f}, {100 * delta[2]:+.1f}]" if delta else "-"
        zs = f"{r['frac_reward_zero_std_mean']:.2f}" if "frac_reward_zero_std_mean" in r else "-"
        print(f"{name:11s} {fmt(s['greedy']):>20s} {fmt(s['sampled']):>20s} {fmt(s['majority']):>20s} {dtxt:>36s} {zs:>16s}")
    for arm in ("label_free", "true_label"):
        curve = results[arm]["reward_curve"]
        k = max(1, len(curve) // 5)
        print(f"{arm} reward: first {k} steps {sum(curve[:k]) / k:.3f} -> last {k} steps {sum(curve[-k:]) / k:.3f}")
    summary = {
        "machine": _common.machine(), "args": vars(args), "questions": len(train_q), "kept": len(kept),
        "pseudo_label_accuracy": Accuracy(sum(pl_all), len(pl_all)).to_dict(),
        "pseudo_label_accuracy_in_band": Accuracy(sum(pl_band), len(pl_band)).to_dict(),
        "results": results, "seconds": time.time() - t_start,
    }
    if args.home:
        runs = Path(args.home) / "runs" / "vzero"
        summary["vzero_loop"] = {p.parent.name: json.loads(p.read_text())["procedural"] for p in sorted(runs.glob("iter-*/scores.json"))}
        if (runs / "base_scores.json").is_file():
            summary["vzero_loop"]["base"] = json.loads((runs / "base_scores.json").read_text())["procedural"]
        print("\nV-Zero loop (Questioner-generated tasks) from", runs)
        for k, s in summary["vzero_loop"].items():
            print(f"  {k:10s} greedy {fmt(s['greedy'])}  sampled {fmt(s['sampled'])}  maj@m {fmt(s['majority'])}")
    print(f"\ntotal {summary['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
