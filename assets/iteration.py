"""An iteration's launchpad config, how it is frozen, and the context each loop step builds from it.

Each recipe gets a launchpad `Config` class generated from its typed config
dataclass: every scalar field of the recipe's config (with its help text as
the description), a `profile`, and shortcuts for the GRPO settings of every
role; all default to None, meaning "not overridden". The first asset of an
iteration, `<recipe>/iteration_config`, resolves it (an explicit profile,
else the parent iteration's frozen config, else the default profile; then the
overrides), records what it was based on and which overrides it applied, and
freezes the result. Every later step of the iteration receives the frozen
config through the IO manager, so the task set, its checks and the Solver can
never disagree about m or the band, and iteration N+1 starts from N's config
whoever launches it (the UI, a backfill, the chain sensor).

    ctx, labels = step_context(recipe, "iter-0002", cfg, home, compute, roles=("solver",))
"""

from functools import cache
from pathlib import Path
from typing import Optional

import dagster as dg
import pydantic

from assets.io import FrozenConfig
from assets.resources import ComputeResource, ZeroforgeHome
from assets.store import IterationStore, MissingParentError, iteration_key, parse_iteration
from recipes import get_recipe
from recipes.core.config import GUARDS_BLOCKING_HELP, ROLE_SHORTCUTS, STEP_SHORTCUTS, LoopConfig, resolve_config
from recipes.core.context import IterationContext, IterationImages
from retrieval.pool import ImagePool

_PROFILE_HELP = ('Start from this profile ("paper", "embedded" or "smoke") instead of the parent iteration\'s '
                 "frozen config (iteration 1: the default profile, embedded).")
_ACCEPT_HELP = ("Blocking guards (e.g. answer_collapse, label_quality) that the previous iteration (or, for iteration 1, "
                "the base model) failed and this iteration may start from anyway; recorded with the config.")
_REFREEZE_HELP = ("Resolve this iteration's config again even though it is frozen (a rerun otherwise keeps the "
                  "frozen one and refuses different overrides).")


@cache
def launchpad_config(recipe_name: str) -> type[dg.Config]:
    """The launchpad `Config` of `recipe_name`'s iteration_config asset (generated from its config dataclass)."""
    recipe = get_recipe(recipe_name)
    fields: dict = {"profile": (Optional[str], pydantic.Field(None, description=_PROFILE_HELP)),
                    "refreeze": (bool, pydantic.Field(False, description=_REFREEZE_HELP)),
                    "accept_failed_guards": (Optional[list[str]], pydantic.Field(None, description=_ACCEPT_HELP)),
                    "guards_blocking": (Optional[list[str]], pydantic.Field(None, description=GUARDS_BLOCKING_HELP))}
    for name, (tp, help_text) in recipe.config_class.scalar_fields().items():
        fields[name] = (Optional[tp], pydantic.Field(None, description=help_text))
    hp_types = {"learning_rate": float, "use_lora": bool, "save_steps": int}
    for name, (_, help_text) in ROLE_SHORTCUTS.items():
        fields[name] = (Optional[hp_types[name]], pydantic.Field(None, description=help_text))
    for name, help_text in STEP_SHORTCUTS.items():
        fields[name] = (Optional[int], pydantic.Field(None, description=help_text))
    cls_name = "".join(p.capitalize() for p in recipe_name.split("_")) + "IterationConfig"
    doc = f"Launchpad knobs of one {recipe_name} iteration; empty fields keep the parent's (or the profile's) value."
    return pydantic.create_model(cls_name, __base__=dg.Config, __doc__=doc, **fields)


def freeze_config(recipe_name: str, partition: str, launchpad: dg.Config, store: IterationStore) -> tuple[FrozenConfig, str]:
    """(frozen config, "frozen" | "resolved"): the iteration's config, resolved once and then reused on every rerun."""
    recipe = get_recipe(recipe_name)
    overrides = {k: v for k, v in launchpad.model_dump().items() if k not in ("refreeze", "accept_failed_guards") and v is not None}
    path = store.config_path(recipe_name, partition)
    if path.is_file() and not launchpad.refreeze:
        frozen = FrozenConfig.load(recipe_name, path)
        if overrides and overrides != frozen.provenance.get("requested", {}):
            raise ValueError(
                f"{recipe_name} {partition} is frozen with {frozen.provenance.get('requested') or 'no overrides'} "
                f"({path}); this run asks for {overrides}. Set refreeze=True to resolve it again, or start a new iteration.")
        return frozen, "frozen"
    n = parse_iteration(partition)
    parent, parent_label = None, ""
    if n > 1:  # N starts from N-1: its config too, and nothing of N is frozen before N-1 exists
        parent_label = iteration_key(n - 1)
        parent_path = store.config_path(recipe_name, parent_label)
        if not parent_path.is_file():
            raise MissingParentError(f"{recipe_name} {partition} starts from {parent_label}, which has no frozen config at "
                                     f"{parent_path}: materialize {parent_label} first")
        parent = FrozenConfig.load(recipe_name, parent_path).config
    cfg, provenance = resolve_config(recipe.config_class, recipe.profiles, overrides, parent, parent_label, recipe.task_makers)
    accepted = list(launchpad.accept_failed_guards or [])
    return FrozenConfig(cfg, {**provenance, "requested": overrides, "accepted_failed_guards": accepted}), "resolved"


def step_context(recipe_name: str, partition: str, cfg: LoopConfig, home: ZeroforgeHome, compute: ComputeResource,
                 roles: tuple[str, ...]) -> tuple[IterationContext, dict[str, str]]:
    """The context of one step: the recipe, its frozen config, the parents of `roles` (raises if N-1 is missing), images."""
    recipe = get_recipe(recipe_name)
    store = IterationStore(home.path)
    parents, labels = {}, {}
    for role in roles:
        parents[role], labels[role] = store.parent_checkpoint(recipe_name, partition, role)
    trained = {r: store.role_dir(recipe_name, partition, r) for r in recipe.task_makers
               if store.checkpoint_complete(store.role_dir(recipe_name, partition, r))}
    images = IterationImages(ImagePool(home.pool_root()), store.generated_images_dir(recipe_name, partition),
                             sources=recipe.generated_sources)
    ctx = IterationContext(recipe=recipe, iteration=parse_iteration(partition), partition=partition, config=cfg,
                           parents=parents, images=images, device=compute.resolved_device(), trained=trained)
    return ctx, labels


def write_png(path: Path, png: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
