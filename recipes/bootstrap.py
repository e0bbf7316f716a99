"""The warm start's data: labeled Solver examples plus every recipe's task-maker formats.

This is the only place where the world's ground-truth labels train anything
(recipes.md: "no human label is used anywhere in training" applies to the
self-evolution loop; the warm start stands in for the papers' instruction
tuning). Held-out examples come from a disjoint seed range so the base
model's per-type accuracy is measured on images it never saw.

    train, held_out = bootstrap_datasets(n_train_images=600, n_eval_images=150, seed=0, recipes=["vzero"])
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from models.generation import GenerationRequest, SamplingParams
from models.warmstart import SupervisedExample, WarmStartConfig
from recipes.base import RECIPES, get_recipe
from models.formats import solver_prompt, solver_target


def solver_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """Every labeled task of every image as question + options -> `\\boxed{letter}`."""
    from retrieval.world.tasks import make_tasks

    return [
        SupervisedExample(solver_prompt(t.question, list(t.options)), solver_target(t.answer, t.answer_text), [wi.image], t.task_type)
        for wi in world_images
        for t in make_tasks(wi, rng)
    ]


# Seeds of bootstrap images and of the held-out procedural benchmark never
# overlap: training draws from [0, 10^6), evaluation from [10^9, ...).
TRAIN_SEED_BASE = 0
EVAL_SEED_BASE = 1_000_000_000


def bootstrap_datasets(
    n_train_images: int,
    n_eval_images: int,
    seed: int = 0,
    recipes: Sequence[str] | None = None,
    image_size: int = 64,
) -> tuple[list[SupervisedExample], list[SupervisedExample]]:
    """(train, held_out): Solver examples and recipe formats for training; Solver examples for evaluation."""
    from retrieval.world import sample_world

    rng = random.Random(seed)
    train_images = sample_world(n_train_images, seed=TRAIN_SEED_BASE + seed, size=image_size)
    eval_images = sample_world(n_eval_images, seed=EVAL_SEED_BASE + seed, size=image_size)
    train = solver_examples(train_images, rng)
    for name in registered_recipes() if recipes is None else recipes:
        train += get_recipe(name).bootstrap_examples(train_images, rng)
    held_out = solver_examples(eval_images, random.Random(seed + 1))
    return train, held_out


@dataclass
class BaseModelBuild:
    """Everything that determines the embedded base model; stored with the checkpoint."""

    size: str = "small"  # a key of models.tiny_vlm.TINY_SPECS
    n_train_images: int = 800
    n_eval_images: int = 150
    # every registered recipe's task-maker formats (V-Zero first, so its examples do not depend on the others)
    recipes: tuple[str, ...] = field(default_factory=lambda: registered_recipes())
    seed: int = 0
    format_probe: int = 32  # held-out images on which the Questioner format is sampled
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """12 hex digits identifying this build configuration (and the code version that built it)."""
        import hashlib

        from zeroforge import __version__

        blob = json.dumps({"build": self.to_dict(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def registered_recipes() -> tuple[str, ...]:
    from recipes.base import RECIPES

    return tuple(sorted(RECIPES, key=lambda n: (n != "vzero", n)))


def tokenizer_corpus(examples: Sequence[SupervisedExample]) -> list[str]:
    """Text the tokenizer must cover: the world's vocabulary plus every prompt and reply template."""
    from retrieval.world.tasks import world_corpus

    lines = list(world_corpus())
    for ex in examples:
        lines += ex.prompt.splitlines() + ex.target.splitlines()
    return lines


def questioner_format_rate(engine, images: Sequence, n: int, seed: int) -> float:
    """Share of sampled (temperature 1) Questioner outputs that parse: the warm start should leave it < 1."""
    from recipes.vzero import QUESTIONER_PROMPT, MalformedOutput, parse_questioner

    reqs = [GenerationRequest(QUESTIONER_PROMPT, [wi.image]) for wi in images[:n]]
    outs = engine.generate(reqs, SamplingParams(n=1, temperature=1.0, max_new_tokens=96, seed=seed))
    ok = 0
    for (text,) in outs:
        try:
            parse_questioner(text)
            ok += 1
        except MalformedOutput:
            pass
    return ok / max(1, len(outs))


def build_base_model(out_dir: str | Path, cfg: BaseModelBuild, progress: bool = True) -> dict:
    """Build, warm-start, evaluate and save the embedded base model into `out_dir`.

    Returns the report also written to `out_dir/zeroforge_base.json`: parameter
    count, warm-start loss curve, held-out Solver accuracy per task type (with
    n and 95% interval) and the Questioner format rate.
    """
    from evaluation.multiple_choice import choice_accuracy
    from models.generation import TransformersEngine
    from models.loading import load_vlm
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from models.warmstart import supervised_finetune
    from retrieval.world import sample_world

    if cfg.size not in TINY_SPECS:
        raise ValueError(f"unknown embedded model size {cfg.size!r}; choose one of {sorted(TINY_SPECS)}")
    out = Path(out_dir)
    t0 = time.monotonic()
    train, held_out = bootstrap_datasets(cfg.n_train_images, cfg.n_eval_images, cfg.seed, cfg.recipes)
    summary = build_tiny_vlm(out, tokenizer_corpus(train + held_out), TINY_SPECS[cfg.size])
    model, processor = load_vlm(out, device="cpu", dtype=torch.float32)
    history = supervised_finetune(model, processor, train, cfg.warm_start, progress=progress)
    model.save_pretrained(out)
    engine = TransformersEngine(model, processor, batch_size=64)
    accuracy, _ = choice_accuracy(engine, held_out)
    probe_images = sample_world(cfg.format_probe, seed=EVAL_SEED_BASE + 7 + cfg.seed)
    fmt_rate = questioner_format_rate(engine, probe_images, cfg.format_probe, cfg.seed)
    report = {
        "build": cfg.to_dict(),
        "parameters": summary["parameters"],
        "vocab_size": summary["vocab_size"],
        "train_examples": len(train),
        "held_out_examples": len(held_out),
        "warm_start": {k: v for k, v in history.items() if k != "loss"},
        "loss": history["loss"],
        "held_out_accuracy": {k: v.to_dict() for k, v in accuracy.items()},
        "questioner_format_rate": fmt_rate,
        "seconds": time.monotonic() - t0,
    }
    (out / "zeroforge_base.json").write_text(json.dumps(report, indent=2))
    return report


def held_out_examples(n_images: int, seed: int = 0, salt: int = 0) -> list[SupervisedExample]:
    """Labeled Solver questions on held-out world images (seeds from EVAL_SEED_BASE, never trained on).

    `salt` picks a disjoint slice (e.g. the pseudo-label audit uses its own).
    """
    from retrieval.world import sample_world

    images = sample_world(n_images, seed=EVAL_SEED_BASE + 1000 * salt + seed)
    return solver_examples(images, random.Random(seed + 1 + salt))
