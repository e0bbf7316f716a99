"""The foundation's run configs per profile: what `zeroforge demo` and the tests launch.

A profile means the same thing everywhere in zeroforge: "embedded" (the
tiny model on CPU, what `zeroforge demo` runs) and "smoke" (seconds-long, for
tests and install checks) name both the foundation's settings here and each
recipe's loop settings (`Recipe.profiles`); "paper" exists only for the loop
(the published settings need a real base model: `base_model.model_path`).

    run_config = foundation_run_config("smoke")
    loop = LOOP_DEFAULTS["embedded"]          # {"recipe": "vzero", "iterations": 2}
"""

from __future__ import annotations

import copy

FOUNDATION: dict[str, dict] = {
    "embedded": {
        # ~10 minutes of supervised warm start (once: the base is reused while its config is unchanged);
        # the base must be partly right for majority votes to mean anything. 1,000 steps with the dense
        # perception loss (base_model's default) beat 1,200 without it on validation: 40.7% against
        # 37.9%, 7.6 points above blank images against 4.0. The `all` mix asks every task type as
        # 4-option, yes/no and open questions: a base taught 4-option questions only boxed an option-like
        # word for every yes/no and open question (0.0% and 0.3% on validation); with the mix it answers
        # all three forms, open 31.4%, and 4-option questions no worse (41.6% against 40.5%)
        # (docs/efficacy.md, section 4).
        "base_model": {"size": "small", "n_train_images": 1500, "warm_start_steps": 1000, "task_mix": "all"},
        "image_pool": {"procedural_images": 2000},
    },
    "smoke": {
        "base_model": {
            "size": "tiny",
            "n_train_images": 24,
            "n_eval_images": 10,
            "warm_start_steps": 300,
            "batch_size": 16,
            "learning_rate": 3e-3,
            "require_above_chance": False,  # a seconds-long warm start: the plumbing, not the model, is checked
        },
        "image_pool": {"procedural_images": 50, "include_skimage": False},
        "embedder": {"steps": 20, "batch_size": 16},
    },
}
# What `zeroforge demo` runs after the foundation, per profile.
LOOP_DEFAULTS: dict[str, dict] = {
    "embedded": {"recipe": "vzero", "iterations": 2},
    "smoke": {"recipe": "vzero", "iterations": 1},
}
PROFILES = tuple(FOUNDATION)


def foundation_run_config(profile: str, recipes: list[str] | None = None) -> dict:
    """The foundation job's run config; `recipes` are the ones whose formats the base learns (default: all)."""
    if profile not in FOUNDATION:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(FOUNDATION)}")
    ops = {name: {"config": copy.deepcopy(cfg)} for name, cfg in FOUNDATION[profile].items()}
    if recipes:
        ops["base_model"]["config"]["recipes"] = list(recipes)
    return {"ops": ops}
