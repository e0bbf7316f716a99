"""Typed iteration configs: the shared `LoopConfig`, profiles as data, and how an iteration's config is resolved.

Every recipe's configuration is a dataclass whose fields carry `help`
metadata (as TRL's `GRPOConfig` does); a recipe with knobs of its own
subclasses `LoopConfig` once and adds them (MM-Zero's render size, Vision-Zero's
players). A *profile* is plain data: a nested dict of field values over the
dataclass defaults, e.g. `{"m": 4, "solver": {"steps": 2}}`. Three names are
used throughout: "paper" (the published settings), "embedded" (the tiny model
on CPU, what `zeroforge demo` runs) and "smoke" (seconds-long, for tests).

`resolve_config` decides one iteration's config, in this order: an explicit
profile if the user names one, else the parent iteration's frozen config (so
iteration N+1 runs with N's settings, whoever launched it), else the recipe's
default profile; then the user's overrides on top, each recorded.

    cfg = VZeroConfig.from_profile(VZERO_PROFILES, "smoke")
    cfg, provenance = resolve_config(VZeroConfig, VZERO_PROFILES, {"m": 8}, parent=None)
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from models.grpo import GRPOHyperParams

DEFAULT_PROFILE = "embedded"
# Launchpad shortcuts that set a GRPO field on every role at once (the recipe's fields are set by name).
ROLE_SHORTCUTS: dict[str, tuple[str, str]] = {
    "learning_rate": ("learning_rate", "Adam learning rate of every role."),
    "use_lora": ("use_lora", "Train LoRA adapters instead of all weights, in every role."),
    "save_steps": ("save_steps", "Trainer checkpoint interval of every role (what a killed step resumes from)."),
}
STEP_SHORTCUTS: dict[str, str] = {
    "solver_steps": "GRPO steps of the Solver per iteration.",
    "task_maker_steps": "GRPO steps of each task-maker role per iteration.",
}


def hfield(default=dataclasses.MISSING, help: str = "", default_factory=dataclasses.MISSING):
    """A dataclass field with its help text; every config field has one."""
    if not help:
        raise ValueError("every config field needs a help text")
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def build_dataclass(cls, data: dict):
    """Instantiate `cls` from a (possibly nested) dict; unknown keys are an error naming them."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        origin = typing.get_origin(tp)
        if _is_dataclass_type(tp) and isinstance(value, dict):
            value = build_dataclass(tp, value)
        elif origin is dict and isinstance(value, dict):
            _, vt = typing.get_args(tp)
            if _is_dataclass_type(vt):
                value = {k: v if isinstance(v, vt) else build_dataclass(vt, v) for k, v in value.items()}
        kwargs[name] = value
    return cls(**kwargs)


def deep_merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, recursively for nested dicts (a profile on top of the defaults)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@dataclass
class GuardConfig:
    """Thresholds of the guards (`recipes.core.guards`), part of every recipe's typed config (`LoopConfig.guards`)."""

    max_top_answer_share: float = hfield(0.6, "answer_collapse fails when one answer is given to more than this share "
                                              "of the held-out questions (4 options: a healthy Solver is near 0.25-0.4).")
    min_entropy_ratio: float = hfield(0.5, "answer_collapse fails when the answer entropy falls below this fraction of "
                                           "the base's (and of the parent's).")
    alpha: float = hfield(0.05, "Significance level of the label_quality and flip_rate tests.")
    min_label_agreement: float = hfield(0.95, "label_quality fails when fewer of the loop's pseudo-labels than this equal "
                                              "the majority of the Solver's own votes on the audit slice (a labeling bug).")
    max_malformed_rate: float = hfield(0.95, "task_format fails when more of the task makers' outputs than this are malformed.")
    max_degenerate_share: float = hfield(0.5, "task_format fails when more well-formed tasks than this are duplicates or "
                                              "give their answer away in the question.")
    blocking: list[str] = hfield(default_factory=lambda: ["answer_collapse", "label_quality"],
                                 help="Guards whose failure stops the chain (the sensor skips, the next iteration refuses "
                                      "to start unless told to accept them).")


# The guards an iteration runs (`recipes.core.guards`); `GuardConfig.blocking` names some of them.
GUARD_NAMES = ("answer_collapse", "label_quality", "flip_rate", "task_format", "base_above_chance")
GUARDS_BLOCKING_HELP = ("Guards whose failure stops the chain (default answer_collapse, label_quality); the others only "
                        "warn. An empty list makes every guard warn-only for this iteration; recorded with the config.")


@dataclass
class LoopConfig:
    """One iteration's settings, shared by every recipe. Defaults are the papers' (recipes.md)."""

    m: int = hfield(10, "Solver samples per question for the majority vote (temperature 1.0; papers: 10).")
    band_low: float = hfield(0.3, "Lower edge of the consistency band: tasks with c below it are too hard.")
    band_high: float = hfield(0.8, "Upper edge of the consistency band: tasks with c above it are too easy.")
    images_per_iteration: int = hfield(256, "Images (or items) the task makers see when building the task set.")
    task_maker_images: int = hfield(128, "Images (or prompts) each task maker trains on.")
    eval_images: int = hfield(150, "Held-out procedural images every model of the iteration is scored on.")
    vote_max_new_tokens: int = hfield(16, "Reply length limit of the Solver when voting.")
    task_max_new_tokens: int = hfield(256, "Reply length limit of the task makers when building the task set.")
    task_temperature: float = hfield(1.0, "Task makers' sampling temperature when building the task set (papers: 1.0).")
    open_twin_share: float = hfield(0.0, "Share of the kept 4-option tasks that also train the Solver asked openly: the "
                                         "stem without its options, the majority option's text as the pseudo-label. 0: "
                                         "the 4-option form only, which the 4-option reward erodes the open form of.")
    engine_batch_size: int = hfield(32, "Requests per batched generation call.")
    seed: int = hfield(0, "Seed of every draw in the iteration (images, sampling, training).")
    solver: GRPOHyperParams = hfield(
        default_factory=lambda: GRPOHyperParams(num_generations=5, steps=20, max_completion_length=64),
        help="The Solver's GRPO settings.")
    task_makers: dict[str, GRPOHyperParams] = hfield(
        default_factory=dict, help="Each task-maker role's GRPO settings, by role name.")
    guards: GuardConfig = hfield(default_factory=GuardConfig, help="Thresholds of the guards that stop a failing chain.")

    def role_hp(self, role: str) -> GRPOHyperParams:
        if role == "solver":
            return self.solver
        return self.task_makers.setdefault(role, GRPOHyperParams(num_generations=4, steps=10))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return build_dataclass(cls, data)

    @classmethod
    def from_profile(cls, profiles: dict[str, dict], name: str):
        if name not in profiles:
            raise ValueError(f"unknown profile {name!r}; choose one of {sorted(profiles)}")
        return cls.from_dict(deep_merge(cls().to_dict(), profiles[name]))

    @classmethod
    def scalar_fields(cls) -> dict[str, tuple[type, str]]:
        """{name: (type, help)} of the fields a launchpad can override directly (not the nested GRPO settings)."""
        hints = typing.get_type_hints(cls)
        return {f.name: (hints[f.name], f.metadata["help"]) for f in dataclasses.fields(cls)
                if hints[f.name] in (int, float, str, bool)}


def apply_overrides(cfg: LoopConfig, overrides: dict[str, Any], task_makers: tuple[str, ...]) -> dict[str, Any]:
    """Set each non-None override on `cfg` (fields by name, role shortcuts on every role); returns what changed."""
    scalars = type(cfg).scalar_fields()
    applied: dict[str, Any] = {}
    hps = [cfg.solver] + [cfg.role_hp(r) for r in task_makers]
    for key, value in overrides.items():
        if value is None or key == "profile":
            continue
        if key in scalars:
            setattr(cfg, key, scalars[key][0](value))
        elif key in ROLE_SHORTCUTS:
            for hp in hps:
                setattr(hp, ROLE_SHORTCUTS[key][0], value)
        elif key == "solver_steps":
            cfg.solver.steps = int(value)
        elif key == "task_maker_steps":
            for r in task_makers:
                cfg.role_hp(r).steps = int(value)
        elif key == "guards_blocking":
            unknown = sorted(set(value) - set(GUARD_NAMES))
            if unknown:
                raise ValueError(f"unknown guards {unknown} in guards_blocking; known: {sorted(GUARD_NAMES)}")
            cfg.guards.blocking = list(value)
        else:
            raise ValueError(f"unknown override {key!r} for {type(cfg).__name__}; known: "
                             f"{sorted([*scalars, *ROLE_SHORTCUTS, *STEP_SHORTCUTS, 'guards_blocking'])}")
        applied[key] = value
    return applied


def resolve_config(config_cls: type[LoopConfig], profiles: dict[str, dict], overrides: dict[str, Any],
                   parent: LoopConfig | None, parent_label: str = "", task_makers: tuple[str, ...] = ()) -> tuple[LoopConfig, dict]:
    """(config, provenance) of a new iteration; see the module docstring for the order."""
    profile = overrides.get("profile")
    if profile:
        cfg, base = config_cls.from_profile(profiles, profile), f"profile {profile}"
    elif parent is not None:
        cfg, base = config_cls.from_dict(parent.to_dict()), f"frozen config of {parent_label}"
    else:
        cfg, base = config_cls.from_profile(profiles, DEFAULT_PROFILE), f"profile {DEFAULT_PROFILE}"
    applied = apply_overrides(cfg, overrides, task_makers)
    return cfg, {"based_on": base, "overrides": applied, "inherited_from": parent_label if (parent and not profile) else ""}
