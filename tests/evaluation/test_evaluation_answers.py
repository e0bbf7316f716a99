"""Per-reply rules, table-driven with hand-made replies (including the tricky ones)."""

import doctest

import pytest

import evaluation.answers
from evaluation.answers import (
    chartqa_correct,
    exact_match,
    gold_yes_no,
    infer_option,
    levenshtein,
    mathvista_correct,
    relaxed_match,
    short_answer,
    yes_no,
)


def test_doctests():
    result = doctest.testmod(evaluation.answers)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Yes", "yes"),
        ("Yes.", "yes"),
        ("YES!", "yes"),
        ("I think yes, there is a dog.", "yes"),
        ("No", "no"),
        ("There is no dog in the image.", "no"),
        ("yes, but no", "unknown"),
        ("Not sure", "unknown"),
        ("yesterday nobody came", "unknown"),
        ("", "unknown"),
    ],
)
def test_yes_no(reply, expected):
    assert yes_no(reply) == expected


@pytest.mark.parametrize("gold, expected", [("yes", "yes"), ("Yes", "yes"), ("1", "yes"), ("No", "no"), ("0", "no")])
def test_gold_yes_no(gold, expected):
    assert gold_yes_no(gold) == expected


def test_gold_yes_no_rejects_other_labels():
    with pytest.raises(ValueError, match="maybe"):
        gold_yes_no("maybe")


OPTS = {"A": "red", "B": "blue circle", "C": "green", "D": "3"}


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("The answer is B.", "B"),
        ("Answer: (C)", "C"),
        ("\\boxed{C}", "C"),
        ("It is the blue circle.", "B"),  # option text instead of the letter
        ("GREEN", "C"),
        ("A or B", None),  # two letters: ambiguous
        ("B is right because the shape on the left side is clearly a small circle", None),  # letter not near the end
        ("b", None),  # letters are upper case, as in VLMEvalKit
        ("red or green", None),  # two option texts
        ("", None),
    ],
)
def test_infer_option(reply, expected):
    assert infer_option(reply, OPTS) == expected


def test_infer_option_text_must_be_unique():
    assert infer_option("light blue", {"A": "blue", "B": "light blue"}) is None


def test_judge_is_consulted_only_when_the_rule_fails():
    calls = []

    def judge(question, reply, options):
        calls.append(reply)
        return "d"

    assert infer_option("(A)", OPTS, judge) == "A" and calls == []
    assert infer_option("I cannot tell", OPTS, judge, "Q?") == "D" and calls == ["I cannot tell"]


@pytest.mark.parametrize(
    "pred, gold, expected",
    [
        ("31", "30", True),  # 3.3% off
        ("32", "30", False),  # 6.7% off
        ("0.31", "30%", True),  # x% is x/100
        ("30%", "0.3", True),
        ("30", "30%", False),
        ("Yes", "yes", True),
        ("Paris", "London", False),
        ("0", "0", True),  # zero gold: exact text
        ("0.0", "0", False),
    ],
)
def test_relaxed_match(pred, gold, expected):
    assert relaxed_match(pred, gold) is expected


@pytest.mark.parametrize(
    "reply, golds, extracted, correct",
    [
        ("The answer is 3.0", ["3"], "3.0", True),
        ("**45%**.", ["0.45"], "45%", True),
        ("Blue", ["red", "blue"], "Blue", True),
        ("12", ["15"], "12", False),
    ],
)
def test_chartqa_correct(reply, golds, extracted, correct):
    assert chartqa_correct(reply, golds) == (extracted, correct)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("The answer is 3.0", "3.0"),
        ("so the answer is: \"blue\".", "blue"),
        ("\\boxed{42} is it", "42"),
        ("U.S.", "U.S."),
        ("  7  ", "7"),
    ],
)
def test_short_answer(reply, expected):
    assert short_answer(reply) == expected


@pytest.mark.parametrize(
    "reply, gold, correct",
    [
        ("3.0", "3", True),
        ("The answer is 3.0", "3", True),
        ("\\boxed{42}", "42", True),
        ("1,000", "1000", True),
        ("Paris.", "paris", True),
        ("4", "3", False),
        ("", "", False),
    ],
)
def test_exact_match(reply, gold, correct):
    assert exact_match(reply, gold)[1] is correct


MC = dict(choices=["3", "4", "5"], question_type="multi_choice", answer_type="text", precision=None)
WORDS = dict(choices=["three", "four", "five"], question_type="multi_choice", answer_type="text", precision=None)
INT = dict(choices=[], question_type="free_form", answer_type="integer", precision=None)
FLOAT = dict(choices=[], question_type="free_form", answer_type="float", precision="2.0")
LIST = dict(choices=[], question_type="free_form", answer_type="list", precision=None)


@pytest.mark.parametrize(
    "reply, gold, item, extracted, correct",
    [
        ("(B)", "4", MC, "4", True),
        ("B", "4", MC, "4", True),
        ("4", "4", MC, "4", True),  # equals a choice
        ("The answer is (C).", "5", MC, "5", True),
        ("fuor", "four", WORDS, "four", True),  # nearest choice by edit distance
        ("The answer is 3.0", "3", INT, "3", True),
        ("3.0", "3", INT, "3", True),
        ("3.7", "3", INT, "3", True),  # str(int(float(x))) truncates, as published
        ("1.449", "1.45", FLOAT, "1.45", True),  # rounded to the item's precision
        ("1.4", "1.45", FLOAT, "1.4", False),
        ("The answer is 1.50", "1.5", FLOAT, "1.5", True),
        ("[1, 2, 3]", "[1, 2, 3]", LIST, "[1, 2, 3]", True),
        ("seven apples", "7", INT, None, False),  # unreadable: wrong, never a guess
        ("", "4", MC, None, False),  # a blank reply earns nothing
    ],
)
def test_mathvista(reply, gold, item, extracted, correct):
    assert mathvista_correct(reply, gold, **item) == (extracted, correct)


def test_mathvista_judge_extracts_when_the_rule_cannot():
    def judge(question, reply, options):
        return "7"

    assert mathvista_correct("seven apples", "7", **INT, judge=judge) == ("7", True)


@pytest.mark.parametrize("a, b, d", [("kitten", "sitting", 3), ("", "abc", 3), ("four", "four", 0), ("fuor", "four", 2)])
def test_levenshtein(a, b, d):
    assert levenshtein(a, b) == d == levenshtein(b, a)
