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

With the prompts (TRL passes them as `prompts`), a boxed option text counts as its letter:

    >>> q = "What color is it?\\nA. red\\nB. blue\\nC. green\\nD. black\\nAnswer with one of the options in \\\\boxed{}."
    >>> solver_accuracy(["\\\\boxed{blue}", "\\\\boxed{pink}"], pseudo_label=["B", "B"], prompts=[q, q])
    [1.0, 0.0]
    >>> choice_format(["\\\\boxed{blue}", "\\\\boxed{pink}"], prompts=[q, q])
    [1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

from models.formats import extract_choice, prompt_text, read_reply

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


def _answers(completions: Sequence, prompts: Sequence | None) -> list[str | None]:
    """Each completion's answer: read against its prompt's options when prompts are given, else a boxed letter."""
    if prompts is None:
        return [extract_choice(completion_text(c)) for c in completions]
    return [read_reply(completion_text(c), prompt_text(p)) for c, p in zip(completions, prompts)]


def solver_accuracy(completions: Sequence, pseudo_label: Sequence[str], prompts: Sequence | None = None, **_) -> list[float]:
    """1 if the completion's answer (option letter; a boxed option text counts as its letter) equals the label, else 0."""
    return [1.0 if a is not None and a == label else 0.0 for a, label in zip(_answers(completions, prompts), pseudo_label)]


def choice_format(completions: Sequence, prompts: Sequence | None = None, **_) -> list[float]:
    """1 if the completion boxes a valid answer: one of the options (its text or letter), or yes/no for a yes/no question.

    TRL decodes completions without special tokens, so an accuracy reward
    alone cannot tell an empty answer from a wrong one; this term can. With
    boxed option texts it also rewards validity: a boxed text that is none of
    the options scores 0.
    """
    return [1.0 if a is not None else 0.0 for a in _answers(completions, prompts)]
