"""Per-reply answer rules: what a model's text reply counts as, benchmark by benchmark.

Pure string functions, one per published rule (docs/benchmarks.md and the
shared reference give the rules; the functions follow VLMEvalKit, lmms-eval
and the MathVista repository where those define them). `evaluation.scorers`
applies them per sample and aggregates; nothing here knows about files,
models or metrics.

    >>> yes_no("Yes, there is a dog.")
    'yes'
    >>> yes_no("yes, but no")
    'unknown'
    >>> infer_option("(B)", {"A": "red", "B": "blue"})
    'B'
    >>> relaxed_match("0.31", "30%")
    True
    >>> mathvista_normalise(mathvista_extract("The answer is 3.0", [], "free_form", "integer"), [], "free_form", "integer", None)
    '3'

Each reader also says where in the reply it found the answer (`EXTRACTED_FROM`
names the values; the predictions file's `extracted_from` column holds them):

    >>> choose_option("so \\\\boxed{blue circle}", {"A": "red", "B": "blue circle"})
    ('B', 'boxed_option_text')
    >>> open_answer("a circle \\\\boxed{B}")
    ('a circle', 'text_beside_boxed_letter')

A judge (an LLM that extracts the answer) is a plug-in: any callable
`judge(question, reply, options) -> str | None`, consulted only where the
deterministic rule finds nothing. It is off unless a caller passes one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from evaluation.vqa import normalise_vqa_answer
from models.formats import extract_boxed

Judge = Callable[[str, str, dict], "str | None"]

# Where an answer was read from: the values of the predictions' `extracted_from`.
EXTRACTED_FROM = {
    "boxed": "the content of the last \\boxed{}",
    "boxed_letter": "an option letter in the last \\boxed{} (also 'B. text' or '(B)')",
    "boxed_option_text": "the last \\boxed{} equals one option's text after VQA normalisation; mapped to its letter",
    "boxed_option_contained": "the last \\boxed{} and exactly one option's text contain one another (whole words); mapped to its letter",
    "text_beside_boxed_letter": "no options: a \\boxed{} letter is no answer, so the reply's text around it is read",
    "answer_is": "what follows the last 'the answer is'",
    "whole_reply": "the whole reply",
    "letter": "exactly one option letter stands alone among the reply's last words (VLMEvalKit's rule)",
    "option_text": "exactly one option's text occurs in the reply",
    "equals_choice": "the reply equals one of the choices (MathVista)",
    "number": "the reply parses as a number (MathVista)",
    "yes_no_words": "the word yes occurs and no does not, or the reverse",
    "judge": "the judge plug-in",
    "none": "nothing could be read: scored wrong",
}

# ---------------------------------------------------------------- yes / no (POPE, MME, HallusionBench)


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", (text or "").lower()).split()


def yes_no(reply: str) -> str:
    """'yes' if the word "yes" occurs and "no" does not, 'no' for the reverse, else 'unknown'."""
    words = _words(reply)
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return "yes"
    if has_no and not has_yes:
        return "no"
    return "unknown"


def yes_no_from(reply: str) -> tuple[str, str]:
    """(yes / no / unknown, where it was read from)."""
    pred = yes_no(reply)
    return pred, "none" if pred == "unknown" else "yes_no_words"


_GOLD_YES = {"yes", "1", "true"}
_GOLD_NO = {"no", "0", "false"}


def gold_yes_no(answer: str, where: str = "gold answer") -> str:
    """A gold label as 'yes'/'no' (POPE 'yes', MME 'Yes', HallusionBench '1')."""
    a = str(answer).strip().lower()
    if a in _GOLD_YES:
        return "yes"
    if a in _GOLD_NO:
        return "no"
    raise ValueError(f"{where}: expected a yes/no gold answer (yes, no, 1, 0), found {answer!r}")


# ---------------------------------------------------------------- multiple choice (MMStar, AI2D, ScienceQA, ...)

# VLMEvalKit's can_infer_option strips these before splitting into words;
# quotes, backslash and $ are added so "\boxed{B}" and "'B'" read as B.
_MC_STRIP = ".()[],:;!*#{}\"'`\\$"
_MC_TABLE = str.maketrans({c: " " for c in _MC_STRIP})
NEAR_END_WORDS = 4  # the letter must be among the reply's last 4 words


def infer_option(reply: str, options: dict[str, str], judge: Judge | None = None, question: str = "") -> str | None:
    """The option letter a reply picks, or None; see `choose_option`."""
    return choose_option(reply, options, judge, question)[0]


def choose_option(
    reply: str, options: dict[str, str], judge: Judge | None = None, question: str = ""
) -> tuple[str | None, str]:
    """(the option letter a reply picks or None, where it was read from).

    First the last `\\boxed{}`, if any: a letter among the options, or an
    option's text (see `boxed_option`). Else VLMEvalKit's rule on the whole
    reply: exactly one of the option letters stands alone as a word (after
    stripping punctuation) among the last few words; else exactly one
    option's text occurs inside the reply (case-insensitive). Else the judge,
    if one is given; otherwise None (scored wrong).
    """
    boxed = boxed_option(reply, options)
    if boxed[0] is not None:
        return boxed
    words = (reply or "").translate(_MC_TABLE).split()
    letters = [k for k in options if k in words]
    if len(letters) == 1 and words.index(letters[0]) >= len(words) - NEAR_END_WORDS:
        return letters[0], "letter"
    low = (reply or "").lower()
    texts = [k for k, v in options.items() if v.strip() and v.strip().lower() in low]
    if len(texts) == 1:
        return texts[0], "option_text"
    if judge is not None:
        got = judge(question, reply, options)
        if got and str(got).strip().upper() in options:
            return str(got).strip().upper(), "judge"
    return None, "none"


# "B", "(b)", "B." or "B. blue circle" / "(B) blue circle" inside the box.
_BOXED_LETTER = re.compile(r"^\(?([A-Ia-i])\)?[.)]?$")
_BOXED_LETTER_THEN_TEXT = re.compile(r"^\(?([A-I])[.):]\s+\S")


def boxed_option(reply: str, options: dict[str, str]) -> tuple[str | None, str]:
    """(letter, where) from the last `\\boxed{}` of a multiple-choice reply; (None, 'none') if it names no option.

    The box may hold a letter (also '(B)', 'B.', 'B. blue'), or an option's
    text: equal to exactly one option after VQA normalisation ("The blue
    circle." reads as "blue circle"), else the one option whose text contains
    the box's, or is contained in it, as whole words ("blue" for "blue
    circle"). The exact match comes first, so "red" picks "red" over "dark
    red"; "dark" with options "dark red" and "dark blue" picks neither.
    """
    boxed = extract_boxed(reply or "")
    if boxed is None or not boxed.strip():
        return None, "none"
    m = _BOXED_LETTER.match(boxed) or _BOXED_LETTER_THEN_TEXT.match(boxed)
    if m and m.group(1).upper() in options:
        return m.group(1).upper(), "boxed_letter"
    box = normalise_vqa_answer(boxed)
    if not box:
        return None, "none"
    norm = {k: normalise_vqa_answer(v) for k, v in options.items()}
    exact = [k for k, v in norm.items() if v and v == box]
    if len(exact) == 1:
        return exact[0], "boxed_option_text"
    if exact:
        return None, "none"  # two options read the same: no way to choose
    padded = f" {box} "
    contained = [k for k, v in norm.items() if v and (f" {v} " in padded or padded in f" {v} ")]
    if len(contained) == 1:
        return contained[0], "boxed_option_contained"
    return None, "none"


# ---------------------------------------------------------------- numbers and short answers

_ANSWER_IS = re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE)


def short_answer(reply: str) -> str:
    """The final short answer in a reply; see `short_answer_from`."""
    return short_answer_from(reply)[0]


def short_answer_from(reply: str) -> tuple[str, str]:
    """(the final short answer in a reply, where it was read from): the content of the last
    \\boxed{}, or what follows the last 'the answer is', else the reply; surrounding quotes,
    '**' and a trailing period removed."""
    text = (reply or "").strip()
    boxed = extract_boxed(text)
    source = "whole_reply"
    if boxed is not None:
        text, source = boxed, "boxed"
    else:
        found = _ANSWER_IS.findall(text)
        if found:
            text, source = found[-1].splitlines()[0], "answer_is"
    text = text.strip().strip("*").strip()
    if text.endswith(".") and not re.search(r"\.\w+\.$", text):  # keep "U.S." intact
        text = text[:-1]
    return text.strip().strip("*").strip("\"'`").strip(), source


# Same pattern as models.formats.extract_boxed, kept here for the match's position.
_BOXED_SPAN = re.compile(r"\\boxed\{([^{}]*)\}")


def open_answer(reply: str) -> tuple[str, str]:
    """(short answer, where) for a question without options.

    As `short_answer_from`, except that a `\\boxed{}` holding only a letter
    is not taken as the answer when the reply says something else: a model
    trained on lettered options writes "a circle \\boxed{B}", and its stated
    answer is "a circle". A reply that is only "\\boxed{B}" still answers B.
    """
    text = (reply or "").strip()
    spans = list(_BOXED_SPAN.finditer(text))
    if spans and _BOXED_LETTER.match(spans[-1].group(1).strip()):
        rest = (text[: spans[-1].start()] + " " + text[spans[-1].end() :]).strip()
        if _BOXED_SPAN.sub(" ", rest).strip(" .:*"):
            return short_answer_from(_BOXED_SPAN.sub(" ", rest))[0], "text_beside_boxed_letter"
    return short_answer_from(text)


def parse_number(text: str, percent: bool = False) -> float | None:
    """float(text) after trimming; with `percent`, 'x%' becomes x/100 (ChartQA's rule)."""
    t = (text or "").strip()
    try:
        if percent and t.endswith("%"):
            return float(t[:-1].strip()) / 100.0
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


RELAXED_TOLERANCE = 0.05


def relaxed_match(pred: str, gold: str, tolerance: float = RELAXED_TOLERANCE) -> bool:
    """ChartQA relaxed accuracy for one gold answer: 5% relative error for numbers, else exact (case-insensitive).

    A gold of zero cannot carry a relative tolerance, so it falls back to the
    text comparison (as in lmms-eval).
    """
    p, g = parse_number(pred, percent=True), parse_number(gold, percent=True)
    if p is not None and g:
        return abs(p - g) / abs(g) <= tolerance
    return pred.strip().lower() == gold.strip().lower()


def chartqa_correct(reply: str, golds: Sequence[str]) -> tuple[str, bool]:
    """(extracted answer, correct): max over gold answers and over the raw and the short reply."""
    pred = short_answer(reply)
    candidates = dict.fromkeys([pred, (reply or "").strip()])
    return pred, any(relaxed_match(c, g) for c in candidates for g in golds)


def _norm_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s.%-]", " ", text.lower()).split()).strip(" .")


def exact_match(reply: str, gold: str) -> tuple[str, bool]:
    """(extracted, correct) for free-form answers (`open_answer`, then `same_number_or_text`)."""
    pred = open_answer(reply)[0]
    return pred, same_number_or_text(pred, gold)


def same_number_or_text(pred: str, gold: str) -> bool:
    """Numbers compare by value ('3.0' == '3', '1,000' == '1000'), text case- and punctuation-insensitively."""
    p, g = parse_number(pred.replace(",", "")), parse_number(str(gold).replace(",", ""))
    if p is not None and g is not None:
        return math.isclose(p, g, rel_tol=1e-9, abs_tol=1e-9)
    return _norm_text(pred) == _norm_text(str(gold)) and _norm_text(pred) != ""


# ---------------------------------------------------------------- MathVista


def mathvista_extract(
    reply: str, choices: Sequence[str], question_type: str, answer_type: str, judge: Judge | None = None, question: str = ""
) -> str:
    """MathVista's extraction; see `mathvista_extract_from`."""
    return mathvista_extract_from(reply, choices, question_type, answer_type, judge, question)[0]


def mathvista_extract_from(
    reply: str, choices: Sequence[str], question_type: str, answer_type: str, judge: Judge | None = None, question: str = ""
) -> tuple[str, str]:
    """(extraction, where) by MathVista's rule: a reply equal to a choice or parsing as a number is
    the answer; else what follows 'The answer is'; else the judge; without a judge the whole reply
    goes on to normalisation (which reads '(B)' as a letter, or picks the nearest choice)."""
    r = (reply or "").strip()
    if not r:
        return "", "none"
    if question_type == "multi_choice" and r in choices:
        return r, "equals_choice"
    if parse_number(r) is not None:
        return r, "number"
    found = _ANSWER_IS.findall(r)
    if found:
        return short_answer("the answer is " + found[-1]), "answer_is"
    if judge is not None:
        got = judge(question, r, {chr(65 + i): c for i, c in enumerate(choices)})
        if got:
            return str(got).strip(), "judge"
    return r, "whole_reply"


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), as MathVista's get_most_similar uses."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def mathvista_normalise(
    extraction: str, choices: Sequence[str], question_type: str, answer_type: str, precision
) -> str | None:
    """MathVista's normalize_extracted_answer; None when the extraction cannot be read (scored wrong).

    Multiple choice: a letter, or '(B)' anywhere, maps to that choice's text,
    else the choice with the smallest edit distance. Integers become
    str(int(float(x))); floats are rounded to the item's precision. An empty
    extraction is None rather than the nearest choice, so a blank reply earns
    nothing.
    """
    e = (extraction or "").strip()
    if not e:
        return None
    if question_type == "multi_choice":
        if not choices:
            raise ValueError("a multi_choice MathVista item needs its choices, found none")
        letters = re.findall(r"\(([a-zA-Z])\)", e)
        if letters:
            e = letters[0].upper()
        m = re.fullmatch(r"([A-Z])[.)]?", e)
        if m and ord(m.group(1)) - 65 < len(choices):
            return str(choices[ord(m.group(1)) - 65])
        distances = [levenshtein(e[:500], str(c)) for c in choices]
        return str(choices[distances.index(min(distances))])
    try:
        if answer_type == "integer":
            return str(int(float(e)))
        if answer_type == "float":
            return str(round(float(e), int(float(precision))))
    except (TypeError, ValueError):
        return None
    return e


def mathvista_correct(
    reply: str, gold: str, choices: Sequence[str], question_type: str, answer_type: str, precision, judge: Judge | None = None
) -> tuple[str | None, bool]:
    """(normalised prediction, correct): exact comparison with the gold answer.

    The gold is also normalised the same way ("1.50" at precision 2 equals a
    predicted "1.5"), which only matters for golds not already canonical.
    """
    pred, ok, _ = mathvista_judgement(reply, gold, choices, question_type, answer_type, precision, judge)
    return pred, ok


def mathvista_judgement(
    reply: str, gold: str, choices: Sequence[str], question_type: str, answer_type: str, precision, judge: Judge | None = None
) -> tuple[str | None, bool, str]:
    """`mathvista_correct` plus where the extraction came from ('none' when it could not be read)."""
    extraction, source = mathvista_extract_from(reply, choices, question_type, answer_type, judge)
    pred = mathvista_normalise(extraction, choices, question_type, answer_type, precision)
    if pred is None:
        return None, False, "none"
    gold_norm = gold if question_type == "multi_choice" else mathvista_normalise(gold, choices, question_type, answer_type, precision)
    return pred, pred == str(gold) or pred == gold_norm, source
