"""Self-training against true labels, same questions and budget: which label-free label carries, if any?

GRPO at the loop's budget moves the embedded Solver by less than resampling the questions does, with
labels or without (docs/efficacy.md). This asks the question underneath with a dense signal instead:
fine-tune the base with the warm start's supervised loss (`models.warmstart.supervised_finetune`) on
questions about new unlabeled images, every arm on the same questions for the same steps, and only the
labels differ:

  true       the world's answers (the control: what the budget can do at all);
  majority   the majority of m sampled answers (the loop's pseudo-label; ties and no-answer dropped);
  greedy     the base's own greedy answer (self-distillation: the do-nothing control of a label-free arm);
  contrast   the option whose log-probability rises most with the image against a blank one,
             argmax (1 + alpha) log p(o | image) - alpha log p(o | blank) (visual contrastive decoding):
             a label that discounts what the question alone suggests.

Every arm is scored greedy on the same validation questions, 4-option and the same asked openly, with
paired bootstrap intervals against the base; the gain ratio is (arm gain) / (true-label gain). Choose
on `--split validation`; report on `--split test`.

    .venv/bin/python bench/self_training.py --base DIR --split validation --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bench import _common  # noqa: E402
from bench.efficacy import (  # noqa: E402
    acc,
    answers,
    by_type,
    fmt,
    fmt_diff,
    load_mix,
    loadavg,
    majority,
    open_flags,
    open_form,
    paired,
    template_questions,
)
from models.formats import LETTERS, solver_target  # noqa: E402
from retrieval.world.splits import split_images  # noqa: E402

ARMS = ("true", "majority", "greedy", "contrast")


def option_logprobs(model, processor, qs, images=None, batch_size: int = 64) -> list[list[float]]:
    """log p(`\\boxed{option}<|im_end|>` | image, question) for the four options of each question."""
    import torch

    from models.generation import build_messages

    tok = processor.tokenizer
    old, tok.padding_side = tok.padding_side, "left"
    items = [(q.prompt, im if im is not None else q.image, f"\\boxed{{{o}}}")
             for q, im in zip(qs, images if images is not None else [None] * len(qs)) for o in q.options]
    out: list[float] = []
    with torch.inference_mode():
        for s in range(0, len(items), batch_size):
            batch = items[s:s + batch_size]
            prompts = [processor.apply_chat_template(build_messages(p, 1), add_generation_prompt=True, tokenize=False)
                       for p, _, _ in batch]
            fulls = [pr + t + "<|im_end|>" for pr, (_, _, t) in zip(prompts, batch)]
            n_target = [len(tok(f).input_ids) - len(tok(pr).input_ids) for f, pr in zip(fulls, prompts)]
            inputs = processor(text=fulls, images=[im.convert("RGB") for _, im, _ in batch], return_tensors="pt", padding=True)
            logp = torch.log_softmax(model(**inputs).logits[:, :-1].float(), -1)
            token_lp = logp.gather(-1, inputs["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
            out += [float(token_lp[i, -n:].sum()) for i, n in enumerate(n_target)]  # left padding: targets end each row
    tok.padding_side = old
    return [out[4 * i:4 * i + 4] for i in range(len(qs))]


def contrast_labels(real: list[list[float]], blank: list[list[float]], alpha: float) -> list[str]:
    return [LETTERS[max(range(4), key=lambda k: (1 + alpha) * r[k] - alpha * b[k])] for r, b in zip(real, blank)]


def finetune(base: Path, out: Path, qs, labels, args) -> dict:
    """The warm start's loss on (question, label) pairs from the base, for exactly args.steps steps; saved to `out`."""
    from models.loading import load_vlm
    from models.warmstart import SupervisedExample, WarmStartConfig, supervised_finetune

    examples = [SupervisedExample(q.prompt, solver_target(lab, q.options[LETTERS.index(lab)]), [q.image], q.task_type)
                for q, lab in zip(qs, labels) if lab in LETTERS]
    model, processor = load_vlm(base, device="cpu")
    cfg = WarmStartConfig(steps=args.steps, batch_size=args.batch, learning_rate=args.lr, warmup_steps=min(10, args.steps),
                          min_lr_ratio=0.1, seed=args.seed)
    hist = supervised_finetune(model, processor, examples, cfg, progress=False)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return {"examples": len(examples), "cpu_s": round(hist["cpu_seconds"], 1), "final_loss": round(hist["loss"][-1], 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="base model directory")
    ap.add_argument("--split", default="validation", choices=["validation", "test"], help="split of the scored questions")
    ap.add_argument("--mix", default="all", help="a retrieval.world.tasks.MIXES name or a TaskMix as JSON (4-option questions)")
    ap.add_argument("--images", type=int, default=600, help="unlabeled images the arms train on")
    ap.add_argument("--offset", type=int, default=1, help="split seed of the unlabeled images")
    ap.add_argument("--eval-images", type=int, default=400, help="images of --split whose questions are scored")
    ap.add_argument("--m", type=int, default=10, help="sampled answers per question for the majority")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the vote")
    ap.add_argument("--alpha", type=float, default=0.5, help="weight of the blank image in the contrast label")
    ap.add_argument("--steps", type=int, default=200, help="supervised steps of every arm")
    ap.add_argument("--batch", type=int, default=32, help="examples per step")
    ap.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (warm-up, then cosine to a tenth)")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {ARMS}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", default="", help="keep the arms' checkpoints here (default: a temporary folder)")
    ap.add_argument("--json")
    args = ap.parse_args()

    import tempfile

    import torch

    from bench.efficacy import engine_for, greedy_flags
    from evaluation.multiple_choice import blank_like
    from models.loading import load_vlm

    torch.set_num_threads(args.threads)
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; choose from {ARMS}")
    mix = load_mix(args.mix)
    t0 = time.process_time()
    train_qs = [q for q in template_questions(split_images("unlabeled", args.images, seed=args.offset), args.seed + 1, mix)
                if q.answer is not None]
    eval_qs = template_questions(split_images(args.split, args.eval_images, seed=0), args.seed + 5, mix)
    eval_open = open_form(eval_qs)

    engine = engine_for(args.base)
    base_ok, _ = greedy_flags(engine, eval_qs)
    base_open = open_flags(engine, eval_open)
    votes = answers(engine, train_qs, args.m, args.temperature, args.seed + 11)
    greedy = [a[0] for a in answers(engine, train_qs, 1, 0.0, 0)]
    del engine
    maj = [majority(v)[0] for v in votes]
    keep = [i for i, lab in enumerate(maj) if lab is not None]  # every arm trains on the questions with a majority
    qs = [train_qs[i] for i in keep]
    labels = {"true": [q.answer for q in qs], "majority": [maj[i] for i in keep], "greedy": [greedy[i] for i in keep]}
    if "contrast" in arms:
        model, processor = load_vlm(args.base, device="cpu")
        real = option_logprobs(model, processor, qs)
        blank = option_logprobs(model, processor, qs, [blank_like(q.image) for q in qs])
        labels["contrast"] = contrast_labels(real, blank, args.alpha)
        del model
    label_cpu = round(time.process_time() - t0, 1)
    print(f"{len(train_qs)} unlabeled questions, {len(qs)} with a majority; {args.split}: {len(eval_qs)} 4-option, "
          f"{len(eval_open)} open; base {fmt(acc(base_ok))}, open {fmt(acc(base_open))}; labels in {label_cpu} cpu-s", flush=True)
    report = {"machine": _common.machine(), "args": vars(args), "train_questions": len(qs),
              "base": {"greedy": acc(base_ok), "open": acc(base_open), "by_type": by_type(eval_qs, base_ok)}, "arms": {}}
    for arm in arms:
        right = [lab == q.answer for q, lab in zip(qs, labels[arm])]
        print(f"  {arm:9s} labels right {fmt(acc(right))}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for arm in arms:
            out = work / arm
            info = finetune(Path(args.base), out, qs, labels[arm], args)
            eng = engine_for(out)
            ok, _ = greedy_flags(eng, eval_qs)
            open_ok = open_flags(eng, eval_open)
            del eng
            rec = {**info, "labels_right": acc([lab == q.answer for q, lab in zip(qs, labels[arm])]),
                   "greedy": acc(ok), "gain": paired(base_ok, ok), "open": acc(open_ok), "open_gain": paired(base_open, open_ok),
                   "by_type": by_type(eval_qs, ok)}
            report["arms"][arm] = rec
            print(f"  {arm:9s} greedy {fmt(rec['greedy'])} gain {fmt_diff(rec['gain'])}; open {fmt(rec['open'])} "
                  f"gain {fmt_diff(rec['open_gain'])}; {info['examples']} examples, {info['cpu_s']} cpu-s, "
                  f"load {loadavg()}", flush=True)
    true_gain = report["arms"].get("true", {}).get("gain", [0])[0]
    for arm in arms:
        if arm != "true" and "true" in report["arms"]:
            ratio = round(report["arms"][arm]["gain"][0] / true_gain, 3) if true_gain > 0 else None
            report["arms"][arm]["gain_ratio"] = ratio
            print(f"gain ratio {arm} / true: {ratio}")
    report["cpu_s"] = round(time.process_time() - t0, 1)
    report["load"] = loadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
