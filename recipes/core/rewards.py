"""The shared reward pieces, in TRL's contract: `fn(completions, **columns) -> list[float]`.

`completions` are what GRPOTrainer passes (conversational: a list of messages
per completion, or plain strings); every other dataset column arrives as a
keyword list. What every recipe shares lives here: reading a completion, the
frontier uncertainty `min(c, 1 - c)`, and the Solver's reward (0.9 accuracy
against the pseudo-label + 0.1 format). A recipe's own rewards live in its
package. Scalar formulas are pure functions, table-tested against recipes.md.

    >>> uncertainty(0.5), uncertainty(0.8), uncertainty(1.0)
    (0.5, 0.19999999999999996, 0.0)
    >>> solver_accuracy([[{"role": "assistant", "content": "\\\\boxed{B}"}], "\\\\boxed{C}"], pseudo_label=["B", "B"])
    [1.0, 0.0]
    >>> choice_format(["\\\\boxed{B}", "B", "\\\\boxed{blue}"])
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

from models.formats import extract_choice

MALFORMED = -1.0


def completion_text(completion) -> str:
    """Text of one TRL completion: a string, or the content of its (last) assistant message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal content blocks
            return "".join(block.get("text", "") for block in content if isinstance(block, dict))
        return str(content)
    return ""


def uncertainty(c: float) -> float:
    """min(c, 1 - c): peaks at 0.5 when the Solver is split (released code; R-Zero's paper uses twice this)."""
    return min(c, 1.0 - c)


def solver_accuracy(completions: Sequence, pseudo_label: Sequence[str], **_) -> list[float]:
    """1 if the completion's boxed option letter equals the (majority-vote) label, else 0."""
    return [1.0 if extract_choice(completion_text(c)) == label else 0.0 for c, label in zip(completions, pseudo_label)]


def choice_format(completions: Sequence, **_) -> list[float]:
    """1 if the completion ends its answer as `\\boxed{<letter A-D>}`.

    TRL decodes completions without special tokens, so an accuracy reward
    alone cannot tell an empty answer from a wrong one; this term can.
    """
    return [1.0 if extract_choice(completion_text(c)) is not None else 0.0 for c in completions]
