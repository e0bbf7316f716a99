"""Vision-Zero's configuration: `LoopConfig` plus the game's knobs and Iterative-SPO's, and its profiles as data.

Vision-Zero keeps a game for the decision phase when enough of its clues were
well formed (`min_well_formed_clues`): that is its declared keep rule; the
consistency band does not apply to games.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from recipes.core.config import LoopConfig, hfield
from recipes.visionzero.game import PhaseConfig


@dataclass
class VisionZeroConfig(LoopConfig):
    """Vision-Zero: clue phase (player, self-play GRPO) and decision phase (solver, RLVR), alternated by Iterative-SPO."""

    n_players: int = hfield(4, "Players per game (the released script: 4); one of them is the spy.")
    clue_rounds: int = hfield(2, "Clue rounds before the vote.")
    clue_max_new_tokens: int = hfield(32, "Reply length limit of a clue.")
    clue_temperature: float = hfield(1.0, "Sampling temperature of the clues.")
    na_vote: float = hfield(0.0, "Civilian vote reward for N/A before the suspicion penalty (published formula: no term).")
    vote_penalty: float = hfield(0.6, "Weight of the votes a player receives, subtracted from its reward.")
    misled_weight: float = hfield(0.5, "Spy's bonus per civilian who voted for another civilian.")
    ema_alpha: float = hfield(0.9, "EMA factor of the per-role reward baseline (the role advantage).")
    min_well_formed_clues: int = hfield(1, "A game with fewer well-formed clues carries no information and is not kept.")
    transcripts_rendered: int = hfield(3, "Games rendered in full in the task set's metadata.")
    phase: PhaseConfig = hfield(default_factory=PhaseConfig, help="Iterative-SPO's switching rule between the two phases.")


PROFILES: dict[str, dict] = {
    # released script: 4 players, 2 clue rounds; images_per_iteration = games per iteration
    "paper": {
        "images_per_iteration": 256, "task_maker_images": 64, "vote_max_new_tokens": 64, "clue_max_new_tokens": 128,
        "solver": {"num_generations": 8, "steps": 20, "prompts_per_step": 16, "max_completion_length": 256},
        "task_makers": {"player": {"num_generations": 8, "steps": 20, "prompts_per_step": 16, "max_completion_length": 256}},
    },
    "embedded": {
        "images_per_iteration": 64, "task_maker_images": 8, "eval_images": 150, "vote_max_new_tokens": 12, "engine_batch_size": 64,
        "clue_temperature": 0.7, "phase": asdict(PhaseConfig(cycle_steps=10)),
        "solver": {"num_generations": 4, "steps": 10, "prompts_per_step": 8, "learning_rate": 1e-4, "temperature": 0.7,
                   "max_completion_length": 12, "save_steps": 5},
        "task_makers": {"player": {"num_generations": 4, "steps": 6, "prompts_per_step": 4, "learning_rate": 1e-4,
                                   "temperature": 0.7, "max_completion_length": 32, "save_steps": 3}},
    },
    # Seconds-long iteration: every step runs, nothing is measured. A barely warm-started ~1M model
    # rarely writes a well-formed clue, so games are kept without one (the rule is unit-tested on its own).
    "smoke": {
        "m": 4, "band_low": 0.0, "band_high": 1.0, "images_per_iteration": 4, "task_maker_images": 2, "eval_images": 4,
        "vote_max_new_tokens": 8, "engine_batch_size": 32,
        "clue_max_new_tokens": 16, "clue_temperature": 0.7, "min_well_formed_clues": 0, "phase": asdict(PhaseConfig(cycle_steps=1)),
        "solver": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4, "max_completion_length": 8,
                   "save_steps": 1},
        "task_makers": {"player": {"num_generations": 2, "steps": 1, "prompts_per_step": 2, "learning_rate": 1e-4,
                                   "temperature": 0.7, "max_completion_length": 16, "save_steps": 1}},
    },
}
