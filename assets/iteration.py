"""Run knobs for one iteration and the context every loop asset builds from them.

`IterationConfig` is what a user edits in the launchpad. The first step of an
iteration resolves it against the recipe's profile and freezes the result in
`iteration_config.json`; every later step of that iteration (and any rerun)
reads the frozen copy, so the task set, its checks and the Solver can never
disagree about m or the band. Start a new iteration to change them.
"""

import json
from dataclasses import fields
from pathlib import Path

import dagster as dg

from assets.resources import ComputeResource, ZeroforgeHome
from assets.store import IterationStore, parse_iteration
from models.grpo import GRPOHyperParams
from recipes import get_recipe
from recipes.loop import IterationContext, LoopConfig
from retrieval.pool import ImagePool


class IterationConfig(dg.Config):
    """Launchpad knobs; 0 / negative / empty means "the profile's value"."""

    profile: str = "embedded"  # "embedded" (tiny model on CPU) or "paper" (published defaults)
    m: int = 0
    band_low: float = -1.0
    band_high: float = -1.0
    images_per_iteration: int = 0
    solver_steps: int = 0
    task_maker_steps: int = 0
    learning_rate: float = 0.0
    use_lora: bool = False
    save_steps: int = 0  # trainer checkpoint interval of every role (what a killed step resumes from)
    seed: int = 0


def resolve(recipe_name: str, cfg: IterationConfig) -> LoopConfig:
    loop = get_recipe(recipe_name).default_config(cfg.profile)
    if cfg.m > 0:
        loop.m = cfg.m
    if cfg.band_low >= 0:
        loop.band_low = cfg.band_low
    if cfg.band_high >= 0:
        loop.band_high = cfg.band_high
    if cfg.images_per_iteration > 0:
        loop.images_per_iteration = cfg.images_per_iteration
    loop.seed = cfg.seed
    hps = [loop.solver] + [loop.role_hp(r) for r in get_recipe(recipe_name).task_makers]
    for hp in hps:
        if cfg.learning_rate > 0:
            hp.learning_rate = cfg.learning_rate
        hp.use_lora = hp.use_lora or cfg.use_lora
        if cfg.save_steps > 0:
            hp.save_steps = cfg.save_steps
    if cfg.solver_steps > 0:
        loop.solver.steps = cfg.solver_steps
    if cfg.task_maker_steps > 0:
        for r in get_recipe(recipe_name).task_makers:
            loop.role_hp(r).steps = cfg.task_maker_steps
    return loop


def loop_config_from_dict(d: dict) -> LoopConfig:
    d = dict(d)
    d["solver"] = GRPOHyperParams(**d["solver"])
    d["task_makers"] = {k: GRPOHyperParams(**v) for k, v in d.get("task_makers", {}).items()}
    return LoopConfig(**{f.name: d[f.name] for f in fields(LoopConfig) if f.name in d})


def frozen_config(store: IterationStore, recipe: str, partition: str, cfg: IterationConfig) -> tuple[LoopConfig, str]:
    """The iteration's config: the frozen copy if one exists, else resolve `cfg` and freeze it."""
    path = store.config_path(recipe, partition)
    if path.is_file():
        return loop_config_from_dict(json.loads(path.read_text())), "frozen"
    loop = resolve(recipe, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(loop.to_dict(), indent=2))
    tmp.replace(path)
    return loop, "resolved"


def iteration_context(
    recipe: str, partition: str, cfg: IterationConfig, home: ZeroforgeHome, compute: ComputeResource, roles: tuple[str, ...]
) -> tuple[IterationContext, IterationStore, dict[str, str]]:
    """Context for one step: frozen config, parents of `roles` (raises if N-1 is missing), the pool."""
    store = IterationStore(home.path)
    loop, _ = frozen_config(store, recipe, partition, cfg)
    parents, labels = {}, {}
    for role in roles:
        path, label = store.parent_checkpoint(recipe, partition, role)
        parents[role], labels[role] = path, label
    trained = {r: store.role_dir(recipe, partition, r) for r in get_recipe(recipe).task_makers}
    ctx = IterationContext(
        recipe=recipe, iteration=parse_iteration(partition), partition=partition, config=loop,
        parents=parents, pool=ImagePool(home.pool_root()), device=compute.resolved_device(),
        trained={r: d for r, d in trained.items() if store.checkpoint_complete(d)},
    )
    return ctx, store, labels


def write_png(path: Path, png: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
