"""Active-Zero's configuration: the shared `LoopConfig` and its profiles, as data.

One iteration = Searcher (10 steps) -> Questioner (10) -> Solver (30) in the
paper; the Solver trains with DAPO's settings (asymmetric clip 0.2 / 0.28,
groups without reward variance dropped). The passive control is the same
without the Searcher.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from recipes.core.config import LoopConfig


@dataclass
class ActiveZeroConfig(LoopConfig):
    """Active-Zero: Searcher -> pool search -> Questioner -> Solver x m -> band filter -> Solver GRPO (DAPO)."""


_DAPO = {"epsilon": 0.2, "epsilon_high": 0.28, "loss_type": "dapo", "drop_zero_std_groups": True}

PROFILES: dict[str, dict] = {
    "paper": {
        "solver": {"num_generations": 5, "steps": 30, "prompts_per_step": 16, "max_completion_length": 1024, **_DAPO},
        "task_makers": {
            "searcher": {"num_generations": 4, "steps": 10, "prompts_per_step": 16, "max_completion_length": 128},
            "questioner": {"num_generations": 4, "steps": 10, "prompts_per_step": 16, "max_completion_length": 512},
        },
    },
    # The tiny model on CPU: lr 1e-4, short completions, temperature 0.7 for the Questioner's long format.
    "embedded": {
        "images_per_iteration": 256, "task_maker_images": 32, "eval_images": 150, "task_max_new_tokens": 128,
        "task_temperature": 0.7, "engine_batch_size": 64,
        "solver": {"num_generations": 5, "steps": 20, "prompts_per_step": 8, "learning_rate": 1e-4,
                   "max_completion_length": 12, "save_steps": 5, **_DAPO},
        "task_makers": {
            "searcher": {"num_generations": 4, "steps": 6, "prompts_per_step": 4, "learning_rate": 1e-4, "temperature": 1.0,
                         "max_completion_length": 48, "save_steps": 3},
            "questioner": {"num_generations": 4, "steps": 6, "prompts_per_step": 4, "learning_rate": 1e-4, "temperature": 0.7,
                           "max_completion_length": 128, "save_steps": 3},
        },
    },
    # Seconds-long: every step runs, nothing is measured. A barely warm-started model loses the query format
    # at temperature 1; 0.5 keeps most queries parseable.
    "smoke": {
        "m": 4, "band_low": 0.0, "band_high": 1.0, "images_per_iteration": 8, "task_maker_images": 4, "eval_images": 4,
        "task_max_new_tokens": 96, "engine_batch_size": 16, "task_temperature": 0.0,
        "solver": {"num_generations": 2, "steps": 2, "prompts_per_step": 2, "learning_rate": 1e-4,
                   "max_completion_length": 8, "save_steps": 1, **_DAPO},
        "task_makers": {
            "searcher": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4, "temperature": 0.5,
                         "max_completion_length": 48, "save_steps": 1},
            "questioner": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4, "temperature": 0.3,
                           "max_completion_length": 96, "save_steps": 1},
        },
    },
}


def passive_profiles() -> dict[str, dict]:
    """The passive control's profiles: the same settings without the Searcher."""
    out = copy.deepcopy(PROFILES)
    for p in out.values():
        p["task_makers"].pop("searcher")
    return out
