"""Majority-vote pseudo-labels and the consistency band: the label-free core of every recipe.

For a synthesized question the Solver samples m answers; the majority answer
becomes the training label and `c` is its share of the m samples (invalid
answers count in m, so a Solver that mostly fails the format is not
"confident"). A question enters Solver training only if `c` lies in the band
[lo, hi]: too easy (everyone agrees) and too hard (no agreement) carry no
signal.

    >>> majority_vote(["A", "A", "B", None])
    ('A', 0.5)
    >>> majority_vote(["A", "B"])          # a tie at the top is no majority
    (None, 0.5)
    >>> majority_vote([None, None])
    (None, 0.0)
    >>> band_reason(0.9, 0.3, 0.8), band_reason(0.2, 0.3, 0.8), band_reason(0.5, 0.3, 0.8)
    ('too_easy', 'too_hard', 'kept')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from models.formats import extract_choice
from models.generation import GenerationRequest, InferenceEngine, SamplingParams


def majority_vote(answers: Sequence[str | None]) -> tuple[str | None, float]:
    """(majority answer or None, share c of all m answers that agree with the top answer)."""
    if not answers:
        return None, 0.0
    counts = Counter(a for a in answers if a)
    if not counts:
        return None, 0.0
    ranked = counts.most_common()
    top = ranked[0][1]
    c = top / len(answers)
    if len(ranked) > 1 and ranked[1][1] == top:
        return None, c
    return ranked[0][0], c


def band_reason(c: float, lo: float, hi: float) -> str:
    if c < lo:
        return "too_hard"
    if c > hi:
        return "too_easy"
    return "kept"


def sample_choices(
    engine: InferenceEngine,
    requests: Sequence[GenerationRequest],
    m: int,
    temperature: float = 1.0,
    max_new_tokens: int = 16,
    seed: int | None = None,
) -> tuple[list[list[str]], list[list[str | None]]]:
    """m sampled Solver replies per request, batched, and their extracted option letters."""
    replies = engine.generate(requests, SamplingParams(n=m, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    return replies, [[extract_choice(r) for r in rs] for rs in replies]
