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

from evaluation.multiple_choice import held_out_report, image_dependence
from models.formats import solver_prompt, solver_target
from models.generation import TransformersEngine
from models.loading import load_vlm
from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
from models.warmstart import SupervisedExample, WarmStartConfig, supervised_finetune
from recipes.core.config import hfield
from recipes.core.questioner import questioner_format_rate
from recipes.core.registry import get_recipe, recipe_names
from retrieval.world.primer import CURRICULUM_MIX, perception_curriculum, primer_images
from retrieval.world.splits import split_images, split_seed, split_tasks
from retrieval.world.tasks import MIXES, TaskMix, make_tasks, world_corpus

BASE_CARD = "zeroforge_base.json"


def _code_version() -> str:
    try:
        return version("zeroforge")
    except PackageNotFoundError:  # a source tree without an install
        return "source"


# What makes the warm start's data and its training, besides the configuration: the world, the
# formats, the tokenizer, the model builder and the training loop (plus each taught recipe's format
# builders, found from the recipes). A change to any of them changes what a base built "with the same
# configuration" holds, so it changes the base's address too (the package version alone did not:
# the numeric-option fix retrained every base under an unchanged address).
_SOURCE_MODULES = ("retrieval.world", "models.warmstart", "models.tiny_vlm", "models.tokenizer", "models.formats",
                   "models.generation", "recipes.core.bootstrap", "recipes.core.questioner")


def source_digest(recipes: Sequence[str] = ()) -> str:
    """sha256 (16 hex digits) over the source files behind a base's data and training, and torch's and
    transformers' versions (their kernels and initialisers shape the weights too)."""
    import importlib
    import inspect

    import transformers

    files: set[Path] = set()
    for name in _SOURCE_MODULES:
        mod = importlib.import_module(name)
        path = Path(inspect.getsourcefile(mod))
        files |= set(path.parent.glob("*.py")) if path.name == "__init__.py" else {path}
    for r in recipes:
        for builder in get_recipe(r).warm_start_formats().values():
            files.add(Path(inspect.getsourcefile(builder)))
    h = hashlib.sha256(f"torch {torch.__version__}; transformers {transformers.__version__}".encode())
    for f in sorted(files, key=lambda f: (f.parent.name, f.name)):  # by name, not by where the tree is checked out
        h.update(f"{f.parent.name}/{f.name}\0".encode() + f.read_bytes())
    return h.hexdigest()[:16]


def resolve_mix(task_mix: str | dict | TaskMix | None) -> TaskMix | None:
    """A TaskMix from a `retrieval.world.tasks.MIXES` name or a dict; None keeps every 4-option task type."""
    if task_mix is None or isinstance(task_mix, TaskMix):
        return task_mix
    if isinstance(task_mix, dict):
        return TaskMix.from_dict(task_mix)
    if task_mix not in MIXES:
        raise ValueError(f"unknown task mix {task_mix!r}; choose one of {sorted(MIXES)} or pass a TaskMix dict")
    return MIXES[task_mix]


def _example(wi, t, chain: bool = False) -> SupervisedExample:
    options = list(t.options) if t.answer_kind == "mc" else None
    target = solver_target(t.answer, t.answer_text, t.answer_kind)
    if chain and t.answer_kind == "yesno" and t.rationale:
        target = f"{t.rationale} {target}"  # what the image shows, then the answer: see TaskMix.yesno_chain
    return SupervisedExample(solver_prompt(t.question, options, t.answer_kind), target,
                             [wi.image], t.task_type, answer=t.answer, options=options, answer_kind=t.answer_kind)


def solver_examples(world_images: Sequence, rng: random.Random, mix: str | dict | TaskMix | None = None) -> list[SupervisedExample]:
    """The labeled tasks of every image (all 4-option types, or a `TaskMix`'s types and answer kinds) as
    Solver prompt -> taught reply (`models.formats`: the option text boxed; yes/no and open answers boxed)."""
    mix = resolve_mix(mix)
    chain = bool(mix and mix.yesno_chain)
    return [_example(wi, t, chain) for wi in world_images for t in make_tasks(wi, rng, mix)]


def labeled_tasks(split: str, n_images: int, seed: int = 0, mix: str | dict | TaskMix | None = None) -> list[tuple]:
    """(world image, labeled task) pairs on `n_images` images of a held-out split ("test", "audit", "validation")."""
    return split_tasks(split, n_images, seed, mix=resolve_mix(mix))


def labeled_examples(split: str, n_images: int, seed: int = 0, mix: str | dict | TaskMix | None = None) -> list[SupervisedExample]:
    """Labeled Solver questions on `n_images` images of a held-out split, as the warm start formats them."""
    return [_example(wi, t) for wi, t in labeled_tasks(split, n_images, seed, mix)]


def bootstrap_datasets(
    n_train_images: int,
    n_eval_images: int,
    seed: int = 0,
    recipes: Sequence | None = None,
    image_size: int = 64,
    task_mix: str | dict | TaskMix | None = None,
) -> tuple[list[SupervisedExample], list[SupervisedExample]]:
    """(train, held_out): Solver examples and the recipes' formats for training; Solver examples of the test split.

    `task_mix` (a `MIXES` name or a TaskMix) picks the Solver's task types and answer kinds in training;
    None keeps every 4-option type. A mix with `primer_images` adds that many primer scenes
    (`retrieval.world.primer`) per world image to the Solver examples; recipes' formats use world images only."""
    mix = resolve_mix(task_mix)
    rng = random.Random(seed)
    train_images = split_images("train", n_train_images, seed, size=image_size)
    primer = primer_images(round(mix.primer_images * n_train_images), seed=seed, size=image_size) if mix and mix.primer_images else []
    train = solver_examples(list(train_images) + primer, rng, mix)
    taught: set[str] = set()
    for recipe in [get_recipe(r) if isinstance(r, str) else r for r in (recipes if recipes is not None else recipe_names())]:
        for name, builder in recipe.warm_start_formats().items():
            if name not in taught:  # a format shared by several recipes is taught once
                taught.add(name)
                train += builder(train_images, rng)
    # The multiple-choice figure is always every 4-option type (the loop's and the leaderboard's held-out set),
    # whatever the mix trains; the mix's yes/no and open questions are scored beside it.
    held_out = labeled_examples("test", n_eval_images, seed)
    for kind in [k for k, _ in mix.kinds if k != "mc"] if mix is not None else []:
        # one draw per form, as the harness's procedural_yesno and procedural_open ask them: for the `all` mix
        # the card and the leaderboard then score the same questions (a joint draw gave different sets)
        held_out += labeled_examples("test", n_eval_images, seed, mix.only(kind))
    return train, held_out


def curriculum_examples(n_images: int, seed: int = 0, image_size: int = 64) -> list[SupervisedExample]:
    """The warm start's first phase: colour and shape asked openly about single large shapes and the easiest scenes."""
    return solver_examples(perception_curriculum(n_images, seed, image_size), random.Random(seed + 5), CURRICULUM_MIX)


@dataclass
class BaseModelBuild:
    """Everything that determines the embedded base model; stored with the checkpoint."""

    size: str = hfield("small", "A key of models.tiny_vlm.TINY_SPECS: the architecture.")
    n_train_images: int = hfield(800, "World images whose labeled tasks (and formats) the warm start trains on.")
    n_eval_images: int = hfield(150, "Held-out (test split) images the base is scored on.")
    task_mix: str | None = hfield(None, "The Solver's task types and answer kinds: a retrieval.world.tasks.MIXES name, or None "
                                        "for every 4-option type. Held-out questions follow the same mix.")
    curriculum_images: int = hfield(0, "Images of the perception curriculum (single large shapes, easiest scenes; colour and shape "
                                       "asked openly): the first warm_start.curriculum_steps train on them alone, and they stay "
                                       "in the mix afterwards so what they taught is not erased.")
    recipes: tuple[str, ...] = hfield(default_factory=recipe_names,
                                      help="Recipes whose task-maker formats the warm start teaches (each format once).")
    seed: int = hfield(0, "Seed of the world draw, the initialisation and the warm start.")
    format_probe: int = hfield(32, "Probe-split images on which the Questioner format rate is sampled.")
    warm_start: WarmStartConfig = hfield(default_factory=WarmStartConfig, help="The supervised warm start's settings.")

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """12 hex digits identifying this build configuration, the package version, `source_digest` and the
        torch thread count: what the base holds."""
        # The thread count belongs here: torch's CPU kernels split some reductions by thread, so the same
        # configuration warm-started with one and with two threads was bit-identical for 120 steps and then
        # drifted (a different base, 37.4% against 35.9% held out, after 1,200 steps).
        blob = json.dumps({"build": self.to_dict(), "version": _code_version(), "source": source_digest(self.recipes),
                           "torch_threads": torch.get_num_threads()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else `platform.processor()`), or "unknown"."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
    train, held_out = bootstrap_datasets(cfg.n_train_images, cfg.n_eval_images, cfg.seed, cfg.recipes, task_mix=cfg.task_mix)
    curriculum = curriculum_examples(cfg.curriculum_images, cfg.seed) if cfg.curriculum_images else []
    if cfg.warm_start.curriculum_steps and not curriculum:
        raise ValueError("warm_start.curriculum_steps needs curriculum_images > 0")
    # the tokenizer learns from what trains only: the held-out questions must not shape the model (a BPE over
    # them gave the base other merges, hence other weights, whenever the held-out draw changed)
    summary = build_tiny_vlm(out, tokenizer_corpus(train + curriculum), TINY_SPECS[cfg.size])
    model, processor = load_vlm(out, device="cpu", dtype=torch.float32)
    history = supervised_finetune(model, processor, train + curriculum, cfg.warm_start, progress=progress, curriculum=curriculum)
    model.save_pretrained(out)
    engine = TransformersEngine(model, processor, batch_size=64)
    scores = held_out_report(engine, held_out)
    mc = [ex for ex in held_out if ex.answer_kind == "mc"]
    blank = image_dependence(engine, mc)  # the same 4-option questions with blank images: does the base look?
    probe = [wi.image for wi in split_images("probe", cfg.format_probe, cfg.seed)]
    report = {
        "build": cfg.to_dict(),
        "source_digest": source_digest(cfg.recipes),
        "parameters": summary["parameters"],
        "vocab_size": summary["vocab_size"],
        "train_examples": len(train) + len(curriculum),
        "curriculum_examples": len(curriculum),
        "held_out_examples": len(held_out),
        "held_out_split": {"name": "test", "seed": split_seed("test", cfg.seed), "images": cfg.n_eval_images},
        "warm_start": {k: v for k, v in history.items() if k not in ("loss", "pixel_loss")},
        "loss": history["loss"],
        **({"pixel_loss": history["pixel_loss"]} if "pixel_loss" in history else {}),
        # 4-option questions (the multiple-choice figure) per task type; then per answer kind, and kind x type
        "held_out_accuracy": scores["accuracy"],
        "held_out_by_kind": scores["by_kind"],
        "held_out_by_kind_and_type": scores["by_kind_and_type"],
        "held_out_valid": scores["valid"],
        "held_out_blank_image": {k: v for k, v in blank.items() if k != "real"},
        "questioner_format_rate": questioner_format_rate(engine, probe, cfg.seed),
        "seconds": time.monotonic() - t0,
        # Not in the fingerprint (a base is reused across machines), but recorded: the same configuration
        # warm-started on another CPU model differs by float rounding (figures ~2 points apart).
        "machine": {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()},
    }
    (out / BASE_CARD).write_text(json.dumps(report, indent=2))
    return report
