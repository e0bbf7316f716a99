"""Supervised warm start: from random init to a "partly right" base model.

The papers start every role from an instruction-tuned VLM that already
answers visual questions partly right and already writes the task makers'
formats. The embedded model starts from random weights, so it gets the same
starting point here: a short supervised fine-tune on labeled bootstrap
examples (the only place ground-truth labels ever train anything), with the
loss on the answer tokens and `<|im_end|>` only. It is stopped early on
purpose: the base should be right sometimes, not always, or self-evolution
has nowhere to go.

The budget is a number of optimizer steps, never wall time: the same
configuration and seed give the same weights on a loaded laptop and on an idle
server (a wall-clock cap once stopped the demo's warm start at 540 of 1,200
steps under load and left the base at chance). What a step costs is reported
instead (`cpu_seconds_per_step`, from `time.process_time`), so a budget can be
sized for an idle machine from a run on a busy one.

    history = supervised_finetune(model, processor, examples, WarmStartConfig(steps=300))
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from PIL import Image
from tqdm.auto import tqdm

from models.generation import build_messages
from models.perception import PixelHead, capture_visual_tokens, pixel_targets


@dataclass
class SupervisedExample:
    """One bootstrap example: what the user shows and asks, and the exact reply to learn."""

    prompt: str
    target: str
    images: list[Image.Image] = field(default_factory=list)
    task_type: str = "unknown"
    # For scoring (held-out sets): the right answer (a letter for multiple choice, else the answer
    # text), the options shown (None for yes/no and open questions) and the answer kind.
    answer: str | None = None
    options: list[str] | None = None
    answer_kind: str = "mc"


@dataclass
class WarmStartConfig:
    """The warm start's budget and optimiser. Capped by `steps` only; there is no wall-time limit."""

    steps: int = 400  # optimizer steps: the whole budget
    batch_size: int = 32
    learning_rate: float = 2e-3  # from-scratch tiny models need a large lr; 1e-6 (the RL default) does nothing
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1  # cosine decay from learning_rate to this share of it at the last step
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    # A curriculum: the first `curriculum_steps` steps draw their batches only from the `curriculum`
    # examples passed to `supervised_finetune` (easy perception: see retrieval/world/primer.py).
    curriculum_steps: int = 0
    # Learning-rate multiplier for the vision tower and its merger (a from-scratch vision tower learns
    # slower than the text side, which fits the answer priors first).
    vision_lr_mult: float = 1.0
    # Each step's batch is run as up to this many micro-batches of similar length (gradients summed,
    # weighted by size: the same step as one padded batch, to float rounding). A Solver example is ~60
    # tokens and a task maker's ~120-210, so one long example padded the whole batch; 1 turns it off.
    length_buckets: int = 3
    # Weight of the dense perception loss (models.perception): a linear head on every merged visual
    # token redraws its image cell's quantised colours, so the vision tower gets a signal from every
    # pixel, not only through the answer tokens. 0 turns it off (and leaves the weights bit-identical
    # to a warm start without it); the head is dropped when the warm start ends.
    pixel_loss_weight: float = 0.0
    # Resolution of that redrawing: each token predicts its cell at this many x this many points.
    pixel_cell: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then cosine decay to `min_lr_ratio` at the last step (a multiplier of learning_rate)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        lo = self.min_lr_ratio
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _full_and_target_ids(processor, ex: SupervisedExample) -> tuple[str, list[int]]:
    messages = build_messages(ex.prompt, len(ex.images)) + [
        {"role": "assistant", "content": [{"type": "text", "text": ex.target}]}
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    target_ids = processor.tokenizer(ex.target + "<|im_end|>", add_special_tokens=False)["input_ids"]
    return text, target_ids


def collate(processor, batch: Sequence[SupervisedExample]) -> dict[str, torch.Tensor]:
    """Right-padded inputs with labels on the reply and `<|im_end|>` only."""
    pairs = [_full_and_target_ids(processor, ex) for ex in batch]
    images = batch_images(batch)
    tok = processor.tokenizer
    old_side, tok.padding_side = tok.padding_side, "right"
    try:
        enc = processor(text=[t for t, _ in pairs], images=images or None, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = old_side
    labels = torch.full_like(enc["input_ids"], -100)
    lengths = enc["attention_mask"].sum(dim=1).tolist()
    for i, (_, target_ids) in enumerate(pairs):
        # The template ends every turn with "<|im_end|>\n"; the reply is the
        # len(target_ids) tokens before that final newline.
        end = int(lengths[i]) - 1
        start = end - len(target_ids)
        got = enc["input_ids"][i, start:end].tolist()
        if got != target_ids:
            raise ValueError(
                "reply tokens not found at the end of the templated conversation "
                f"(expected {target_ids[:8]}..., found {got[:8]}...): does the target start with whitespace?"
            )
        labels[i, start:end] = enc["input_ids"][i, start:end]
    enc["labels"] = labels
    return dict(enc)


def batch_images(batch: Sequence[SupervisedExample]) -> list[Image.Image]:
    """The batch's images in the order the processor (and so the vision tower) sees them."""
    return [img.convert("RGB") for ex in batch for img in ex.images]


def length_buckets(lengths: Sequence[int], max_groups: int) -> list[list[int]]:
    """Indices grouped into at most `max_groups` runs of similar length, minimising padded tokens.

    Sorted by length, split where the sum over groups of (size x longest) is smallest (exact, by
    dynamic programming over the split points; a batch is a few dozen examples).
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    srt = [lengths[i] for i in order]
    n, k = len(srt), max(1, min(max_groups, len(srt)))
    inf = float("inf")
    # cost[g][j]: the cheapest padding of the first j sorted examples in g groups; cut[g][j]: where the last group starts
    cost = [[inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    cost[0][0] = 0
    for g in range(1, k + 1):
        for j in range(1, n + 1):
            for i in range(g - 1, j):
                c = cost[g - 1][i] + (j - i) * srt[j - 1]
                if c < cost[g][j]:
                    cost[g][j], cut[g][j] = c, i
    g = min(range(1, k + 1), key=lambda gg: (cost[gg][n], gg))
    groups, j = [], n
    while g > 0:
        i = cut[g][j]
        groups.append(order[i:j])
        j, g = i, g - 1
    return groups[::-1]


def per_example_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy averaged over each example's reply tokens, then over examples.

    The default token-mean lets long replies (a Questioner's 100-token
    question) drown short ones (a Solver's answer); here every example
    weighs the same. The output layer runs only where a label is: a Solver
    reply is ~5 of ~80 tokens, and the full-sequence logits were a fifth of a
    step's compute for nothing (the loss is the same).
    """
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = model.model(**inputs).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    mask = target != -100
    logits = model.lm_head(hidden[mask]).float()
    tok_loss = torch.nn.functional.cross_entropy(logits, target[mask], reduction="none")
    rows = mask.nonzero()[:, 0]
    counts = mask.sum(1)
    per_example = torch.zeros(target.shape[0], dtype=tok_loss.dtype, device=tok_loss.device).index_add_(0, rows, tok_loss)
    keep = counts > 0
    return (per_example[keep] / counts[keep]).mean()


def supervised_finetune(
    model,
    processor,
    examples: Sequence[SupervisedExample],
    cfg: WarmStartConfig,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    curriculum: Sequence[SupervisedExample] = (),
) -> dict:
    """Train in place for exactly `cfg.steps` optimizer steps.

    Returns {"loss": [...], "steps", "seconds" (wall), "cpu_seconds" (this process, all threads),
    "cpu_seconds_per_step", "steps_per_second", "threads", "stopped": "steps"}. Deterministic:
    the batch order comes from `cfg.seed` and nothing reads the clock to decide anything.
    """
    if not examples:
        raise ValueError("supervised_finetune needs at least one example")
    if cfg.curriculum_steps and not curriculum:
        raise ValueError(f"curriculum_steps={cfg.curriculum_steps} but no curriculum examples were given")
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = next(model.parameters()).device
    model.train()
    vision = [p for n, p in model.named_parameters() if ".visual." in f".{n}"]
    others = [p for n, p in model.named_parameters() if ".visual." not in f".{n}"]
    groups = [{"params": others, "lr": cfg.learning_rate}]
    if vision:
        groups.append({"params": vision, "lr": cfg.learning_rate * cfg.vision_lr_mult})
    head = None
    if cfg.pixel_loss_weight > 0:
        # Built after the seed, so it is part of the deterministic run; trained at the vision tower's rate.
        head = PixelHead(model.config.text_config.hidden_size, cfg.pixel_cell).to(device)
        groups.append({"params": list(head.parameters()), "lr": cfg.learning_rate * cfg.vision_lr_mult})
    trained = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cfg.lr_factor)
    order: list[int] = []
    first: list[int] = []
    lengths: dict[int, int] = {}

    ip = processor.image_processor
    cell = ip.patch_size * ip.merge_size
    pixel_losses: list[float] = []

    def token_length(ex: SupervisedExample) -> int:  # tokens after the processor expands each image; memoised
        if id(ex) not in lengths:
            text = len(processor.tokenizer(_full_and_target_ids(processor, ex)[0])["input_ids"])
            lengths[id(ex)] = text + sum(max(1, (im.width // cell) * (im.height // cell)) for im in ex.images)
        return lengths[id(ex)]

    losses: list[float] = []
    t0, c0 = time.monotonic(), time.process_time()
    bar = tqdm(range(cfg.steps), desc="warm start", disable=not progress, unit="step")
    for step in bar:
        if step < cfg.curriculum_steps:
            while len(first) < cfg.batch_size:  # a set smaller than a batch is repeated to fill it
                first += rng.sample(range(len(curriculum)), len(curriculum))
            idx, first = first[: cfg.batch_size], first[cfg.batch_size :]
            chosen = [curriculum[i] for i in idx]
        else:
            while len(order) < cfg.batch_size:
                order += rng.sample(range(len(examples)), len(examples))
            idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
            chosen = [examples[i] for i in idx]
        opt.zero_grad(set_to_none=True)
        step_loss = step_pixel = 0.0
        for group in length_buckets([token_length(ex) for ex in chosen], cfg.length_buckets):
            part = [chosen[i] for i in group]
            batch = {k: v.to(device) for k, v in collate(processor, part).items()}
            share = len(group) / len(chosen)  # the mean over the whole batch, accumulated over its micro-batches
            with capture_visual_tokens(model) as seen:
                loss = per_example_loss(model, batch) * share
            step_loss += loss.item()
            if head is not None and seen.tokens is not None:
                targets = pixel_targets(batch_images(part), batch["image_grid_thw"], ip.patch_size, ip.merge_size,
                                        cfg.pixel_cell)
                pixel = head.loss(seen.tokens, targets) * share
                step_pixel += pixel.item()
                loss = loss + cfg.pixel_loss_weight * pixel
            loss.backward()
        torch.nn.utils.clip_grad_norm_(trained if head is not None else model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(step_loss)
        if head is not None:
            pixel_losses.append(step_pixel)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", pixel=f"{step_pixel:.3f}")
        else:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_step:
            on_step(step, losses[-1])
    model.eval()
    seconds, cpu = time.monotonic() - t0, time.process_time() - c0
    steps = len(losses)
    extra = {"pixel_loss": pixel_losses} if head is not None else {}
    return {"loss": losses, **extra, "steps": steps, "seconds": seconds, "cpu_seconds": cpu,
            "cpu_seconds_per_step": cpu / max(1, steps), "steps_per_second": steps / max(1e-9, seconds),
            "threads": torch.get_num_threads(), "stopped": "steps"}

