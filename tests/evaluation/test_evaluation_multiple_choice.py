"""choice_accuracy (the warm start's held-out report): boxed letters and boxed option texts both count."""

from types import SimpleNamespace

import pytest

from evaluation.multiple_choice import choice_accuracy, options_in_prompt
from models.formats import solver_prompt, solver_target


class Fixed:
    name = "fixed"

    def __init__(self, replies):
        self.replies = replies

    def generate(self, requests, params):
        assert params.temperature == 0.0 and len(requests) == len(self.replies)
        return [[r] for r in self.replies]


def example(task_type, target):
    prompt = solver_prompt("Which colour is the shape?", ["red", "blue", "green", "pink"])
    return SimpleNamespace(prompt=prompt, images=[], target=target, task_type=task_type)


def test_options_in_prompt():
    assert options_in_prompt(solver_prompt("Q?", ["red", "blue", "green", "pink"])) == {"A": "red", "B": "blue", "C": "green", "D": "pink"}
    assert options_in_prompt("no options here") == {}


@pytest.mark.parametrize("target", [solver_target("B", "blue"), "\\boxed{blue}"])
def test_choice_accuracy_reads_letters_and_option_texts(target):
    examples = [example("color", target) for _ in range(4)]
    replies = ["blue \\boxed{B}", "\\boxed{blue}", "\\boxed{red}", "B"]
    acc, rows = choice_accuracy(Fixed(replies), examples)
    assert [r["correct"] for r in rows] == [True, True, False, False]
    assert [r["extracted_from"] for r in rows] == ["boxed_letter", "boxed_option_text", "boxed_option_text", "none"]
    assert [r["gold"] for r in rows] == ["B"] * 4
    assert (acc["all"].correct, acc["all"].n) == (2, 4) and acc["color"].n == 4


def test_choice_accuracy_without_readable_options_still_reads_letters():
    ex = SimpleNamespace(prompt="Pick one.", images=[], target="\\boxed{C}", task_type="t")
    acc, rows = choice_accuracy(Fixed(["\\boxed{C}"]), [ex])
    assert rows[0]["correct"] and acc["all"].correct == 1
