"""The shared Questioner format, the Solver's answer format, the registry and the warm-start data."""

import pytest

from models.formats import extract_boxed, extract_choice, solver_prompt
from recipes import RECIPES, get_recipe
from recipes.core.bootstrap import bootstrap_datasets
from recipes.core.questioner import MalformedOutput, parse_questioner, questioner_target

GOOD = questioner_target("a red circle", "What color is the circle?", ["red", "blue", "green", "yellow"], "A")


def test_questioner_round_trip():
    out = parse_questioner(GOOD)
    assert out.description == "a red circle"
    assert out.question == "What color is the circle?"
    assert out.options == ("red", "blue", "green", "yellow")
    assert out.fast_answer == "A"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "missing"),
        ("<description>x</description><question>Q?\nA. a\nB. b\nC. c\nD. d</question>", "missing"),
        (GOOD.replace("D. yellow", ""), "exactly A-D"),
        (GOOD.replace("D. yellow", "D. yellow\nE. pink"), "exactly A-D"),
        (GOOD.replace("B. blue", "C. blue"), "exactly A-D"),
        (GOOD.replace("blue", "red"), "distinct"),
        (GOOD.replace("<answer>A</answer>", "<answer>E</answer>"), "one of A-D"),
        (GOOD.replace("<answer>A</answer>", "<answer></answer>"), "one of A-D"),
        (GOOD.replace("What color is the circle?\n", ""), "no stem"),
        (GOOD.replace("a red circle", ""), "empty description"),
    ],
)
def test_malformed_questioner_output_is_rejected_with_reason(text, reason):
    with pytest.raises(MalformedOutput, match=reason):
        parse_questioner(text)


@pytest.mark.parametrize(
    "reply, boxed, choice",
    [
        ("\\boxed{B}", "B", "B"),
        ("I think \\boxed{A} no wait \\boxed{ c }", "c", "C"),
        ("\\boxed{(D)}", "(D)", "D"),
        ("\\boxed{blue}", "blue", None),
        ("B", None, None),
        ("\\boxed{}", "", None),
    ],
)
def test_answer_extraction(reply, boxed, choice):
    assert extract_boxed(reply) == boxed
    assert extract_choice(reply) == choice


def test_solver_prompt_requires_four_options():
    with pytest.raises(ValueError, match="exactly 4 options"):
        solver_prompt("Q?", ["a", "b", "c"])


def test_registry_and_bootstrap_sets_are_disjoint():
    assert "vzero" in RECIPES and get_recipe("vzero").roles == ("questioner", "solver")
    with pytest.raises(KeyError, match="registered"):
        get_recipe("nope")
    train, held = bootstrap_datasets(12, 6, seed=0)
    kinds = {e.task_type for e in train}
    assert "questioner" in kinds and "color" in kinds
    assert all(parse_questioner(e.target) for e in train if e.task_type == "questioner")
    # no held-out image was seen in training
    train_px = {e.images[0].tobytes() for e in train if e.images}  # text-only formats (a Searcher's) have none
    assert not any(e.images[0].tobytes() in train_px for e in held)
    assert all(e.task_type != "questioner" for e in held)


def test_a_shared_format_is_taught_once():
    """V-Zero and Active-Zero both declare the Questioner format: a joint base teaches it once, not twice."""
    vz, _ = bootstrap_datasets(12, 2, seed=0, recipes=["vzero"])
    both, _ = bootstrap_datasets(12, 2, seed=0, recipes=["vzero", "activezero"])
    count = lambda xs, kind: sum(e.task_type == kind for e in xs)  # noqa: E731
    assert count(both, "questioner") == count(vz, "questioner") > 0
    assert count(both, "activezero_searcher") > 0 == count(vz, "activezero_searcher")
