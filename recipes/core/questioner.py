"""The Questioner format every image-asking recipe shares: prompt, output format, parser, warm-start examples.

V-Zero's Questioner and Active-Zero's both see an image and write a short
description, a 4-option multiple-choice question and an immediate
("intuitive") answer; the warm start teaches this format once, whichever of
those recipes runs. Tags keep parsing unambiguous for a tiny model:

    <description>two shapes: a red circle and a blue square</description>
    <question>What color is the circle?
    A. red
    B. blue
    C. green
    D. yellow</question>
    <answer>A</answer>

    >>> q = parse_questioner(questioner_target("a red circle", "What color is it?", ["red", "blue", "green", "pink"], "A"))
    >>> q.question, q.options[0], q.fast_answer
    ('What color is it?', 'red', 'A')
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.formats import LETTERS, format_options
from models.generation import GenerationRequest, InferenceEngine, SamplingParams
from models.warmstart import SupervisedExample
from recipes.core.types import MalformedTask, ProposedTask
from retrieval.world.tasks import make_tasks

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
    """Task-maker text that does not follow its format; the message says what is wrong."""


def questioner_target(description: str, question: str, options: list[str], letter: str) -> str:
    return (
        f"<description>{description}</description>\n"
        f"<question>{question}\n{format_options(options)}</question>\n"
        f"<answer>{letter}</answer>"
    )


def parse_options(block: str, which: str = "") -> tuple[str, tuple[str, ...]]:
    """(stem, four option texts) of a question block, or MalformedOutput: exactly A-D in order, distinct, non-empty.

    `which` names the question in the messages ("easy", "hard"; "" for the only one)."""
    which = f"{which} " if which else ""
    lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
    stem = [ln for ln in lines if not _OPTION.match(ln)]
    opts = [_OPTION.match(ln) for ln in lines if _OPTION.match(ln)]
    if not stem:
        raise MalformedOutput(f"{which}question has no stem")
    letters = tuple(o.group(1) for o in opts)
    if letters != LETTERS:
        raise MalformedOutput(f"{which}options must be exactly A-D in order, found {list(letters)}")
    texts = tuple(o.group(2).strip() for o in opts)
    if len({t.lower() for t in texts}) != 4:
        raise MalformedOutput(f"{which}options must be distinct, found {list(texts)}")
    return " ".join(stem), texts


def parse_letter(text: str, which: str = "") -> str:
    letter = text.strip().strip("().").upper()
    if letter not in LETTERS:
        raise MalformedOutput(f"{which + ' ' if which else ''}answer must be one of A-D, found {text.strip()!r}")
    return letter


def parse_questioner(text: str) -> QuestionerOutput:
    """Parse a Questioner completion or raise MalformedOutput saying why.

    Well-formed means: all three tags, a non-empty question stem, exactly four
    options labelled A, B, C, D in order with distinct non-empty texts, and an
    answer that is one of those letters.
    """
    m = _TAGS.search(text or "")
    if not m:
        raise MalformedOutput("missing <description>, <question> or <answer> tags")
    stem, texts = parse_options(m.group("question"))
    answer = parse_letter(m.group("answer"))
    description = m.group("description").strip()
    if not description:
        raise MalformedOutput("empty description")
    return QuestionerOutput(description, stem, texts, answer)  # type: ignore[arg-type]


def try_parse(text: str) -> QuestionerOutput | None:
    try:
        return parse_questioner(text)
    except MalformedOutput:
        return None


def ask(questioner: InferenceEngine, images: Sequence, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
    """One Questioner completion per image, in one batched call."""
    if not images:
        return []
    requests = [GenerationRequest(QUESTIONER_PROMPT, [im]) for im in images]
    params = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    return [outs[0] for outs in questioner.generate(requests, params)]


def question_tasks(image_ids: Sequence[str], texts: Sequence[str], metas: Sequence[dict] | None = None,
                   prefix: str = "") -> list[ProposedTask | MalformedTask]:
    """A proposal per Questioner text: a 4-option task, or a malformed row saying why (`prefix` names the role)."""
    out: list[ProposedTask | MalformedTask] = []
    for image_id, text, meta in zip(image_ids, texts, metas or [{} for _ in image_ids]):
        try:
            q = parse_questioner(text)
        except MalformedOutput as err:
            out.append(MalformedTask(image_id, text, f"{prefix}{err}", meta=dict(meta)))
            continue
        out.append(ProposedTask(image_id, q.question, list(q.options),
                                {**meta, "a_fast": q.fast_answer, "description": q.description, "raw": text}))
    return out


def questioner_examples(world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
    """Warm-start examples of the format: one labeled world task per image, written as the Questioner would."""
    out: list[SupervisedExample] = []
    for wi in world_images:
        tasks = make_tasks(wi, rng)
        if not tasks:
            continue
        t = rng.choice(tasks)
        target = questioner_target(wi.caption, t.question, list(t.options), t.answer)
        out.append(SupervisedExample(QUESTIONER_PROMPT, target, [wi.image], task_type="questioner"))
    return out


def questioner_format_rate(engine: InferenceEngine, images: Sequence, seed: int, max_new_tokens: int = 96) -> float:
    """Share of sampled (temperature 1) Questioner outputs that parse: the warm start should leave it < 1."""
    texts = ask(engine, images, 1.0, max_new_tokens, seed)
    return sum(try_parse(t) is not None for t in texts) / max(1, len(texts))
