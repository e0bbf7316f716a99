"""MM-Zero's configuration: `LoopConfig` plus MM-Zero's own knobs, and its profiles as data.

MM-Zero keeps tasks by its own rule (recipes.md): easy questions with
consistency c >= `easy_min`; hard questions with c in [`hard_low`,
`hard_high`] whose render's easy question passed. That rule is what
`MMZero.keep_rule` declares and what the task-set gate checks; the loop's
`band_low` / `band_high` are not used by MM-Zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from recipes.core.config import LoopConfig, hfield


@dataclass
class MMZeroConfig(LoopConfig):
    """MM-Zero: Proposer (text) -> Coder (program -> sandboxed render) -> Solver x m on both questions -> Solver GRPO."""

    render_size: int = hfield(64, "Side of the rendered images, in pixels.")
    coder_samples: int = hfield(2, "Coder programs per Proposer item inside the Proposer's reward.")
    coder_temperature: float = hfield(1.0, "The Coder's sampling temperature inside the Proposer's reward.")
    coder_max_new_tokens: int = hfield(1024, "Reply length limit of the Coder.")
    allow_python: bool = hfield(True, "Render Python programs too (the paper's form); False renders SVG only (released code).")
    easy_min: float = hfield(0.5, "Keep an easy question when the Solver's consistency c is at least this.")
    hard_low: float = hfield(0.25, "Keep a hard question when c is at least this (and its easy question passed) ...")
    hard_high: float = hfield(0.75, "... and at most this.")
    bleu_threshold: float = hfield(0.5, "BLEU distance below which two proposals are one cluster (diversity penalty).")
    render_wall_seconds: float = hfield(5.0, "Safety bound on one render's run time in the sandbox (a hostile program is killed).")


PROFILES: dict[str, dict] = {
    # Each role trains ~20 steps per iteration (recipes.md); lr 1e-6, KL 1e-2 from the shared pieces.
    "paper": {
        "images_per_iteration": 256, "task_maker_images": 128, "task_max_new_tokens": 512, "coder_samples": 4,
        "solver": {"num_generations": 5, "steps": 20, "prompts_per_step": 16, "max_completion_length": 1024},
        "task_makers": {"proposer": {"num_generations": 4, "steps": 20, "prompts_per_step": 16, "max_completion_length": 512},
                        "coder": {"num_generations": 4, "steps": 20, "prompts_per_step": 16, "max_completion_length": 1024}},
    },
    # As V-Zero's embedded profile: lr 1e-4 for the tiny model, temperature 0.7 keeps its formats readable.
    "embedded": {
        "images_per_iteration": 128, "task_maker_images": 16, "eval_images": 150, "task_max_new_tokens": 160,
        "task_temperature": 0.7, "engine_batch_size": 64,
        "coder_samples": 1, "coder_temperature": 0.7, "coder_max_new_tokens": 256,
        "solver": {"num_generations": 5, "steps": 20, "prompts_per_step": 8, "learning_rate": 1e-4,
                   "max_completion_length": 12, "save_steps": 5},
        "task_makers": {
            "proposer": {"num_generations": 4, "steps": 4, "prompts_per_step": 4, "learning_rate": 1e-4, "temperature": 0.7,
                         "max_completion_length": 160, "save_steps": 2},
            "coder": {"num_generations": 4, "steps": 4, "prompts_per_step": 4, "learning_rate": 1e-4, "temperature": 0.7,
                      "max_completion_length": 256, "save_steps": 2},
        },
    },
    # Seconds-long: every step runs, nothing is measured. Wide filters keep any majority-labeled question;
    # 24 proposals so that a few render even when the warm start mixes in every recipe's formats;
    # temperature 0.3 keeps a barely warm-started ~1M model's long formats mostly intact (greedy would
    # give one proposal: the Proposer's prompt is always the same).
    "smoke": {
        "m": 4, "images_per_iteration": 24, "task_maker_images": 2, "eval_images": 4, "task_max_new_tokens": 160,
        "engine_batch_size": 16, "task_temperature": 0.3,
        "coder_samples": 1, "coder_temperature": 0.3, "coder_max_new_tokens": 256, "easy_min": 0.0, "hard_low": 0.0,
        "hard_high": 1.0,
        "solver": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4,
                   "max_completion_length": 8, "save_steps": 1},
        "task_makers": {
            "proposer": {"num_generations": 2, "steps": 1, "prompts_per_step": 1, "learning_rate": 1e-4, "temperature": 0.3,
                         "max_completion_length": 160, "save_steps": 1},
            "coder": {"num_generations": 2, "steps": 1, "prompts_per_step": 1, "learning_rate": 1e-4, "temperature": 0.3,
                      "max_completion_length": 256, "save_steps": 1},
        },
    },
}
