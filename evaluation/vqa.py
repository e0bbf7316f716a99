"""The official VQA answer normalisation, for open-ended (one word / number) answers.

Open-ended benchmarks compare a model's short answer with the gold answer by
exact match after the VQA evaluation's cleaning (the `processPunctuation` and
`processDigitArticle` steps of the VQA challenge's `vqaEval.py`, which
lmms-eval and VLMEvalKit reuse): punctuation removed or turned into spaces,
number words zero..ten turned into digits, the articles a / an / the
dropped, and apostrophe-less contractions restored ("dont" -> "don't").
`evaluation.custom` applies it to custom sets (rule `vqa`); nothing here
knows about files or models.

    >>> normalise_vqa_answer("Two dogs.")
    '2 dogs'
    >>> normalise_vqa_answer("A circle") == normalise_vqa_answer("circle")
    True
    >>> vqa_exact_match("1,000", ["1000"])
    True

The rules are reproduced as published, quirks included, so that scores agree
with other harnesses: "none" becomes "0"; a comma between two digits anywhere
in the answer makes every punctuation mark vanish instead of becoming a space
("1,000 and 2/3" -> "1000 and 23"); the table's "Im" / "Ive" keys are
capitalised while the words are lower-cased first, so "im" stays "im"; and at
most 32 periods are stripped (the original passes `re.UNICODE`, 32, where
`re.sub` expects its count).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip

NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = ("a", "an", "the")
# Apostrophe, colon, period, %, $, & and * are not in the list: apostrophes
# carry the contractions, periods have their own rule below.
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")

# The original pattern reads "(?!<=\d)": a look-ahead for the text "<=digit",
# not the look-behind it seems to mean, so a period is stripped whenever no
# digit follows it ("3." -> "3", "3.5" kept, "5.a" -> "5a").
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIODS_STRIPPED_AT_MOST = 32  # int(re.UNICODE), passed as `count` in the original


def process_punctuation(text: str) -> str:
    """VQA `processPunctuation`: each mark is deleted when it touches a space (or the answer holds a
    digit-comma-digit), else replaced by a space; then periods not followed by a digit are deleted."""
    out = text
    digit_comma = _COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in PUNCTUATION:
        # The test reads the original text, not the partly cleaned one, as published.
        if (p + " " in text or " " + p in text) or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, _PERIODS_STRIPPED_AT_MOST)


def process_digit_article(text: str) -> str:
    """VQA `processDigitArticle`: lower-case, number words -> digits, drop articles, restore contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalise_vqa_answer(answer: str) -> str:
    """The VQA evaluation's cleaning of one answer: newlines and tabs to spaces, strip, then
    `process_punctuation` and `process_digit_article`."""
    text = str(answer or "").replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def vqa_exact_match(pred: str, golds: Iterable[str]) -> bool:
    """True when the normalised prediction equals one normalised gold answer (and is not empty).

    Both sides are always cleaned. The VQA script cleans them only when a
    question's ten annotators disagree, since its golds were collected in
    that form already; custom sets' golds ("Two", "a dog") were not.
    """
    p = normalise_vqa_answer(pred)
    return p != "" and any(p == normalise_vqa_answer(g) for g in golds)
