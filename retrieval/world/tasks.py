"""Labeled multiple-choice tasks derived from procedural-world ground truth.

Sits on top of ``retrieval.world`` generators: ``make_tasks(world_image, rng)`` reads the
``scene`` of a ``WorldImage`` and returns ``LabeledTask`` objects (question, exactly four
options, answer letter) whose answers are correct by construction.  Questions only
refer to objects that the scene identifies uniquely ("the circle" is asked only when
there is one circle), so every task has exactly one right option.  ``format_mc`` renders
the prompt text and ``world_corpus`` lists text lines covering every word the world can
emit, for tokenizer training::

    rng = random.Random(0)
    for task in make_tasks(generate("shapes", 1, 3), rng):
        print(format_mc(task.question, task.options), task.answer)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from retrieval.world.core import DIFFICULTIES, KINDS, WorldImage, sample_world
from retrieval.world.palette import (
    ALL_SHAPES,
    CHART_LABELS,
    COLOR_NAMES,
    NUMBER_WORDS,
    RELATIONS,
    SHAPE_PLURALS,
    SIZES,
)
from retrieval.world.shapes import relation

LETTERS = ("A", "B", "C", "D")
TASK_TYPES: tuple[str, ...] = (
    "color", "shape", "count", "relation",
    "chart_max", "chart_min", "chart_value",
    "grid_count", "grid_row",
)


@dataclass
class LabeledTask:
    """One multiple-choice question about one image; ``answer`` is a letter A-D."""

    task_id: str
    image_id: str
    task_type: str
    question: str
    options: list[str]
    answer: str
    answer_text: str

    def __post_init__(self) -> None:
        if len(self.options) != 4 or len(set(self.options)) != 4:
            raise ValueError(f"task {self.task_id}: expected 4 distinct options, got {self.options!r}")
        if self.answer not in LETTERS:
            raise ValueError(f"task {self.task_id}: answer must be one of {LETTERS}, got {self.answer!r}")
        if self.options[LETTERS.index(self.answer)] != self.answer_text:
            raise ValueError(f"task {self.task_id}: option {self.answer} is "
                             f"{self.options[LETTERS.index(self.answer)]!r}, expected {self.answer_text!r}")
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"task {self.task_id}: unknown task_type {self.task_type!r}; expected {TASK_TYPES}")

    def prompt(self) -> str:
        """The question with lettered options, as shown to a model."""
        return format_mc(self.question, self.options)


def format_mc(question: str, options: list[str]) -> str:
    """'What color is the circle?\\nA. red\\nB. blue\\nC. green\\nD. yellow'."""
    if len(options) != 4:
        raise ValueError(f"format_mc expects exactly 4 options, got {len(options)}: {options!r}")
    return "\n".join([question] + [f"{letter}. {opt}" for letter, opt in zip(LETTERS, options)])


# ---------------------------------------------------------------- option building


def _choices(rng: random.Random, correct: str, preferred: list[str], fallback: list[str]) -> tuple[list[str], str]:
    """Correct answer + 3 distractors (``preferred`` first: they are the plausible ones)."""
    distractors: list[str] = []
    for pool in (preferred, fallback):
        pool = [p for p in dict.fromkeys(pool) if p != correct and p not in distractors]
        rng.shuffle(pool)
        distractors += pool[: 3 - len(distractors)]
    if len(distractors) < 3:
        raise ValueError(f"cannot build 3 distractors for {correct!r} from {preferred + fallback!r}")
    options = [correct] + distractors
    rng.shuffle(options)
    return options, LETTERS[options.index(correct)]


def _number_choices(rng: random.Random, correct: int, lo: int, hi: int) -> tuple[list[str], str]:
    """Numeric options: the 3 nearest other integers in [lo, hi] (ties broken by rng)."""
    hi = max(hi, lo + 3)  # a range of fewer than 4 integers could not fill 4 options
    others = [v for v in range(lo, hi + 1) if v != correct]
    others.sort(key=lambda v: (abs(v - correct), rng.random()))
    return _choices(rng, str(correct), [str(v) for v in others[:3]], [])


def _task(wi: WorldImage, task_type: str, k: int, question: str,
          opts: tuple[list[str], str]) -> LabeledTask:
    options, letter = opts
    return LabeledTask(task_id=f"{wi.id}/{task_type}/{k}", image_id=wi.id, task_type=task_type,
                       question=question, options=options, answer=letter,
                       answer_text=options[LETTERS.index(letter)])


# ---------------------------------------------------------------- shapes


def _matches(obj: dict, desc: dict) -> bool:
    return all(obj[k] == v for k, v in desc.items())


def unique_description(objects: list[dict], obj: dict, attr_sets: list[tuple[str, ...]]) -> str | None:
    """Shortest description (from ``attr_sets``, in order) matching only ``obj``, or None."""
    for attrs in attr_sets:
        desc = {a: obj[a] for a in attrs}
        if sum(_matches(o, desc) for o in objects) == 1:
            return " ".join(obj[a] for a in attrs)
    return None


def _shapes_tasks(wi: WorldImage, rng: random.Random) -> list[LabeledTask]:
    objs = wi.scene["objects"]
    tasks: list[LabeledTask] = []
    in_scene_colors = [o["color"] for o in objs]
    in_scene_shapes = [o["shape"] for o in objs]

    # color: identify the object without naming its colour.
    cands = [(o, d) for o in objs if (d := unique_description(objs, o, [("shape",), ("size", "shape")]))]
    if cands:
        o, d = rng.choice(cands)
        tasks.append(_task(wi, "color", 0, f"What color is the {d}?",
                           _choices(rng, o["color"], in_scene_colors, list(COLOR_NAMES))))

    # shape: identify the object by colour (and size), never by shape.
    cands = [(o, d) for o in objs if (d := unique_description(objs, o, [("color",), ("size", "color")]))]
    if cands:
        o, d = rng.choice(cands)
        tasks.append(_task(wi, "shape", 0, f"What shape is the {d} object?",
                           _choices(rng, o["shape"], in_scene_shapes, list(ALL_SHAPES))))

    # count: total, then one colour (possibly absent, so 0 is a real answer).
    tasks.append(_task(wi, "count", 0, "How many shapes are there?",
                       _number_choices(rng, len(objs), 0, len(objs) + 3)))
    color = rng.choice(sorted(set(in_scene_colors)) if rng.random() < 0.75 else list(COLOR_NAMES))
    n_color = sum(o["color"] == color for o in objs)
    tasks.append(_task(wi, "count", 1, f"How many {color} shapes are there?",
                       _number_choices(rng, n_color, 0, len(objs) + 1)))
    shape = rng.choice(sorted(set(in_scene_shapes)))
    n_shape = sum(o["shape"] == shape for o in objs)
    tasks.append(_task(wi, "count", 2, f"How many {SHAPE_PLURALS[shape]} are there?",
                       _number_choices(rng, n_shape, 0, len(objs) + 1)))

    # relation: both objects uniquely named and the relation clear-cut (see shapes.relation).
    named = [(o, d) for o in objs
             if (d := unique_description(objs, o, [("color", "shape"), ("size", "color", "shape")]))]
    pairs = [(a, da, b, db, rel) for a, da in named for b, db in named
             if a is not b and (rel := relation(a, b, wi.scene["width"]))]
    if pairs:
        a, da, b, db, rel = rng.choice(pairs)
        tasks.append(_task(wi, "relation", 0, f"Where is the {da} relative to the {db}?",
                           _choices(rng, rel, list(RELATIONS), [])))
    return tasks


# ---------------------------------------------------------------- charts


def _charts_tasks(wi: WorldImage, rng: random.Random) -> list[LabeledTask]:
    sc = wi.scene
    labels, values = sc["labels"], sc["values"]
    bar = sc["chart_type"] == "bar"
    unused = [lab for lab in CHART_LABELS if lab not in labels]  # only needed with 3 bars
    tasks = []
    i_max, i_min = values.index(max(values)), values.index(min(values))
    q_max = "Which bar is the tallest?" if bar else "Which point is the highest?"
    q_min = "Which bar is the shortest?" if bar else "Which point is the lowest?"
    tasks.append(_task(wi, "chart_max", 0, q_max, _choices(rng, labels[i_max], labels, unused)))
    tasks.append(_task(wi, "chart_min", 0, q_min, _choices(rng, labels[i_min], labels, unused)))
    i = rng.randrange(len(labels))
    q_val = f"What is the value of bar {labels[i]}?" if bar else f"What is the value at point {labels[i]}?"
    tasks.append(_task(wi, "chart_value", 0, q_val, _number_choices(rng, values[i], 1, 9)))
    return tasks


# ---------------------------------------------------------------- grids


def _grids_tasks(wi: WorldImage, rng: random.Random) -> list[LabeledTask]:
    sc = wi.scene
    cells, colors, n = sc["cells"], sc["colors"], sc["rows"]
    total = sum(map(sum, cells))
    tasks = [_task(wi, "grid_count", 0, "How many filled cells are there?",
                   _number_choices(rng, total, 0, n * n))]
    present = sorted({c for row in colors for c in row if c})
    if len(present) > 1:  # colour questions only make sense on coloured grids
        color = rng.choice(present)
        k = sum(c == color for row in colors for c in row)
        tasks.append(_task(wi, "grid_count", 1, f"How many {color} cells are there?",
                           _number_choices(rng, k, 0, n * n)))
    which = rng.choice(["top", "bottom"])
    row = cells[0] if which == "top" else cells[-1]
    tasks.append(_task(wi, "grid_row", 0, f"How many filled cells are in the {which} row?",
                       _number_choices(rng, sum(row), 0, n)))
    return tasks


_MAKERS = {"shapes": _shapes_tasks, "charts": _charts_tasks, "grids": _grids_tasks}


def make_tasks(world_image: WorldImage, rng: random.Random) -> list[LabeledTask]:
    """All applicable tasks for one world image; deterministic given the rng state."""
    if world_image.kind not in _MAKERS:
        raise ValueError(f"no task maker for kind {world_image.kind!r}; expected one of {tuple(_MAKERS)}")
    return _MAKERS[world_image.kind](world_image, rng)


# ---------------------------------------------------------------- corpus


def _static_lines() -> list[str]:
    """Every vocabulary word and question template, so coverage never depends on luck."""
    lines = [
        " ".join(COLOR_NAMES), " ".join(ALL_SHAPES), " ".join(SHAPE_PLURALS.values()),
        " ".join(SIZES), " ".join(NUMBER_WORDS), " ".join(str(i) for i in range(21)),
        " ".join(LETTERS), " ".join(f"{x}." for x in LETTERS), " ".join(CHART_LABELS),
        " ".join(CHART_LABELS).upper(), " ".join(RELATIONS),
        "one shape: a red circle", "two shapes: an orange square and a small blue star",
        "a bar chart of three bars: a=1, b=2, c=3", "a line chart of five points: a=4, b=5",
        "a three by three grid with one filled cell",
        "a five by five grid with two filled cells: one red and one blue",
    ]
    for c in COLOR_NAMES:
        lines += [f"What color is the {c} circle?", f"What shape is the small {c} object?",
                  f"How many {c} shapes are there?", f"How many {c} cells are there?"]
    for s in ALL_SHAPES:
        lines += [f"What color is the large {s}?", f"How many {SHAPE_PLURALS[s]} are there?",
                  f"Where is the red {s} relative to the small blue {s}?"]
    lines += ["How many shapes are there?", "Which bar is the tallest?", "Which bar is the shortest?",
              "Which point is the highest?", "Which point is the lowest?",
              "What is the value of bar a?", "What is the value at point b?",
              "How many filled cells are there?", "How many filled cells are in the top row?",
              "How many filled cells are in the bottom row?"]
    return lines


def world_corpus(n: int = 300, seed: int = 0, size: int = 64) -> list[str]:
    """Text lines covering every word the world and its tasks can produce.

    Static vocabulary/template lines first, then captions, prompts and answers from
    ``n`` sampled images across all kinds and difficulties (realistic co-occurrence
    statistics for the tokenizer).
    """
    lines = _static_lines()
    rng = random.Random(f"zeroforge-corpus:{seed}")
    for wi in sample_world(n, seed, kinds=KINDS, difficulties=DIFFICULTIES, size=size):
        lines.append(wi.caption)
        for t in make_tasks(wi, rng):
            lines += [t.prompt(), t.answer_text, f"{t.answer}. {t.answer_text}"]
    return lines
