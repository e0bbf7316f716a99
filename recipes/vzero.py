"""V-Zero: a Questioner and a Solver on unlabeled images (recipes.md, "V-Zero").

The Questioner sees an image and writes a short description, a 4-option
multiple-choice question and its own immediate ("intuitive") answer; the
Solver answers the question m times and the majority answer becomes the
pseudo-label. This module holds the Questioner's prompt, its output format and
parser, and the templated bootstrap examples that teach the format in the warm
start. The loop hooks (task building, rewards) build on these.

Questioner output format (tags keep parsing unambiguous for a tiny model):

    <description>two shapes: a red circle and a blue square</description>
    <question>What color is the circle?
    A. red
    B. blue
    C. green
    D. yellow</question>
    <answer>A</answer>
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.warmstart import SupervisedExample
from recipes.base import Recipe, register_recipe
from models.formats import LETTERS, format_options

QUESTIONER_PROMPT = (
    "Describe the image briefly, then write a question about it with four options A-D, "
    "then give your immediate answer."
)

_TAGS = re.compile(
    r"<description>(?P<description>.*?)</description>\s*"
    r"<question>(?P<question>.*?)</question>\s*"
    r"<answer>(?P<answer>.*?)</answer>",
    re.DOTALL,
)
_OPTION = re.compile(r"^([A-Z])\.\s*(.+)$")


@dataclass(frozen=True)
class QuestionerOutput:
    description: str
    question: str
    options: tuple[str, str, str, str]
    fast_answer: str  # the Questioner's intuitive answer, a letter A-D


class MalformedOutput(ValueError):
    """Questioner text that does not follow the format; the message says what is wrong."""


def questioner_target(description: str, question: str, options: list[str], letter: str) -> str:
    return (
        f"<description>{description}</description>\n"
        f"<question>{question}\n{format_options(options)}</question>\n"
        f"<answer>{letter}</answer>"
    )


def parse_questioner(text: str) -> QuestionerOutput:
    """Parse a Questioner completion or raise MalformedOutput saying why.

    Well-formed means: all three tags, a non-empty question stem, exactly four
    options labelled A, B, C, D in order with distinct non-empty texts, and an
    answer that is one of those letters.
    """
    m = _TAGS.search(text or "")
    if not m:
        raise MalformedOutput("missing <description>, <question> or <answer> tags")
    lines = [ln.strip() for ln in m.group("question").strip().splitlines() if ln.strip()]
    stem = [ln for ln in lines if not _OPTION.match(ln)]
    opts = [_OPTION.match(ln) for ln in lines if _OPTION.match(ln)]
    if not stem:
        raise MalformedOutput("question has no stem")
    letters = tuple(o.group(1) for o in opts)
    if letters != LETTERS:
        raise MalformedOutput(f"options must be exactly A-D in order, found {list(letters)}")
    texts = tuple(o.group(2).strip() for o in opts)
    if len(set(t.lower() for t in texts)) != 4:
        raise MalformedOutput(f"options must be distinct, found {list(texts)}")
    answer = m.group("answer").strip().strip("().").upper()
    if answer not in LETTERS:
        raise MalformedOutput(f"answer must be one of A-D, found {m.group('answer').strip()!r}")
    description = m.group("description").strip()
    if not description:
        raise MalformedOutput("empty description")
    return QuestionerOutput(description, " ".join(stem), texts, answer)  # type: ignore[arg-type]


@register_recipe("vzero")
class VZero(Recipe):
    roles = ("questioner", "solver")

    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        from retrieval.world.tasks import make_tasks

        out: list[SupervisedExample] = []
        for wi in world_images:
            tasks = make_tasks(wi, rng)
            if not tasks:
                continue
            t = rng.choice(tasks)
            target = questioner_target(wi.caption, t.question, list(t.options), t.answer)
            out.append(SupervisedExample(QUESTIONER_PROMPT, target, [wi.image], task_type="vzero_questioner"))
        return out

