"""The warm start's data and the embedded base model: labeled Solver examples plus the recipes' formats.

This is the only place where the world's ground-truth labels train anything
(recipes.md: "no human label is used anywhere in training" applies to the
self-evolution loop; the warm start stands in for the papers' instruction
tuning). The formats taught are the Solver's plus each requested recipe's
`warm_start_formats()`, each format once (the shared Questioner format is
taught once however many recipes use it). Held-out examples come from named
seed ranges (`retrieval.world.splits`), so the base model's per-type accuracy
is measured on images it never saw.

    train, held_out = bootstrap_datasets(n_train_images=600, n_eval_images=150, seed=0, recipes=[get_recipe("vzero")])
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from evaluation.multiple_choice import choice_accuracy
from models.formats import solver_prompt, solver_target
from models.generation import TransformersEngine
from models.loading import load_vlm
from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
from models.warmstart import SupervisedExample, WarmStartConfig, supervised_finetune
from recipes.core.config import hfield
from recipes.core.questioner import questioner_format_rate
from recipes.core.registry import get_recipe, recipe_names
from retrieval.world.splits import split_images, split_seed, split_tasks
from retrieval.world.tasks import make_tasks, world_corpus

BASE_CARD = "zeroforge_base.json"


def _code_version() -> str:
    try:
        return version("zeroforge")
    except PackageNotFoundError:  # a source tree without an install
        return "source"


def solver_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """Every labeled task of every image as question + options -> the Solver's reply."""
    return [
        SupervisedExample(solver_prompt(t.question, list(t.options)), solver_target(t.answer, t.answer_text), [wi.image], t.task_type)
        for wi in world_images
        for t in make_tasks(wi, rng)
    ]


def labeled_tasks(split: str, n_images: int, seed: int = 0) -> list[tuple]:
    """(world image, labeled task) pairs on `n_images` images of a held-out split ("test", "audit", "validation")."""
    return split_tasks(split, n_images, seed)


def labeled_examples(split: str, n_images: int, seed: int = 0) -> list[SupervisedExample]:
    """Labeled Solver questions on `n_images` images of a held-out split, as the warm start formats them."""
    return [SupervisedExample(solver_prompt(t.question, list(t.options)), solver_target(t.answer, t.answer_text), [wi.image],
                              t.task_type) for wi, t in labeled_tasks(split, n_images, seed)]


def bootstrap_datasets(
    n_train_images: int,
    n_eval_images: int,
    seed: int = 0,
    recipes: Sequence | None = None,
    image_size: int = 64,
) -> tuple[list[SupervisedExample], list[SupervisedExample]]:
    """(train, held_out): Solver examples and the recipes' formats for training; Solver examples of the test split."""
    rng = random.Random(seed)
    train_images = split_images("train", n_train_images, seed, size=image_size)
    train = solver_examples(train_images, rng)
    taught: set[str] = set()
    for recipe in [get_recipe(r) if isinstance(r, str) else r for r in (recipes if recipes is not None else recipe_names())]:
        for name, builder in recipe.warm_start_formats().items():
            if name not in taught:  # a format shared by several recipes is taught once
                taught.add(name)
                train += builder(train_images, rng)
    held_out = labeled_examples("test", n_eval_images, seed)
    return train, held_out


@dataclass
class BaseModelBuild:
    """Everything that determines the embedded base model; stored with the checkpoint."""

    size: str = hfield("small", "A key of models.tiny_vlm.TINY_SPECS: the architecture.")
    n_train_images: int = hfield(800, "World images whose labeled tasks (and formats) the warm start trains on.")
    n_eval_images: int = hfield(150, "Held-out (test split) images the base is scored on.")
    recipes: tuple[str, ...] = hfield(default_factory=recipe_names,
                                      help="Recipes whose task-maker formats the warm start teaches (each format once).")
    seed: int = hfield(0, "Seed of the world draw, the initialisation and the warm start.")
    format_probe: int = hfield(32, "Probe-split images on which the Questioner format rate is sampled.")
    warm_start: WarmStartConfig = hfield(default_factory=WarmStartConfig, help="The supervised warm start's settings.")

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """12 hex digits identifying this build configuration (and the code version that built it)."""
        blob = json.dumps({"build": self.to_dict(), "version": _code_version()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tokenizer_corpus(examples: Sequence[SupervisedExample]) -> list[str]:
    """Text the tokenizer must cover: the world's vocabulary plus every prompt and reply template."""
    lines = list(world_corpus())
    for ex in examples:
        lines += ex.prompt.splitlines() + ex.target.splitlines()
    return lines


def build_base_model(out_dir: str | Path, cfg: BaseModelBuild, progress: bool = True) -> dict:
    """Build, warm-start, evaluate and save the embedded base model into `out_dir`.

    Returns the report also written to `out_dir/zeroforge_base.json`: parameter
    count, warm-start loss curve, held-out Solver accuracy per task type (with
    n and 95% interval) and the Questioner format rate.
    """
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
    probe = [wi.image for wi in split_images("probe", cfg.format_probe, cfg.seed)]
    report = {
        "build": cfg.to_dict(),
        "parameters": summary["parameters"],
        "vocab_size": summary["vocab_size"],
        "train_examples": len(train),
        "held_out_examples": len(held_out),
        "held_out_split": {"name": "test", "seed": split_seed("test", cfg.seed), "images": cfg.n_eval_images},
        "warm_start": {k: v for k, v in history.items() if k != "loss"},
        "loss": history["loss"],
        "held_out_accuracy": {k: v.to_dict() for k, v in accuracy.items()},
        "questioner_format_rate": questioner_format_rate(engine, probe, cfg.seed),
        "seconds": time.monotonic() - t0,
    }
    (out / BASE_CARD).write_text(json.dumps(report, indent=2))
    return report
