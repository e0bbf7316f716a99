"""Majority-vote pseudo-labels: the label-free core of every recipe, written once.

For a synthesized question the Solver samples m answers; the majority answer
becomes the training label and `c` is its share of the m samples (invalid
answers count in m, so a Solver that mostly fails the format is not
"confident"). `vote` is the one primitive every caller uses (the loop's
labeling, the task makers' rewards, MM-Zero's solvability check, the
pseudo-label audit): a batch of Solver requests in, one `Vote` per request
out, all of it in one batched generation call.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from models.formats import read_reply, solver_prompt
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


@dataclass(frozen=True)
class Vote:
    """The Solver's m sampled replies to one question, what was extracted from each, and their majority."""

    replies: tuple[str, ...]
    answers: tuple[str | None, ...]
    label: str | None
    c: float


def solver_request(image: Image.Image, question: str, options: Sequence[str]) -> GenerationRequest:
    """The Solver's request for a 4-option question about one image (the image is shown before the text)."""
    return GenerationRequest(solver_prompt(question, list(options)), [image])


def vote(
    engine: InferenceEngine,
    requests: Sequence[GenerationRequest],
    m: int,
    max_new_tokens: int = 16,
    seed: int | None = None,
    temperature: float = 1.0,
    extract: Callable[[str], str | None] | None = None,
) -> list[Vote]:
    """m sampled replies per request (one batched call), the extracted answers, majority label and c.

    By default each reply is read against its own prompt's options (`read_reply`): a boxed option text counts
    as its letter, yes/no and open answers are normalised, a reply that names none of the options does not vote."""
    if not requests:
        return []
    replies = engine.generate(requests, SamplingParams(n=m, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    out = []
    for req, rs in zip(requests, replies):
        answers = tuple(extract(r) if extract is not None else read_reply(r, req.prompt) for r in rs)
        label, c = majority_vote(answers)
        out.append(Vote(tuple(rs), answers, label, c))
    return out
