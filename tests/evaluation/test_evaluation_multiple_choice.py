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


class LooksAtTheImage:
    """Answers the image's top-left pixel colour name when the image has content, else always 'red' (a prior)."""

    name = "looks"

    def generate(self, requests, params):
        out = []
        for r in requests:
            im = r.images[0]
            uniform = len(im.getcolors(im.width * im.height) or []) == 1
            out.append(["\\boxed{red}" if uniform else "\\boxed{" + ("blue" if im.getpixel((0, 0)) == (0, 0, 255) else "green") + "}"])
        return out


def test_image_dependence_pairs_real_and_blank_images():
    from dataclasses import dataclass, field

    from PIL import Image, ImageDraw

    from evaluation.multiple_choice import blank_like, image_dependence

    @dataclass
    class Ex:
        prompt: str
        target: str
        images: list = field(default_factory=list)
        task_type: str = "color"

    def picture(fill):
        im = Image.new("RGB", (16, 16), (255, 255, 255))
        ImageDraw.Draw(im).rectangle([0, 0, 3, 3], fill=fill)
        return im

    prompt = solver_prompt("Which colour is the shape?", ["red", "blue", "green", "pink"])
    examples = [Ex(prompt, "\\boxed{blue}", [picture((0, 0, 255))]) for _ in range(6)] + [Ex(prompt, "\\boxed{red}", [picture((255, 0, 0))])] * 2
    blank = blank_like(examples[0].images[0])
    assert blank.size == (16, 16) and blank.getcolors() == [(256, (255, 255, 255))]  # the background, uniform
    d = image_dependence(LooksAtTheImage(), examples)
    assert d["real"]["accuracy"] == 6 / 8 and d["accuracy"] == 2 / 8  # blank: the prior 'red' is right twice
    assert (d["gained"], d["lost"]) == (6, 2)
