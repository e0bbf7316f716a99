"""The answer formats every recipe shares: the Solver's multiple-choice prompt and `\\boxed{}` answers.

All four published recipes ask the Solver for a final answer in `\\boxed{}`
and reduce multiple-choice answers to the option letter; the format reward
checks that template. Keeping it in one module means the warm start, the
task builders, the reward functions and the evaluation agree byte for byte.

    >>> extract_boxed("so it is \\\\boxed{B}.")
    'B'
    >>> extract_choice("\\\\boxed{(c)}")
    'C'
    >>> extract_choice("no box here") is None
    True
"""

from __future__ import annotations

import re

LETTERS = ("A", "B", "C", "D")
SOLVER_INSTRUCTION = "Answer with the option letter in \\boxed{}."

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LETTER = re.compile(r"^\(?([A-Da-d])\)?[.)]?$")


def format_options(options: list[str]) -> str:
    if len(options) != 4:
        raise ValueError(f"a multiple-choice question needs exactly 4 options A-D, got {len(options)}: {options}")
    return "\n".join(f"{letter}. {opt}" for letter, opt in zip(LETTERS, options))


def solver_prompt(question: str, options: list[str]) -> str:
    """The Solver's user text for a 4-option question (the image is shown before it)."""
    return f"{question}\n{format_options(options)}\n{SOLVER_INSTRUCTION}"


def solver_target(letter: str, answer_text: str | None = None) -> str:
    """The reply taught in the warm start: the option's text, then its letter boxed.

    Naming the option first splits the task into perception ("blue") and a
    copy (the letter in front of "blue"), which a tiny model learns far faster
    than image -> letter, and gives sampling a short reasoning step.
    """
    return f"{answer_text} \\boxed{{{letter}}}" if answer_text else f"\\boxed{{{letter}}}"


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`, stripped; None if there is none."""
    found = _BOXED.findall(text or "")
    return found[-1].strip() if found else None


def extract_choice(text: str) -> str | None:
    """The option letter A-D in the last `\\boxed{}`; None if absent or not a single letter."""
    boxed = extract_boxed(text)
    if boxed is None:
        return None
    m = _LETTER.match(boxed)
    return m.group(1).upper() if m else None
