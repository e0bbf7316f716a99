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
# Types only the mix-driven path (``make_tasks(..., mix=...)``) asks; ``make_tasks`` without a mix
# produces exactly TASK_TYPES, as before.
EXTRA_TASK_TYPES: tuple[str, ...] = ("exists",)
ALL_TASK_TYPES: tuple[str, ...] = TASK_TYPES + EXTRA_TASK_TYPES
ANSWER_KINDS: tuple[str, ...] = ("mc", "yesno", "open")


@dataclass
class LabeledTask:
    """One question about one image, right by construction.

    ``answer_kind`` "mc" (the default, and all ``make_tasks`` gave before): four options and
    ``answer`` a letter A-D whose option is ``answer_text``. "yesno" and "open": no options;
    ``answer`` and ``answer_text`` are the answer itself ("yes" / "no", or "red", "3").
    """

    task_id: str
    image_id: str
    task_type: str
    question: str
    options: list[str]
    answer: str
    answer_text: str
    answer_kind: str = "mc"
    # yes/no only: what the image shows that decides the answer ("blue" for "Is the circle red?"), the
    # answer the same question asked openly would have; "" where the world has no such value (exists)
    rationale: str = ""

    def __post_init__(self) -> None:
        if self.task_type not in ALL_TASK_TYPES:
            raise ValueError(f"task {self.task_id}: unknown task_type {self.task_type!r}; expected {ALL_TASK_TYPES}")
        if self.answer_kind not in ANSWER_KINDS:
            raise ValueError(f"task {self.task_id}: unknown answer_kind {self.answer_kind!r}; expected {ANSWER_KINDS}")
        if self.answer_kind != "mc":
            if self.options:
                raise ValueError(f"task {self.task_id}: a {self.answer_kind} question has no options, got {self.options!r}")
            if not self.answer or self.answer != self.answer_text:
                raise ValueError(f"task {self.task_id}: answer {self.answer!r} must equal answer_text {self.answer_text!r}")
            if self.answer_kind == "yesno" and self.answer not in ("yes", "no"):
                raise ValueError(f"task {self.task_id}: a yes/no answer must be 'yes' or 'no', got {self.answer!r}")
            return
        if len(self.options) != 4 or len(set(self.options)) != 4:
            raise ValueError(f"task {self.task_id}: expected 4 distinct options, got {self.options!r}")
        if self.answer not in LETTERS:
            raise ValueError(f"task {self.task_id}: answer must be one of {LETTERS}, got {self.answer!r}")
        if self.options[LETTERS.index(self.answer)] != self.answer_text:
            raise ValueError(f"task {self.task_id}: option {self.answer} is "
                             f"{self.options[LETTERS.index(self.answer)]!r}, expected {self.answer_text!r}")

    def prompt(self) -> str:
        """The question with lettered options (multiple choice) or alone, as shown to a model."""
        return format_mc(self.question, self.options) if self.answer_kind == "mc" else self.question


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
    """Numeric options of the 4-option tasks: a window of four consecutive integers (see `_window_choices`).

    These used to be the 3 *nearest* other integers, which put the right count in the middle of the
    four almost always: a model that never looked at the image scored 63% on count questions by
    picking the second smallest (docs/efficacy.md), and the held-out figures of every base and
    iteration carried that leak.
    """
    return _window_choices(rng, correct, lo, hi)


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


# ---------------------------------------------------------------- question kinds and task mixes
#
# The mix-driven path asks each task type in any answer kind it supports: multiple choice (the
# legacy questions above), yes/no ("Is the circle red?") and open ("What color is the circle?"
# with no options). A `TaskMix` says how many questions of each type an image gets and how the
# kinds are shared, so the warm start can weight what a tiny model learns in its budget.


def _window_choices(rng: random.Random, correct: int, lo: int, hi: int) -> tuple[list[str], str]:
    """Numeric options: four consecutive integers in [lo, hi] containing `correct`, the window placed at random.

    The 3 *nearest* integers would put the right answer in the middle of the four almost always, and
    "pick the second smallest" would score far above chance without looking at the image (a tiny model
    learns that shortcut first and the image never). Here every position inside the window is equally
    likely wherever the range allows.
    """
    hi = max(hi, lo + 3)
    starts = [s for s in range(lo, hi - 2) if s <= correct <= s + 3]
    start = rng.choice(starts)
    return _choices(rng, str(correct), [str(v) for v in range(start, start + 4)], [])


def _obj_task(wi: WorldImage, task_type: str, kind: str, k: int, question: str, answer: str,
              mc: tuple[list[str], str] | None = None, rationale: str = "") -> LabeledTask:
    tid = f"{wi.id}/{task_type}/{kind}/{k}"
    if kind == "mc":
        options, letter = mc
        return LabeledTask(tid, wi.id, task_type, question, options, letter, options[LETTERS.index(letter)], "mc")
    return LabeledTask(tid, wi.id, task_type, question, [], answer, answer, kind, rationale)


def _yes_or_other(rng: random.Random, truth: str, others: list[str]) -> tuple[str, str]:
    """(asked value, "yes"/"no"): the true value half of the time, else a plausible other one."""
    pool = [o for o in dict.fromkeys(others) if o != truth]
    if rng.random() < 0.5 or not pool:
        return truth, "yes"
    return rng.choice(pool), "no"


def _ask_attribute(wi, rng, kind, k, attr: str, describe_by: list[tuple[str, ...]], vocab: list[str],
                   yes_q: str, open_q: str):
    """One object's `attr` (colour or shape), about an object the other attributes single out."""
    objs = wi.scene["objects"]
    cands = [(o, d) for o in objs if (d := unique_description(objs, o, describe_by))]
    if not cands:
        return None
    o, d = rng.choice(cands)
    if kind == "yesno":
        asked, yn = _yes_or_other(rng, o[attr], [x[attr] for x in objs] + vocab)
        return _obj_task(wi, attr, kind, k, yes_q.format(d=d, asked=asked), yn, rationale=o[attr])
    mc = _choices(rng, o[attr], [x[attr] for x in objs], vocab) if kind == "mc" else None
    return _obj_task(wi, attr, kind, k, open_q.format(d=d), o[attr], mc)


def _ask_color(wi, rng, kind, k):
    return _ask_attribute(wi, rng, kind, k, "color", [("shape",), ("size", "shape")], list(COLOR_NAMES),
                          "Is the {d} {asked}?", "What color is the {d}?")


def _ask_shape(wi, rng, kind, k):
    return _ask_attribute(wi, rng, kind, k, "shape", [("color",), ("size", "color")], list(ALL_SHAPES),
                          "Is the {d} object a {asked}?", "What shape is the {d} object?")


def _ask_count(wi, rng, kind, k):
    objs = wi.scene["objects"]
    which = rng.choice(["all", "color", "shape"])
    if which == "all":
        question, n, hi = "How many shapes are there?", len(objs), len(objs) + 3
    elif which == "color":
        colors = sorted({o["color"] for o in objs})
        color = rng.choice(colors if rng.random() < 0.75 else list(COLOR_NAMES))
        question, n, hi = f"How many {color} shapes are there?", sum(o["color"] == color for o in objs), len(objs) + 1
    else:
        shape = rng.choice(sorted({o["shape"] for o in objs}))
        question, n, hi = f"How many {SHAPE_PLURALS[shape]} are there?", sum(o["shape"] == shape for o in objs), len(objs) + 1
    mc = _window_choices(rng, n, 0, hi) if kind == "mc" else None
    return _obj_task(wi, "count", kind, k, question, str(n), mc)


def _ask_exists(wi, rng, kind, k):
    """'Is there a red circle?': yes half of the time; a no names a near miss (right shape or right colour)."""
    objs = wi.scene["objects"]
    present = {(o["color"], o["shape"]) for o in objs}
    if rng.random() < 0.5:
        color, shape = rng.choice(sorted(present))
        return _obj_task(wi, "exists", "yesno", k, f"Is there a {color} {shape}?", "yes")
    near = sorted({(c, s) for c0, s0 in present for c in COLOR_NAMES for s in ALL_SHAPES
                   if (c == c0) != (s == s0)} - present)
    color, shape = rng.choice(near)
    return _obj_task(wi, "exists", "yesno", k, f"Is there a {color} {shape}?", "no")


def _ask_relation(wi, rng, kind, k):
    objs = wi.scene["objects"]
    named = [(o, d) for o in objs
             if (d := unique_description(objs, o, [("color", "shape"), ("size", "color", "shape")]))]
    pairs = [(a, da, b, db, rel) for a, da in named for b, db in named
             if a is not b and (rel := relation(a, b, wi.scene["width"]))]
    if not pairs:
        return None
    a, da, b, db, rel = rng.choice(pairs)
    if kind == "yesno":
        asked, yn = _yes_or_other(rng, rel, list(RELATIONS))
        return _obj_task(wi, "relation", kind, k, f"Is the {da} {asked} the {db}?", yn, rationale=rel)
    mc = _choices(rng, rel, list(RELATIONS), []) if kind == "mc" else None
    return _obj_task(wi, "relation", kind, k, f"Where is the {da} relative to the {db}?", rel, mc)


def _ask_chart_extreme(wi, rng, kind, k, task_type):
    sc = wi.scene
    labels, values, bar = sc["labels"], sc["values"], sc["chart_type"] == "bar"
    i = values.index(max(values) if task_type == "chart_max" else min(values))
    word = ("tallest" if bar else "highest") if task_type == "chart_max" else ("shortest" if bar else "lowest")
    noun = "bar" if bar else "point"
    if kind == "yesno":
        asked, yn = _yes_or_other(rng, labels[i], labels)
        return _obj_task(wi, task_type, kind, k, f"Is {noun} {asked} the {word}?", yn, rationale=labels[i])
    unused = [lab for lab in CHART_LABELS if lab not in labels]
    mc = _choices(rng, labels[i], labels, unused) if kind == "mc" else None
    return _obj_task(wi, task_type, kind, k, f"Which {noun} is the {word}?", labels[i], mc)


def _ask_chart_value(wi, rng, kind, k):
    sc = wi.scene
    labels, values, bar = sc["labels"], sc["values"], sc["chart_type"] == "bar"
    i = rng.randrange(len(labels))
    question = f"What is the value of bar {labels[i]}?" if bar else f"What is the value at point {labels[i]}?"
    mc = _window_choices(rng, values[i], 1, 9) if kind == "mc" else None
    return _obj_task(wi, "chart_value", kind, k, question, str(values[i]), mc)


def _ask_grid_count(wi, rng, kind, k):
    sc = wi.scene
    cells, colors, n = sc["cells"], sc["colors"], sc["rows"]
    present = sorted({c for row in colors for c in row if c})
    if len(present) > 1 and rng.random() < 0.5:
        color = rng.choice(present)
        question, value = f"How many {color} cells are there?", sum(c == color for row in colors for c in row)
    else:
        question, value = "How many filled cells are there?", sum(map(sum, cells))
    mc = _window_choices(rng, value, 0, n * n) if kind == "mc" else None
    return _obj_task(wi, "grid_count", kind, k, question, str(value), mc)


def _ask_grid_row(wi, rng, kind, k):
    sc = wi.scene
    which = rng.choice(["top", "bottom"])
    row = sc["cells"][0] if which == "top" else sc["cells"][-1]
    mc = _window_choices(rng, sum(row), 0, sc["rows"]) if kind == "mc" else None
    return _obj_task(wi, "grid_row", kind, k, f"How many filled cells are in the {which} row?", str(sum(row)), mc)


# task type -> (world kind it is asked about, answer kinds it supports, question maker)
ASKERS: dict[str, tuple[str, tuple[str, ...], object]] = {
    "color": ("shapes", ("mc", "yesno", "open"), _ask_color),
    "shape": ("shapes", ("mc", "yesno", "open"), _ask_shape),
    "count": ("shapes", ("mc", "open"), _ask_count),
    "exists": ("shapes", ("yesno",), _ask_exists),
    "relation": ("shapes", ("mc", "yesno"), _ask_relation),
    "chart_max": ("charts", ("mc", "yesno", "open"), lambda wi, rng, kind, k: _ask_chart_extreme(wi, rng, kind, k, "chart_max")),
    "chart_min": ("charts", ("mc", "yesno", "open"), lambda wi, rng, kind, k: _ask_chart_extreme(wi, rng, kind, k, "chart_min")),
    "chart_value": ("charts", ("mc", "open"), _ask_chart_value),
    "grid_count": ("grids", ("mc", "open"), _ask_grid_count),
    "grid_row": ("grids", ("mc", "open"), _ask_grid_row),
}


@dataclass(frozen=True)
class TaskMix:
    """Which questions an image gets: per task type, the expected number per image of its world kind,
    and how answer kinds are shared (renormalised over the kinds a type supports).

    A weight of 1.5 means one question always and a second one half of the time. Types absent
    from ``types`` are never asked.
    """

    types: tuple[tuple[str, float], ...]
    kinds: tuple[tuple[str, float], ...] = (("mc", 1.0),)
    # warm start only: primer scenes (``retrieval.world.primer``) added per world image, asked the same types
    primer_images: float = 0.0
    # warm start only: a taught yes/no reply states what it sees before the answer ("blue \\boxed{no}" for
    # "Is the circle red?", the task's ``rationale``), so the answer is a comparison with a word it wrote
    yesno_chain: bool = False

    def __post_init__(self) -> None:
        unknown = [t for t, _ in self.types if t not in ASKERS]
        if unknown:
            raise ValueError(f"unknown task types {unknown}; expected some of {tuple(ASKERS)}")
        bad = [k for k, _ in self.kinds if k not in ANSWER_KINDS]
        if bad:
            raise ValueError(f"unknown answer kinds {bad}; expected some of {ANSWER_KINDS}")

    def to_dict(self) -> dict:
        out = {"types": dict(self.types), "kinds": dict(self.kinds), "primer_images": self.primer_images}
        if self.yesno_chain:  # only when set, so the mixes without it keep their dict (and a base its fingerprint)
            out["yesno_chain"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "TaskMix":
        return cls(tuple(d["types"].items()), tuple(d.get("kinds", {"mc": 1.0}).items()), float(d.get("primer_images", 0.0)),
                   bool(d.get("yesno_chain", False)))

    def only(self, *kinds: str) -> "TaskMix":
        """The same types asked in `kinds` only, without primer scenes (e.g. ``mix.only("mc")`` for 4-option questions)."""
        return TaskMix(self.types, tuple((k, w) for k, w in self.kinds if k in kinds) or tuple((k, 1.0) for k in kinds))


# Named mixes (docs/efficacy.md has the measurements behind them).
MIXES: dict[str, TaskMix | None] = {
    # every type in every kind it supports
    "all": TaskMix(tuple((t, 1.0) for t in ASKERS), (("mc", 0.6), ("yesno", 0.2), ("open", 0.2))),
    # what a ~3M model learns from scratch in a ~10-minute CPU warm start: spatial relations and
    # chart max/min (reading the letter under the tallest bar) stayed at chance in that budget, so
    # they are left out; the types a Solver can learn are weighted by how slowly they are learned.
    "base": TaskMix((("color", 1.0), ("shape", 1.0), ("count", 1.5), ("exists", 0.5),
                     ("chart_value", 1.5), ("grid_count", 1.0), ("grid_row", 1.0)),
                    (("mc", 0.6), ("yesno", 0.2), ("open", 0.2))),
}
MIXES["base_mc"] = MIXES["base"].only("mc")  # the same types as 4-option questions (V-Zero's Questioner, MC benchmarks)


def _make_mixed(wi: WorldImage, rng: random.Random, mix: TaskMix) -> list[LabeledTask]:
    kind_weight = dict(mix.kinds)
    out: list[LabeledTask] = []
    for task_type, weight in mix.types:
        world_kind, kinds, ask = ASKERS[task_type]
        if world_kind != wi.kind or weight <= 0:
            continue
        offered = [(k, kind_weight.get(k, 0.0)) for k in kinds if kind_weight.get(k, 0.0) > 0]
        if not offered:
            continue
        n = int(weight) + (rng.random() < weight - int(weight))
        for k in range(n):
            kind = rng.choices([k_ for k_, _ in offered], weights=[w for _, w in offered])[0]
            task = ask(wi, rng, kind, k)
            if task is not None:
                out.append(task)
    return out


def make_tasks(world_image: WorldImage, rng: random.Random, mix: TaskMix | None = None) -> list[LabeledTask]:
    """Tasks for one world image; deterministic given the rng state.

    Without ``mix``: every applicable multiple-choice task of TASK_TYPES, exactly as before
    (the procedural benchmark and the recipes' bootstrap examples rely on it). With a mix:
    the mix's types and answer kinds (see ``TaskMix``; ``MIXES`` names the measured ones).
    """
    if world_image.kind not in _MAKERS:
        raise ValueError(f"no task maker for kind {world_image.kind!r}; expected one of {tuple(_MAKERS)}")
    if mix is not None:
        return _make_mixed(world_image, rng, mix)
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
    # the yes/no forms of the mix-driven path
    lines += ["yes no", "Is there a red circle?", "Is the circle red?", "Is the red object a square?",
              "Is the red circle left of the blue square?", "Is the small red star right of the green diamond?",
              "Is the red circle above the blue square?", "Is the red circle below the blue square?",
              "Is bar a the tallest?", "Is bar b the shortest?", "Is point c the highest?", "Is point d the lowest?"]
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
