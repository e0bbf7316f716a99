"""Per-reply rules, table-driven with hand-made replies (including the tricky ones)."""

import doctest

import pytest

import evaluation.answers
from evaluation.answers import (
    EXTRACTED_FROM,
    chartqa_correct,
    choose_option,
    exact_match,
    gold_yes_no,
    infer_option,
    levenshtein,
    mathvista_correct,
    mathvista_judgement,
    open_answer,
    relaxed_match,
    short_answer,
    short_answer_from,
    yes_no,
    yes_no_from,
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


@pytest.mark.parametrize(
    "reply, expected",
    [
        # a letter in the box, in the forms models write
        ("\\boxed{B}", ("B", "boxed_letter")),
        ("\\boxed{(c)}", ("C", "boxed_letter")),
        ("\\boxed{B.}", ("B", "boxed_letter")),
        ("\\boxed{B. blue circle}", ("B", "boxed_letter")),
        ("\\boxed{(A) red}", ("A", "boxed_letter")),
        # an option's text in the box: exact after VQA normalisation
        ("It is blue. \\boxed{blue circle}", ("B", "boxed_option_text")),
        ("\\boxed{The blue circle.}", ("B", "boxed_option_text")),
        ("\\boxed{Green}", ("C", "boxed_option_text")),
        ("\\boxed{3}", ("D", "boxed_option_text")),  # a number option, not a letter
        ("\\boxed{three}", ("D", "boxed_option_text")),  # number words read as digits
        ("A \\boxed{blue circle}", ("B", "boxed_option_text")),  # the box wins over a stray letter
        # else the one option containing it (or contained in it), as whole words
        ("\\boxed{circle}", ("B", "boxed_option_contained")),
        ("\\boxed{a red one}", ("A", "boxed_option_contained")),
        # a box naming no option: VLMEvalKit's rule on the whole reply
        ("\\boxed{purple}", (None, "none")),
        ("\\boxed{E}", (None, "none")),
        ("\\boxed{}", (None, "none")),
        ("I pick B", ("B", "letter")),
        ("It is the blue circle.", ("B", "option_text")),
        ("", (None, "none")),
    ],
)
def test_choose_option_reads_boxed_letters_and_option_texts(reply, expected):
    assert choose_option(reply, OPTS) == expected
    assert expected[1] in EXTRACTED_FROM


@pytest.mark.parametrize(
    "options, reply, expected",
    [
        ({"A": "red", "B": "dark red"}, "\\boxed{red}", ("A", "boxed_option_text")),  # exact before containment
        ({"A": "red", "B": "dark red"}, "\\boxed{Dark red}", ("B", "boxed_option_text")),
        ({"A": "dark red", "B": "dark blue"}, "\\boxed{dark}", (None, "none")),  # contained in both
        ({"A": "red", "B": "reddish"}, "\\boxed{red}", ("A", "boxed_option_text")),
        ({"A": "reddish", "B": "blue"}, "\\boxed{red}", (None, "none")),  # whole words only
        ({"A": "Red", "B": "red"}, "\\boxed{red}", (None, "none")),  # two options read the same
    ],
)
def test_boxed_option_text_must_name_one_option(options, reply, expected):
    assert choose_option(reply, options) == expected


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
    "reply, expected",
    [
        ("\\boxed{42} is it", ("42", "boxed")),
        ("so the answer is: \"blue\".", ("blue", "answer_is")),
        ("Blue.", ("Blue", "whole_reply")),
    ],
)
def test_short_answer_from_says_where(reply, expected):
    assert short_answer_from(reply) == expected


@pytest.mark.parametrize(
    "reply, expected",
    [
        # a box holding only a letter is no answer where there are no options: the stated one is
        ("a circle \\boxed{B}", ("a circle", "text_beside_boxed_letter")),
        ("blue \\boxed{(b)}", ("blue", "text_beside_boxed_letter")),
        ("The answer is circle. \\boxed{C}", ("circle", "text_beside_boxed_letter")),
        ("\\boxed{B}", ("B", "boxed")),  # nothing else said: B is the answer
        ("\\boxed{B} **", ("B", "boxed")),
        ("\\boxed{circle}", ("circle", "boxed")),
        ("circle \\boxed{a circle}", ("a circle", "boxed")),
        ("The answer is 3.", ("3", "answer_is")),
        ("Circle.", ("Circle", "whole_reply")),
    ],
)
def test_open_answer(reply, expected):
    assert open_answer(reply) == expected


@pytest.mark.parametrize("reply, expected", [("Yes, it does", ("yes", "yes_no_words")), ("maybe", ("unknown", "none"))])
def test_yes_no_from(reply, expected):
    assert yes_no_from(reply) == expected


@pytest.mark.parametrize(
    "reply, gold, correct",
    [
        ("a circle \\boxed{B}", "a circle", True),
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


@pytest.mark.parametrize(
    "reply, gold, item, source",
    [
        ("4", "4", MC, "equals_choice"),
        ("(B)", "4", MC, "whole_reply"),
        ("3.0", "3", INT, "number"),
        ("The answer is 3.0", "3", INT, "answer_is"),
        ("seven apples", "7", INT, "none"),
        ("", "4", MC, "none"),
    ],
)
def test_mathvista_says_where_it_read_the_answer(reply, gold, item, source):
    pred, ok, where = mathvista_judgement(reply, gold, **item)
    assert where == source and (pred, ok) == mathvista_correct(reply, gold, **item)


def test_mathvista_judge_extracts_when_the_rule_cannot():
    def judge(question, reply, options):
        return "7"

    assert mathvista_correct("seven apples", "7", **INT, judge=judge) == ("7", True)


@pytest.mark.parametrize("a, b, d", [("kitten", "sitting", 3), ("", "abc", 3), ("four", "four", 0), ("fuor", "four", 2)])
def test_levenshtein(a, b, d):
    assert levenshtein(a, b) == d == levenshtein(b, a)
