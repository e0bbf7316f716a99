"""GPU check: bf16 GRPO steps and shared-prefill sampling on a ~100M-parameter Qwen2.5-VL built from scratch.

One prepared script for one NVIDIA GPU (sized for an H200, about 8 minutes
in all). It builds a larger from-scratch Qwen2.5-VL with the embedded-model
machinery (`models.tiny_vlm`: a locally trained tokenizer, random init), then
measures three things and prints one summary (also written as JSON):

  1. GRPO: steps of TRL's GRPOTrainer through `models.grpo.train_grpo`, in
     bf16, on generated colour questions about generated images (exact-match
     reward). Per-step time, tokens/s, peak CUDA memory.
  2. Training compute alone: forward + backward + AdamW steps of the same
     model on a fixed batch of the same shape (what GRPO's loss costs without
     TRL's generation and bookkeeping).
  3. Sampling: m samples per question through `TransformersEngine` (one
     prefill per question, shared KV cache) and through the reference
     `HFGenerateEngine` (`generate(num_return_sequences=m)`), side by side.

Model FLOP utilisation is an estimate against the card's dense bf16 peak
(H200: ~989 TFLOP/s, --peak-tflops): 6 * N * tokens for training (forward and
backward), 2 * N * tokens for inference, N = all parameters, tokens = the
positions the language model processed (prompt, image and reply tokens,
padding included; the vision tower's patches are not counted separately).
The GRPO figure divides by the whole step time, TRL's own generation and the
reference-model forward (beta > 0) included, so it is a lower bound; phase 2
is the training compute's own utilisation.

On the device (torch 2.11 + CUDA, transformers 5.17, no trl/datasets), from
the repository root here, first fetch the wheels it lacks (once):

    bash bench/gpu_wheels.sh                      # -> .whl/ (pure-Python wheels + a few binary fallbacks)

then run, with the device tool, `bash bench/gpu_check.sh` carrying `.whl`
(command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 600). It
installs the carried wheels the device needs into /tmp/site and runs this
script; results are printed and written to $OUT/gpu_check.json.

Here, on CPU, the whole path end to end with the tiny spec (under a minute):

    bash bench/gpu_check.sh --dry-run             # = python bench/gpu_check.py --device cpu --tiny

Imports only what it needs: torch, transformers, trl, datasets (through
models.grpo) and the zeroforge `models` package; no dagster, lancedb,
webdataset or open_clip.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Python puts bench/ first on sys.path, where bench/retrieval.py would shadow the `retrieval` package:
# drop it and import from the repository root.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402

import models  # noqa: E402,F401  (torchvision fallback on the CPU install; a no-op where torchvision loads)

# transformers releases differ in what the processors are called: the PIL-backed Qwen2-VL image processor is
# `Qwen2VLImageProcessorPil` in 5.17 and 5.23; where a release lacks it, the torchvision-backed one (which
# works wherever torchvision's extension loads, as on the GPU image) takes the same arguments.
if not hasattr(transformers, "Qwen2VLImageProcessorPil"):
    transformers.Qwen2VLImageProcessorPil = transformers.Qwen2VLImageProcessor

from models.tiny_vlm import TINY_SPECS, TinyVLMSpec, build_tiny_vlm  # noqa: E402

# ~110M parameters: text 768 x 12 layers (GQA 12/4 heads, MLP 2048), vision 512 x 8 blocks; 128 px images in
# 8 px patches merged 2x2 give 64 visual tokens each. The vocabulary is what the tokenizer learns from the
# generated questions (a few hundred to a few thousand tokens), far below Qwen's 152k: the output layer is small.
GPU_SPEC = TinyVLMSpec(
    name="gpu-100m", vocab_size=4096, text_hidden=768, text_layers=12, text_heads=12, text_kv_heads=4,
    text_intermediate=2048, vision_hidden=512, vision_depth=8, vision_heads=8, vision_intermediate=1376,
    patch_size=8, merge_size=2, image_side=128, max_positions=4096,
)

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 210, 40),
          "purple": (140, 60, 170), "orange": (240, 140, 30), "black": (20, 20, 20), "white": (245, 245, 245)}
SHAPES = ("circle", "square", "triangle")
QUESTION = "What color is the {shape}? Answer with one word."


def make_items(n: int, side: int, seed: int):
    """n (image, shape, colour) items: one shape of one colour on a grey background (self-contained, PIL only)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    items = []
    for _ in range(n):
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        img = Image.new("RGB", (side, side), (128, 128, 128))
        d = ImageDraw.Draw(img)
        r = rng.randint(side // 6, side // 3)
        cx, cy = rng.randint(r, side - r), rng.randint(r, side - r)
        box = (cx - r, cy - r, cx + r, cy + r)
        if shape == "circle":
            d.ellipse(box, fill=COLORS[color])
        elif shape == "square":
            d.rectangle(box, fill=COLORS[color])
        else:
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLORS[color])
        items.append((img, shape, color))
    return items


def corpus() -> list[str]:
    lines = [QUESTION.format(shape=s) for s in SHAPES] + list(COLORS) + list(SHAPES)
    return lines + [f"The {s} is {c}." for s in SHAPES for c in COLORS]


def completion_text(completion) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        return "".join(b.get("text", "") for b in content if isinstance(b, dict)) if isinstance(content, list) else str(content)
    return ""


def color_reward(completions, answer, **_):
    return [1.0 if completion_text(c).strip().lower().rstrip(".") == a else 0.0 for c, a in zip(completions, answer)]


class Clock:
    """Wall time with CUDA synchronised, so GPU work is inside the interval."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def peak_memory(device: str) -> dict:
    if not device.startswith("cuda"):
        return {}
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def mfu(flops: float, seconds: float, peak_tflops: float) -> float:
    return flops / max(seconds, 1e-9) / (peak_tflops * 1e12)


class TokenCounter:
    """Positions the language model processes (batch x sequence per forward), through a forward pre-hook."""

    def __init__(self, model):
        self.tokens = 0
        self.forwards = 0
        lm = model.model.language_model if hasattr(model.model, "language_model") else model.model
        self.handle = lm.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = kwargs.get("inputs_embeds")
        if x is None:
            x = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(x.shape[0] * x.shape[1])
        self.forwards += 1

    def remove(self):
        self.handle.remove()


# -- phase 1: GRPO through TRL -----------------------------------------------------------------------------------
def run_grpo(base: Path, work: Path, args, n_params: int, clock: Clock) -> dict:
    from transformers import TrainerCallback

    from models.grpo import GRPOHyperParams, train_grpo

    class StepClock(TrainerCallback):
        def __init__(self):
            self.t: list[float] = []
            self.counter: TokenCounter | None = None

        def on_train_begin(self, targs, state, control, model=None, **kw):
            self.counter = TokenCounter(model)  # counts TRL's generation and the loss forwards alike
            self.t.append(clock.now())

        def on_step_end(self, targs, state, control, **kw):
            self.t.append(clock.now())
            # a throughput check on a lent device, not a training run: its wall-time bound keeps it in the budget
            if (self.t[-1] - self.t[0]) / 60 > args.grpo_max_minutes:
                control.should_training_stop = True

        def on_train_end(self, targs, state, control, **kw):
            if self.counter:
                self.counter.remove()

    items = make_items(args.grpo_prompts, args.image_side, seed=1)
    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION.format(shape=s)}]}],
             "image": img, "answer": c} for img, s, c in items]
    hp = GRPOHyperParams(
        steps=args.grpo_steps, num_generations=args.num_generations, prompts_per_step=args.prompts_per_step,
        learning_rate=1e-5, max_completion_length=args.max_completion_length, save_steps=10**6, seed=0,
    )
    reset_peak(args.device)
    clock_cb = StepClock()
    t0 = clock.now()
    result = train_grpo(base, work / "grpo", rows, [color_reward], hp, device=args.device, callbacks=[clock_cb])
    total = clock.now() - t0
    steps = len(clock_cb.t) - 1
    step_times = [b - a for a, b in zip(clock_cb.t, clock_cb.t[1:])]
    steady = step_times[1:] or step_times  # the first step pays CUDA/cuBLAS warm-up
    counted = clock_cb.counter.tokens if clock_cb.counter else 0
    train_tokens = [h.get("num_tokens") for h in result.log_history if "num_tokens" in h]
    loss_tokens = float(train_tokens[-1]) if train_tokens else float("nan")  # TRL: prompt + completion tokens seen
    seconds = sum(step_times)
    out = {
        "steps": steps, "completions_per_step": args.prompts_per_step * args.num_generations,
        "max_completion_length": args.max_completion_length, "precision": "bf16" if args.device.startswith("cuda") else "fp32",
        "train_seconds": seconds, "wall_seconds_with_setup_and_save": total,
        "first_step_s": step_times[0] if step_times else None,
        "median_step_s": sorted(steady)[len(steady) // 2] if steady else None,
        "trl_num_tokens": loss_tokens, "lm_positions_processed": counted,
        "trl_tokens_per_s": loss_tokens / seconds if seconds else None,
        "mean_completion_length": _mean([h.get("completions/mean_length") for h in result.log_history]),
        **peak_memory(args.device),
    }
    # 6 N per trained token (TRL's num_tokens: each completion's prompt + completion), over the whole step time
    out["mfu_train_estimate"] = mfu(6 * n_params * loss_tokens, seconds, args.peak_tflops) if train_tokens else None
    return out


def _mean(xs):
    xs = [float(x) for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


# -- phase 2: training compute alone -----------------------------------------------------------------------------
def run_fwd_bwd(base: Path, args, n_params: int, clock: Clock) -> dict:
    from models.generation import build_messages
    from models.loading import default_dtype, load_vlm

    model, proc = load_vlm(base, device=args.device, dtype=default_dtype(args.device))
    model.train()
    items = make_items(args.prompts_per_step * args.num_generations, args.image_side, seed=2)
    texts = [proc.apply_chat_template(build_messages(QUESTION.format(shape=s), 1) +
                                      [{"role": "assistant", "content": [{"type": "text", "text": (c + " ") * (args.max_completion_length // 2)}]}],
                                      tokenize=False) for _, s, c in items]
    batch = proc(text=texts, images=[img for img, _, _ in items], return_tensors="pt", padding=True).to(args.device)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    reset_peak(args.device)
    times = []
    for _ in range(args.fwd_bwd_steps + 1):
        t0 = clock.now()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(clock.now() - t0)
    steady = times[1:]
    tokens = int(batch["input_ids"].numel())
    per_step = sorted(steady)[len(steady) // 2]
    out = {"batch": list(batch["input_ids"].shape), "tokens_per_step": tokens, "median_step_s": per_step,
           "tokens_per_s": tokens / per_step, "mfu_estimate": mfu(6 * n_params * tokens, per_step, args.peak_tflops),
           **peak_memory(args.device)}
    del model, opt, batch
    return out


# -- phase 3: sampling -------------------------------------------------------------------------------------------
def run_sampling(model_dir: Path, args, n_params: int, clock: Clock) -> dict:
    from models.generation import GenerationRequest, HFGenerateEngine, SamplingParams, TransformersEngine
    from models.loading import load_vlm

    model, proc = load_vlm(model_dir, device=args.device)
    items = make_items(args.questions, args.image_side, seed=3)
    reqs = [GenerationRequest(QUESTION.format(shape=s), [img]) for img, s, _ in items]
    params = SamplingParams(n=args.m, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    engines = {"shared": TransformersEngine(model, proc, batch_size=args.sample_batch),
               "reference": HFGenerateEngine(model, proc, batch_size=args.sample_batch)}
    for e in engines.values():  # warm-up
        e.generate(reqs[:2], params)
    out = {"questions": len(reqs), "m": args.m, "batch_questions": args.sample_batch, "max_new_tokens": args.max_new_tokens,
           "dtype": str(next(model.parameters()).dtype)}
    for name, engine in engines.items():
        reset_peak(args.device)
        counter = TokenCounter(model)
        t0 = clock.now()
        outs = engine.generate(reqs, params)
        seconds = clock.now() - t0
        counter.remove()
        samples = sum(len(o) for o in outs)
        out[name] = {"seconds": seconds, "samples_per_s": samples / seconds, "lm_positions_processed": counter.tokens,
                     "lm_positions_per_s": counter.tokens / seconds, "forwards": counter.forwards,
                     "mfu_estimate": mfu(2 * n_params * counter.tokens, seconds, args.peak_tflops), **peak_memory(args.device)}
    out["shared_vs_reference"] = out["shared"]["samples_per_s"] / out["reference"]["samples_per_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="the ~1M-parameter test spec and small workloads (CPU check)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the card (H200/H100 SXM: ~989)")
    ap.add_argument("--grpo-steps", type=int)
    ap.add_argument("--fwd-bwd-steps", type=int)
    ap.add_argument("--questions", type=int)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: grpo, fwd_bwd, sampling")
    ap.add_argument("--json", help="also write the summary here (default: $OUT/gpu_check.json when $OUT is set)")
    args = ap.parse_args()
    tiny = args.tiny
    spec = TINY_SPECS["tiny"] if tiny else GPU_SPEC
    defaults = dict(grpo_steps=3 if tiny else 20, fwd_bwd_steps=2 if tiny else 10, questions=8 if tiny else 512)
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.image_side = spec.image_side
    args.num_generations = 4 if tiny else 8
    args.prompts_per_step = 2 if tiny else 32
    args.grpo_prompts = 16 if tiny else 640
    args.max_completion_length = 8 if tiny else 32
    args.max_new_tokens = 8 if tiny else 32
    args.sample_batch = 4 if tiny else 128
    args.grpo_max_minutes = 1.0 if tiny else 3.0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    clock = Clock(args.device)
    t_start = time.perf_counter()

    summary = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)",
               "torch": torch.__version__, "transformers": transformers.__version__, "spec": spec.name,
               "peak_tflops_assumed": args.peak_tflops,
               "flops_rule": "training 6*N*tokens, inference 2*N*tokens; N = all parameters; tokens = LM positions"}
    try:
        import trl

        summary["trl"] = trl.__version__
    except ImportError:
        summary["trl"] = None
    work = Path(tempfile.mkdtemp(prefix="zf-gpu-check-"))
    base = work / "base"
    t0 = time.perf_counter()
    built = build_tiny_vlm(base, corpus(), spec)
    n_params = int(built["parameters"])
    summary.update(parameters=n_params, vocab_size=built["vocab_size"], build_seconds=time.perf_counter() - t0)
    print(f"gpu_check: {summary['device']}, torch {summary['torch']}, transformers {summary['transformers']}, trl {summary['trl']}; "
          f"model {spec.name}: {n_params / 1e6:.1f}M parameters, vocabulary {built['vocab_size']}", flush=True)

    sample_dir = base
    if "grpo" not in skip:
        summary["grpo"] = run_grpo(base, work, args, n_params, clock)
        sample_dir = work / "grpo"
        print("gpu_check: grpo", json.dumps(summary["grpo"]), flush=True)
    if "fwd_bwd" not in skip:
        summary["fwd_bwd"] = run_fwd_bwd(base, args, n_params, clock)
        print("gpu_check: fwd_bwd", json.dumps(summary["fwd_bwd"]), flush=True)
    if "sampling" not in skip:
        summary["sampling"] = run_sampling(sample_dir, args, n_params, clock)
        print("gpu_check: sampling", json.dumps(summary["sampling"]), flush=True)
    summary["total_seconds"] = time.perf_counter() - t_start
    print_summary(summary)
    target = args.json or (os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    if target:
        Path(target).write_text(json.dumps(summary, indent=2))
        print(f"gpu_check: wrote {target}")


def print_summary(s: dict) -> None:
    def f(x, spec=".1f"):
        return "-" if x is None else format(x, spec)

    print(f"\n== gpu_check summary: {s['device']} | {s['parameters'] / 1e6:.1f}M-parameter Qwen2.5-VL ({s['spec']}) | "
          f"torch {s['torch']}, transformers {s['transformers']}, trl {s['trl']} | {s['total_seconds']:.0f} s")
    print(f"   MFU against {s['peak_tflops_assumed']:.0f} TFLOP/s dense bf16; {s['flops_rule']}")
    if g := s.get("grpo"):
        print(f"   GRPO ({g['precision']}): {g['steps']} steps x {g['completions_per_step']} completions (<= {g['max_completion_length']} tokens): "
              f"median step {f(g['median_step_s'], '.3f')} s (first {f(g['first_step_s'], '.2f')} s), "
              f"{f(g['trl_tokens_per_s'], ',.0f')} trained tokens/s, MFU {f(g['mfu_train_estimate'] and 100 * g['mfu_train_estimate'], '.3g')}% "
              f"(whole step, generation included), peak {f(g.get('peak_allocated_gib'), '.2f')} GiB")
    if b := s.get("fwd_bwd"):
        print(f"   forward+backward+AdamW, batch {b['batch']}: {f(b['median_step_s'], '.3f')} s/step, {b['tokens_per_s']:,.0f} tokens/s, "
              f"MFU {100 * b['mfu_estimate']:.3g}%, peak {f(b.get('peak_allocated_gib'), '.2f')} GiB")
    if p := s.get("sampling"):
        for name in ("shared", "reference"):
            r = p[name]
            print(f"   sampling {name:9s} {p['questions']} questions x m={p['m']} ({p['dtype']}, batch {p['batch_questions']}): "
                  f"{r['samples_per_s']:,.0f} samples/s, {r['lm_positions_per_s']:,.0f} LM positions/s, MFU {100 * r['mfu_estimate']:.3g}%, "
                  f"peak {f(r.get('peak_allocated_gib'), '.2f')} GiB")
        print(f"   shared prefill vs generate(num_return_sequences): {p['shared_vs_reference']:.2f}x samples/s")


if __name__ == "__main__":
    main()
