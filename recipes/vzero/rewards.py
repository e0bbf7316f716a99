"""V-Zero's Questioner reward: the dual track (recipes.md, "V-Zero"), in TRL's reward contract.

With `a` the Solver's majority answer to a generated question and `c` its
share: `min(c, 1 - c)` when `a` equals the Questioner's intuitive answer (the
question is answerable at a glance: reward frontier uncertainty), `0.5 * c`
when they differ (careful reasoning disagrees with intuition: reward a
question that needs reasoning), 0 without a majority, -1 for malformed output.

    >>> dual_track("A", "A", 0.6)   # Solver agrees with intuition: frontier uncertainty min(c, 1-c)
    0.4
    >>> dual_track("A", "B", 0.6)   # reasoning disagrees: 0.5 * c
    0.3
    >>> dual_track("A", None, 0.5)  # no majority
    0.0
"""

from __future__ import annotations

from models.generation import InferenceEngine
from recipes.core.questioner import try_parse
from recipes.core.rewards import MALFORMED, completion_text, uncertainty
from recipes.core.voting import solver_request, vote


def dual_track(fast_answer: str, majority: str | None, c: float) -> float:
    """V-Zero's Questioner reward for a well-formed question (malformed output is scored -1 elsewhere)."""
    if majority is None:
        return 0.0
    if majority == fast_answer:
        return uncertainty(c)
    return 0.5 * c


class QuestionerReward:
    """V-Zero's dual-track reward, computed by asking the (previous) Solver m times per generated question.

    TRL contract: `reward(completions, image, **columns) -> list[float]`.
    Malformed output scores -1; a well-formed question scores
    `dual_track(a_fast, majority, c)`. All completions of a step are voted
    on in one batched generation call. Running tallies (malformed share,
    mean c) are kept in `stats` for the checkpoint's metadata.
    """

    __name__ = "vzero_dual_track"

    def __init__(self, solver_engine: InferenceEngine, m: int, max_new_tokens: int = 16, seed: int = 0):
        self.solver = solver_engine
        self.m = m
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.stats = {"completions": 0, "malformed": 0, "c_sum": 0.0, "voted": 0, "agree_fast": 0}

    def __call__(self, completions, image, **_) -> list[float]:
        parsed = [try_parse(completion_text(c)) for c in completions]
        idx = [i for i, p in enumerate(parsed) if p is not None]
        rewards = [MALFORMED] * len(completions)
        self.stats["completions"] += len(completions)
        self.stats["malformed"] += len(completions) - len(idx)
        if idx:
            self.seed += 1
            requests = [solver_request(image[i], parsed[i].question, parsed[i].options) for i in idx]
            for i, v in zip(idx, vote(self.solver, requests, self.m, max_new_tokens=self.max_new_tokens, seed=self.seed)):
                rewards[i] = dual_track(parsed[i].fast_answer, v.label, v.c)
                self.stats["voted"] += 1
                self.stats["c_sum"] += v.c
                self.stats["agree_fast"] += int(v.label == parsed[i].fast_answer)
        return rewards

    def summary(self) -> dict:
        n, v = max(1, self.stats["completions"]), max(1, self.stats["voted"])
        return {
            "questioner_completions": self.stats["completions"],
            "questioner_malformed_rate": self.stats["malformed"] / n,
            "questioner_mean_c": self.stats["c_sum"] / v,
            "solver_agrees_with_fast_answer": self.stats["agree_fast"] / v,
        }
