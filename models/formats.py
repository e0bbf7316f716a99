"""The answer formats every recipe shares: Solver prompts, taught replies, and reading replies back.

All four published recipes ask the Solver for a final answer in `\\boxed{}`. Three
kinds of question exist here, the three that public VQA benchmarks use:

- ``mc``: four lettered options; the taught reply boxes the option's *text*
  (`\\boxed{red}`). Reading a reply accepts the text or the letter
  (`\\boxed{B}`, what public multiple-choice benchmarks and large models write)
  and maps both to the option letter, so scoring and majority votes work on
  letters as before.
- ``yesno``: no options; `\\boxed{yes}` or `\\boxed{no}`.
- ``open``: no options; one word or number, `\\boxed{red}` / `\\boxed{3}`.

Why the option text and not its letter: a tiny model trained from scratch learns
image -> "red" far sooner than image -> "the letter printed in front of red"; on
the same init and budget the boxed letter stayed at chance (23.8%) while the
boxed text reached 46.2% (docs/efficacy.md). A reply whose boxed text is none
of the options is *invalid*: the vote ignores it and the format reward says so.

Keeping the formats in one module means the warm start, the task builders,
the reward functions and the evaluation agree byte for byte.

    >>> extract_boxed("so it is \\\\boxed{B}.")
    'B'
    >>> extract_choice("\\\\boxed{(c)}")
    'C'
    >>> extract_choice("\\\\boxed{blue}", ["red", "blue", "green", "black"])
    'B'
    >>> extract_answer("\\\\boxed{Blue}", ["red", "blue", "green", "black"])
    ('B', 'text')
    >>> extract_answer("\\\\boxed{pink}", ["red", "blue", "green", "black"])
    (None, 'invalid')
    >>> extract_answer("\\\\boxed{three}", kind="open")
    ('3', 'text')
    >>> solver_target("B", "blue"), solver_target("yes", kind="yesno")
    ('\\\\boxed{blue}', '\\\\boxed{yes}')
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LETTERS = ("A", "B", "C", "D")
ANSWER_KINDS = ("mc", "yesno", "open")

# One instruction per kind: for the tiny model it is also what tells the three formats apart.
INSTRUCTIONS = {
    "mc": "Answer with one of the options in \\boxed{}.",
    "yesno": "Answer yes or no in \\boxed{}.",
    "open": "Answer with one word or number in \\boxed{}.",
}
SOLVER_INSTRUCTION = INSTRUCTIONS["mc"]  # the multiple-choice instruction, under its old name
LETTER_INSTRUCTION = "Answer with the option letter in \\boxed{}."  # the previous MC instruction (still read)

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LETTER = re.compile(r"^\(?([A-Da-d])\)?[.)]?$")
_OPTION_LINE = re.compile(r"^([A-D])\. (.+)$")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}


def format_options(options: Sequence[str]) -> str:
    if len(options) != 4:
        raise ValueError(f"a multiple-choice question needs exactly 4 options A-D, got {len(options)}: {list(options)}")
    return "\n".join(f"{letter}. {opt}" for letter, opt in zip(LETTERS, options))


def infer_kind(options: Sequence[str] | None, kind: str | None = None) -> str:
    """The answer kind: `kind` if given, else "mc" with options and "open" without."""
    if kind is None:
        return "mc" if options else "open"
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {ANSWER_KINDS}")
    if kind == "mc" and not options:
        raise ValueError("a multiple-choice (mc) question needs its 4 options")
    return kind


def solver_prompt(question: str, options: Sequence[str] | None = None, kind: str | None = None) -> str:
    """The Solver's user text (the image is shown before it).

    `solver_prompt(q, options)` is the 4-option prompt, as before; without options
    the question is open (`kind="open"`) or yes/no (`kind="yesno"`).
    """
    kind = infer_kind(options, kind)
    if kind == "mc":
        return f"{question}\n{format_options(options)}\n{INSTRUCTIONS['mc']}"
    return f"{question}\n{INSTRUCTIONS[kind]}"


def solver_target(answer: str, answer_text: str | None = None, kind: str = "mc") -> str:
    """The reply taught in the warm start.

    Multiple choice: the option's text boxed (`solver_target("B", "blue")` ->
    `\\boxed{blue}`); without the text, the letter (`\\boxed{B}`). Yes/no and
    open: the answer boxed.
    """
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; expected one of {ANSWER_KINDS}")
    if kind == "mc":
        return f"\\boxed{{{answer_text}}}" if answer_text else f"\\boxed{{{answer}}}"
    return f"\\boxed{{{answer_text or answer}}}"


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`, stripped; None if there is none."""
    found = _BOXED.findall(text or "")
    return found[-1].strip() if found else None


def normalize_answer(text: str) -> str:
    """Lower case, outer punctuation and articles dropped, number words as digits ('Three.' -> '3')."""
    t = " ".join((text or "").lower().replace("_", " ").split()).strip(" .,:;!?\"'`*()")
    t = re.sub(r"^(the|a|an) ", "", t)
    return _NUMBER_WORDS.get(t, t)


def extract_answer(reply: str, options: Sequence[str] | None = None, kind: str | None = None) -> tuple[str | None, str]:
    """(value, how) read from a reply's last `\\boxed{}`.

    Multiple choice: value is the option letter; how is "letter" (a boxed
    letter), "text" (a boxed option text) or "invalid" (neither). Yes/no:
    "yes"/"no" or invalid. Open: the normalised text. Without any box: (None,
    "missing").
    """
    kind = infer_kind(options, kind)
    boxed = extract_boxed(reply)
    if boxed is None:
        return None, "missing"
    if kind == "mc":
        # Order matters where an option text is itself a letter (chart labels "a".."z"): an exact
        # option text first, then an upper-case letter (the option letters are upper case), then
        # a loosely matched text, then a lower-case letter.
        exact = [o.strip() for o in options]
        if boxed in exact and exact.count(boxed) == 1:
            return LETTERS[exact.index(boxed)], "text"
        m = _LETTER.match(boxed)
        if m and m.group(1).isupper():
            return m.group(1), "letter"
        norm = normalize_answer(boxed)
        texts = [normalize_answer(o) for o in options]
        if norm in texts and texts.count(norm) == 1:
            return LETTERS[texts.index(norm)], "text"
        if m:
            return m.group(1).upper(), "letter"
        return None, "invalid"
    value = normalize_answer(boxed)
    if kind == "yesno":
        return (value, "text") if value in ("yes", "no") else (None, "invalid")
    return (value, "text") if value else (None, "invalid")


def extract_choice(text: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter A-D a reply chose; None if absent or not an option.

    Without `options` only a boxed letter counts (the previous behaviour); with
    them a boxed option text counts too.
    """
    if options:
        return extract_answer(text, options, "mc")[0]
    boxed = extract_boxed(text)
    if boxed is None:
        return None
    m = _LETTER.match(boxed)
    return m.group(1).upper() if m else None


def options_from_prompt(prompt: str) -> list[str] | None:
    """The four option texts of a multiple-choice Solver prompt; None for yes/no and open prompts.

    Lets reward functions and votes map boxed texts to letters from the prompt
    alone, without an extra dataset column.
    """
    found: dict[str, str] = {}
    for line in (prompt or "").splitlines():
        m = _OPTION_LINE.match(line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip()
    if tuple(found) != LETTERS:
        return None
    return [found[x] for x in LETTERS]


def kind_of_prompt(prompt: str) -> str:
    """The answer kind a Solver prompt asks for (by its instruction; options mean multiple choice)."""
    if options_from_prompt(prompt):
        return "mc"
    last = (prompt or "").strip().splitlines()[-1:] or [""]
    for kind in ("yesno", "open"):
        if last[0] == INSTRUCTIONS[kind]:
            return kind
    return "open"


def prompt_text(prompt) -> str:
    """The user text of a prompt: a string, or TRL's conversational messages (text blocks joined)."""
    if isinstance(prompt, str):
        return prompt
    parts = []
    for msg in prompt or []:
        if msg.get("role") != "user":
            continue
        content = msg.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts += [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(parts)


def read_reply(reply: str, prompt: str) -> str | None:
    """The answer a reply gives to `prompt`, in the form labels use: a letter (mc), yes/no, or normalised text."""
    options = options_from_prompt(prompt)
    return extract_answer(reply, options, "mc" if options else kind_of_prompt(prompt))[0]


def is_correct(reply: str, gold: str, options: Sequence[str] | None = None, kind: str | None = None) -> bool:
    """Whether `reply` gives the answer `gold` (a letter for mc; the answer text otherwise)."""
    kind = infer_kind(options, kind)
    value, _ = extract_answer(reply, options, kind)
    if value is None:
        return False
    return value == gold if kind == "mc" else value == normalize_answer(gold)
