"""The Solver's answer formats: prompts per kind, taught replies, and reading replies back to answers."""

import pytest

from models.formats import (
    INSTRUCTIONS,
    extract_answer,
    extract_choice,
    is_correct,
    kind_of_prompt,
    normalize_answer,
    options_from_prompt,
    prompt_text,
    read_reply,
    solver_prompt,
    solver_target,
)

OPTS = ["red", "blue", "left of", "7"]


def test_prompts_per_kind():
    assert solver_prompt("What color is it?", OPTS) == (
        "What color is it?\nA. red\nB. blue\nC. left of\nD. 7\n" + INSTRUCTIONS["mc"])
    assert solver_prompt("Is there a red circle?", kind="yesno") == "Is there a red circle?\n" + INSTRUCTIONS["yesno"]
    assert solver_prompt("How many squares are there?") == "How many squares are there?\n" + INSTRUCTIONS["open"]
    with pytest.raises(ValueError, match="needs its 4 options"):
        solver_prompt("q?", None, "mc")
    with pytest.raises(ValueError, match="exactly 4 options"):
        solver_prompt("q?", ["a", "b"])


def test_targets_box_the_option_text_and_keep_the_old_letter_form():
    assert solver_target("C", "left of") == "\\boxed{left of}"
    assert solver_target("C") == "\\boxed{C}"  # no text known: the letter, as before
    assert solver_target("no", kind="yesno") == "\\boxed{no}"
    assert solver_target("3", "3", "open") == "\\boxed{3}"


@pytest.mark.parametrize("reply, expected", [
    ("\\boxed{blue}", ("B", "text")),
    ("\\boxed{ Left of. }", ("C", "text")),
    ("\\boxed{B}", ("B", "letter")),
    ("so \\boxed{(d)}", ("D", "letter")),
    ("\\boxed{seven}", ("D", "text")),  # number words read as digits
    ("\\boxed{pink}", (None, "invalid")),
    ("blue", (None, "missing")),
])
def test_extract_answer_multiple_choice(reply, expected):
    assert extract_answer(reply, OPTS) == expected


def test_option_texts_that_are_letters_are_read_as_texts():
    """Chart labels are lower-case letters: 'a' is the option text, 'A' the first option's letter."""
    labels = ["e", "a", "k", "b"]
    assert extract_answer("\\boxed{a}", labels) == ("B", "text")
    assert extract_answer("\\boxed{A}", labels) == ("A", "letter")
    assert extract_answer("\\boxed{b}", labels) == ("D", "text")


def test_extract_answer_yesno_and_open():
    assert extract_answer("\\boxed{Yes}", kind="yesno") == ("yes", "text")
    assert extract_answer("\\boxed{maybe}", kind="yesno") == (None, "invalid")
    assert extract_answer("\\boxed{three}", kind="open") == ("3", "text")
    assert extract_answer("\\boxed{the Red}", kind="open") == ("red", "text")
    assert extract_answer("\\boxed{}", kind="open") == (None, "invalid")
    assert normalize_answer(" Blue. ") == "blue"


def test_extract_choice_keeps_its_old_contract():
    assert extract_choice("\\boxed{B}") == "B"
    assert extract_choice("\\boxed{blue}") is None  # a text needs the options to be read
    assert extract_choice("\\boxed{blue}", OPTS) == "B"


def test_prompts_say_their_options_and_kind():
    mc = solver_prompt("What color is it?", OPTS)
    assert options_from_prompt(mc) == OPTS and kind_of_prompt(mc) == "mc"
    assert options_from_prompt(solver_prompt("Is it red?", kind="yesno")) is None
    assert kind_of_prompt(solver_prompt("Is it red?", kind="yesno")) == "yesno"
    assert kind_of_prompt(solver_prompt("What color is it?")) == "open"
    old = "What color is it?\nA. red\nB. blue\nC. green\nD. black\nAnswer with the option letter in \\boxed{}."
    assert options_from_prompt(old) == ["red", "blue", "green", "black"]
    conversational = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": mc}]}]
    assert prompt_text(conversational) == mc


def test_read_reply_and_is_correct():
    mc = solver_prompt("What color is it?", OPTS)
    assert read_reply("\\boxed{blue}", mc) == "B" and read_reply("\\boxed{B}", mc) == "B"
    assert read_reply("\\boxed{pink}", mc) is None
    assert read_reply("\\boxed{no}", solver_prompt("Is it red?", kind="yesno")) == "no"
    assert is_correct("\\boxed{blue}", "B", OPTS) and not is_correct("\\boxed{red}", "B", OPTS)
    assert is_correct("\\boxed{three}", "3", kind="open") and not is_correct("\\boxed{yes}", "no", kind="yesno")
