"""V-Zero's configuration: the shared `LoopConfig` and its three profiles, as data.

V-Zero has no knobs of its own beyond the loop's; its profiles are the
released scripts' settings ("paper"), the tiny model on CPU ("embedded") and
a seconds-long check ("smoke").
"""

from __future__ import annotations

from dataclasses import dataclass

from recipes.core.config import LoopConfig


@dataclass
class VZeroConfig(LoopConfig):
    """V-Zero: Questioner -> Solver x m -> majority label and c -> band filter -> Solver GRPO."""


PROFILES: dict[str, dict] = {
    # V-Zero's released scripts: Questioner n = 4, Solver n = 5; lr 1e-6, KL 1e-2.
    "paper": {
        "solver": {"num_generations": 5, "steps": 30, "prompts_per_step": 16, "max_completion_length": 1024},
        "task_makers": {"questioner": {"num_generations": 4, "steps": 10, "prompts_per_step": 16, "max_completion_length": 512}},
    },
    # The tiny model needs a far larger learning rate (1e-4; 5e-4 collapsed in probes) and short completions.
    "embedded": {
        # ~half of a tiny Questioner's questions are malformed at first: ask on enough images that
        # the Solver sees each kept task about once or twice, not five times
        "images_per_iteration": 256,
        "task_maker_images": 32,
        # the test split of the base model's card (150 images, ~550 questions: +-4 points at 95%), so the base shows one
        # held-out figure everywhere; each model costs greedy + m samples per question, the parent's are reused
        "eval_images": 150,
        "task_max_new_tokens": 128,
        # a few-million-parameter model loses the format at temperature 1.0; 0.7 keeps most questions parseable
        "task_temperature": 0.7,
        "engine_batch_size": 64,
        "solver": {"num_generations": 5, "steps": 20, "prompts_per_step": 8, "learning_rate": 1e-4,
                   "max_completion_length": 12, "save_steps": 5},
        "task_makers": {"questioner": {"num_generations": 4, "steps": 6, "prompts_per_step": 4, "learning_rate": 1e-4,
                                       "temperature": 0.7, "max_completion_length": 128, "save_steps": 3}},
    },
    # Seconds-long iteration for tests and install checks: it exercises every step and measures
    # nothing. Greedy questions and a [0, 1] band keep any majority-labeled task, so a barely
    # warm-started ~1M model still yields a task set (band logic is unit-tested on its own).
    "smoke": {
        "m": 4, "band_low": 0.0, "band_high": 1.0, "images_per_iteration": 8, "task_maker_images": 4, "eval_images": 4,
        "task_max_new_tokens": 96, "engine_batch_size": 16, "task_temperature": 0.0,
        "solver": {"num_generations": 2, "steps": 2, "prompts_per_step": 2, "learning_rate": 1e-4,
                   "max_completion_length": 8, "save_steps": 1},
        "task_makers": {"questioner": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4,
                                       "temperature": 0.3, "max_completion_length": 96, "save_steps": 1}},
    },
}
