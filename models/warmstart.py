"""Supervised warm start: from random init to a "partly right" base model.

The papers start every role from an instruction-tuned VLM that already
answers visual questions partly right and already writes the task makers'
formats. The embedded model starts from random weights, so it gets the same
starting point here: a short supervised fine-tune on labeled bootstrap
examples (the only place ground-truth labels ever train anything), with the
loss on the answer tokens and `<|im_end|>` only. It is stopped early on
purpose: the base should be right sometimes, not always, or self-evolution
has nowhere to go.

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


@dataclass
class SupervisedExample:
    """One bootstrap example: what the user shows and asks, and the exact reply to learn."""

    prompt: str
    target: str
    images: list[Image.Image] = field(default_factory=list)
    task_type: str = "unknown"


@dataclass
class WarmStartConfig:
    steps: int = 400  # optimizer steps; the run stops earlier if max_minutes is reached
    batch_size: int = 32
    learning_rate: float = 2e-3  # from-scratch tiny models need a large lr; 1e-6 (the RL default) does nothing
    warmup_steps: int = 20
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_minutes: float = 5.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


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
    images = [img.convert("RGB") for ex in batch for img in ex.images]
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


def per_example_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy averaged over each example's reply tokens, then over examples.

    The default token-mean lets long replies (a Questioner's 100-token
    question) drown short ones (a Solver's letter); here every example
    weighs the same.
    """
    labels = batch["labels"]
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1]
    target = labels[:, 1:]
    tok_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=-100, reduction="none"
    ).view(target.shape)
    mask = (target != -100).float()
    per_example = (tok_loss * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_example[mask.sum(1) > 0].mean()


def supervised_finetune(
    model,
    processor,
    examples: Sequence[SupervisedExample],
    cfg: WarmStartConfig,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train in place; return {"loss": [...], "steps": int, "seconds": float, "stopped": reason}."""
    if not examples:
        raise ValueError("supervised_finetune needs at least one example")
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = next(model.parameters()).device
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress_ = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    order: list[int] = []
    losses: list[float] = []
    t0 = time.monotonic()
    stopped = "steps"
    bar = tqdm(range(cfg.steps), desc="warm start", disable=not progress, unit="step")
    for step in bar:
        if len(order) < cfg.batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        batch = {k: v.to(device) for k, v in collate(processor, [examples[i] for i in idx]).items()}
        loss = per_example_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_step:
            on_step(step, losses[-1])
        if (time.monotonic() - t0) / 60 > cfg.max_minutes:
            stopped = "max_minutes"
            break
    model.eval()
    return {"loss": losses, "steps": len(losses), "seconds": time.monotonic() - t0, "stopped": stopped}
