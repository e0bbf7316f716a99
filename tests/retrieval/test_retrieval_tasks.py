"""Tests for retrieval.world.tasks: option structure, answers re-derived from the scene."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from retrieval.world import sample_world
from retrieval.world.palette import ALL_SHAPES, COLOR_NAMES
from retrieval.world.tasks import TASK_TYPES, LabeledTask, format_mc, make_tasks, world_corpus

LETTERS = "ABCD"


@pytest.fixture(scope="module")
def tasks_with_images():
    rng = random.Random(11)
    return [(w, t) for w in sample_world(240, seed=2) for t in make_tasks(w, rng)]


def _objects_matching(objs, phrase):
    """Objects whose attributes match every word of a description like 'small red circle'."""
    words = phrase.split()
    out = []
    for o in objs:
        attrs = {o["size"], o["color"], o["shape"]}
        if all(wd in attrs for wd in words):
            out.append(o)
    return out


def _expected_answer(w, t) -> str:
    """Independent re-derivation of the right answer from the scene."""
    sc, q = w.scene, t.question
    if t.task_type == "color":
        (obj,) = _objects_matching(sc["objects"], re.fullmatch(r"What color is the (.+)\?", q)[1])
        return obj["color"]
    if t.task_type == "shape":
        (obj,) = _objects_matching(sc["objects"], re.fullmatch(r"What shape is the (.+) object\?", q)[1])
        return obj["shape"]
    if t.task_type == "count":
        m = re.fullmatch(r"How many (\w+)(?: shapes)? are there\?", q)
        word = m[1]
        if word == "shapes":
            return str(len(sc["objects"]))
        if word in COLOR_NAMES:
            return str(sum(o["color"] == word for o in sc["objects"]))
        return str(sum(o["shape"] + "s" == word for o in sc["objects"]))
    if t.task_type == "relation":
        m = re.fullmatch(r"Where is the (.+) relative to the (.+)\?", q)
        (a,), (b,) = _objects_matching(sc["objects"], m[1]), _objects_matching(sc["objects"], m[2])
        dx, dy = a["x"] - b["x"], a["y"] - b["y"]
        if abs(dx) > abs(dy):
            return "left of" if dx < 0 else "right of"
        return "above" if dy < 0 else "below"
    if t.task_type in ("chart_max", "chart_min"):
        pick = max if t.task_type == "chart_max" else min
        return sc["labels"][sc["values"].index(pick(sc["values"]))]
    if t.task_type == "chart_value":
        lab = q.rstrip("?").split()[-1]
        return str(sc["values"][sc["labels"].index(lab)])
    if t.task_type == "grid_count":
        m = re.fullmatch(r"How many (\w+) cells are there\?", q)
        if m[1] == "filled":
            return str(sum(map(sum, sc["cells"])))
        return str(sum(c == m[1] for row in sc["colors"] for c in row))
    if t.task_type == "grid_row":
        row = sc["cells"][0] if "top row" in q else sc["cells"][-1]
        return str(sum(row))
    raise AssertionError(f"untested task type {t.task_type}")


def test_every_task_type_is_produced(tasks_with_images):
    counts = Counter(t.task_type for _, t in tasks_with_images)
    assert set(counts) == set(TASK_TYPES), counts


def test_options_structure(tasks_with_images):
    letters = Counter()
    for _, t in tasks_with_images:
        assert len(t.options) == 4 and len(set(t.options)) == 4
        assert t.answer in LETTERS
        assert t.options[LETTERS.index(t.answer)] == t.answer_text
        letters[t.answer] += 1
    # Shuffling spreads the right answer over all letters (no positional shortcut).
    assert set(letters) == set(LETTERS) and min(letters.values()) > 0.15 * sum(letters.values())


def test_answers_are_correct_and_unambiguous(tasks_with_images):
    # _expected_answer unpacks exactly one matching object, so ambiguity fails the test.
    for w, t in tasks_with_images:
        assert t.answer_text == _expected_answer(w, t), (w.id, t.question, t.options, w.scene)


def test_questions_do_not_leak_the_answer(tasks_with_images):
    for _, t in tasks_with_images:
        words = set(t.question.rstrip("?").split())
        if t.task_type == "color":
            assert not words & set(COLOR_NAMES), t.question
        elif t.task_type == "shape":
            assert not words & set(ALL_SHAPES), t.question


def test_distractors_are_plausible(tasks_with_images):
    for _, t in tasks_with_images:
        if t.task_type == "color":
            assert set(t.options) <= set(COLOR_NAMES)
        elif t.task_type == "shape":
            assert set(t.options) <= set(ALL_SHAPES)
        elif t.task_type in ("count", "chart_value", "grid_count", "grid_row"):
            assert all(o.isdigit() for o in t.options)


def test_make_tasks_deterministic_given_rng():
    w = sample_world(3, seed=9)[0]
    a, b = make_tasks(w, random.Random(5)), make_tasks(w, random.Random(5))
    assert a == b


def test_format_mc():
    text = format_mc("What color is the circle?", ["red", "blue", "green", "yellow"])
    assert text == "What color is the circle?\nA. red\nB. blue\nC. green\nD. yellow"
    with pytest.raises(ValueError, match="exactly 4"):
        format_mc("q?", ["a", "b", "c"])


def test_labeled_task_validates():
    with pytest.raises(ValueError, match="option B"):
        LabeledTask("t", "i", "color", "q?", ["red", "blue", "green", "black"], "B", "red")
    with pytest.raises(ValueError, match="4 distinct"):
        LabeledTask("t", "i", "color", "q?", ["red", "red", "green", "black"], "A", "red")


def test_corpus_covers_all_world_words():
    tokenize = re.compile(r"[A-Za-z]+|\d+").findall
    vocab = set(tokenize("\n".join(world_corpus(n=60, seed=0))))
    assert {str(i) for i in range(21)} <= vocab
    rng = random.Random(99)
    for w in sample_world(300, seed=77):  # a different seed than the corpus used
        words = set(tokenize(w.caption))
        for t in make_tasks(w, rng):
            words |= set(tokenize(t.prompt()))
        assert words <= vocab, words - vocab


# ---------------------------------------------------------------- answer kinds and task mixes

from retrieval.world.tasks import ALL_TASK_TYPES, ASKERS, TaskMix  # noqa: E402

EVERY_KIND = TaskMix(tuple((t, 2.0) for t in ASKERS), (("mc", 1.0), ("yesno", 1.0), ("open", 1.0)))


@pytest.fixture(scope="module")
def mixed_tasks():
    rng = random.Random(3)
    return [(w, t) for w in sample_world(240, seed=4) for t in make_tasks(w, rng, EVERY_KIND)]


def test_without_a_mix_make_tasks_is_unchanged():
    """The legacy path (procedural benchmark, recipes' bootstrap) gives only 4-option questions of TASK_TYPES."""
    rng = random.Random(11)
    tasks = [t for w in sample_world(60, seed=2) for t in make_tasks(w, rng)]
    assert {t.answer_kind for t in tasks} == {"mc"} and {t.task_type for t in tasks} <= set(TASK_TYPES)


def test_every_type_and_kind_is_produced(mixed_tasks):
    pairs = {(t.task_type, t.answer_kind) for _, t in mixed_tasks}
    expected = {(t, k) for t, (_, kinds, _) in ASKERS.items() for k in kinds}
    assert pairs == expected
    assert {t for t, _ in pairs} == set(ALL_TASK_TYPES)


def test_mixed_answers_match_the_scene(mixed_tasks):
    """MC and open answers re-derived independently; yes/no answers by the question's claim."""
    for w, t in mixed_tasks:
        if t.answer_kind == "yesno":
            assert t.answer == _yesno_truth(w, t), (t.question, w.scene)
            continue
        legacy = t.question if t.answer_kind == "mc" else t.question
        probe = LabeledTask(t.task_id, t.image_id, t.task_type, legacy, t.options, t.answer, t.answer_text, t.answer_kind)
        assert t.answer_text == _expected_answer(w, probe), (w.id, t.question, w.scene)


def _yesno_truth(w, t) -> str:
    sc, q = w.scene, t.question
    if t.task_type == "exists":
        color, shape = re.fullmatch(r"Is there a (\w+) (\w+)\?", q).groups()
        return "yes" if any(o["color"] == color and o["shape"] == shape for o in sc["objects"]) else "no"
    if t.task_type == "color":
        desc, color = re.fullmatch(r"Is the (.+) (\w+)\?", q).groups()
        (obj,) = _objects_matching(sc["objects"], desc)
        return "yes" if obj["color"] == color else "no"
    if t.task_type == "shape":
        desc, shape = re.fullmatch(r"Is the (.+) object a (\w+)\?", q).groups()
        (obj,) = _objects_matching(sc["objects"], desc)
        return "yes" if obj["shape"] == shape else "no"
    if t.task_type == "relation":
        a, rel, b = re.fullmatch(r"Is the (.+) (left of|right of|above|below) the (.+)\?", q).groups()
        probe = LabeledTask("p", "i", "relation", f"Where is the {a} relative to the {b}?",
                            ["left of", "right of", "above", "below"], "A", "left of")
        return "yes" if _expected_answer(w, probe) == rel else "no"
    if t.task_type in ("chart_max", "chart_min"):
        label = re.fullmatch(r"Is (?:bar|point) (\w) the \w+\?", q)[1]
        pick = max if t.task_type == "chart_max" else min
        return "yes" if sc["labels"][sc["values"].index(pick(sc["values"]))] == label else "no"
    raise AssertionError(f"untested yes/no type {t.task_type}")


def test_yes_and_no_are_balanced(mixed_tasks):
    answers = Counter(t.answer for _, t in mixed_tasks if t.answer_kind == "yesno")
    assert set(answers) == {"yes", "no"} and abs(answers["yes"] - answers["no"]) < 0.15 * sum(answers.values())


def test_yesno_rationale_is_what_decides_the_answer(mixed_tasks):
    """The rationale is the asked attribute's true value: the answer is yes exactly when the question names it."""
    with_rationale = [t for _, t in mixed_tasks if t.answer_kind == "yesno" and t.rationale]
    assert {t.task_type for t in with_rationale} == {"color", "shape", "relation", "chart_max", "chart_min"}
    for t in with_rationale:
        assert (t.answer == "yes") == (f" {t.rationale} " in f" {t.question.rstrip('?')} "), (t.question, t.rationale)
    assert all(not t.rationale for _, t in mixed_tasks if t.answer_kind != "yesno" or t.task_type == "exists")


def test_yesno_chain_teaches_the_rationale_first_and_leaves_other_mixes_alone():
    from models.formats import extract_answer
    from recipes.core.bootstrap import solver_examples
    from retrieval.world.tasks import MIXES

    chained = TaskMix.from_dict({**MIXES["all"].to_dict(), "yesno_chain": True})
    assert "yesno_chain" not in MIXES["all"].to_dict() and chained.to_dict()["yesno_chain"] is True
    plain = solver_examples(sample_world(40, seed=5), random.Random(1), MIXES["all"])
    chain = solver_examples(sample_world(40, seed=5), random.Random(1), chained)
    assert [e.prompt for e in plain] == [e.prompt for e in chain]  # the same questions: only replies differ
    changed = [(p, c) for p, c in zip(plain, chain) if p.target != c.target]
    assert changed and all(c.answer_kind == "yesno" for _, c in changed)
    for p, c in changed:
        stated = c.target.split(" \\boxed{")[0]
        assert c.target.endswith(p.target) and stated and stated != c.target
        assert extract_answer(c.target, None, "yesno")[0] == c.answer  # the reply is still read as its answer


def test_open_and_yesno_tasks_have_no_options(mixed_tasks):
    for _, t in mixed_tasks:
        if t.answer_kind != "mc":
            assert t.options == [] and t.prompt() == t.question and t.answer == t.answer_text


def test_mix_weights_set_how_many_questions():
    images = sample_world(90, seed=8, kinds=("shapes",))
    rng = random.Random(0)
    one = [t for w in images for t in make_tasks(w, rng, TaskMix((("count", 1.0),)))]
    half = [t for w in images for t in make_tasks(w, rng, TaskMix((("count", 0.5),)))]
    assert len(one) == 90 and 25 < len(half) < 65
    assert not [t for w in images for t in make_tasks(w, rng, TaskMix((("chart_max", 1.0),)))]  # wrong world kind


def test_mix_only_keeps_the_types_and_picks_the_kind():
    mix = TaskMix((("color", 1.0), ("exists", 1.0)), (("mc", 0.5), ("yesno", 0.5)))
    mc = mix.only("mc")
    assert mc.types == mix.types and dict(mc.kinds) == {"mc": 0.5}
    rng = random.Random(1)
    tasks = [t for w in sample_world(30, seed=5, kinds=("shapes",)) for t in make_tasks(w, rng, mc)]
    assert tasks and {t.answer_kind for t in tasks} == {"mc"}  # "exists" has no mc form: never asked
    assert TaskMix.from_dict(mix.to_dict()) == mix


def test_mix_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown task types"):
        TaskMix((("colour", 1.0),))
    with pytest.raises(ValueError, match="unknown answer kinds"):
        TaskMix((("color", 1.0),), (("free", 1.0),))


def test_labeled_task_validates_kinds():
    LabeledTask("t", "i", "exists", "Is there a red circle?", [], "yes", "yes", "yesno")
    with pytest.raises(ValueError, match="no options"):
        LabeledTask("t", "i", "color", "q?", ["red", "blue", "green", "black"], "red", "red", "open")
    with pytest.raises(ValueError, match="'yes' or 'no'"):
        LabeledTask("t", "i", "exists", "q?", [], "maybe", "maybe", "yesno")


def test_corpus_covers_the_new_question_forms():
    tokenize = re.compile(r"[A-Za-z]+|\d+").findall
    vocab = set(tokenize("\n".join(world_corpus(n=60, seed=0))))
    rng = random.Random(5)
    for w in sample_world(120, seed=78):
        for t in make_tasks(w, rng, EVERY_KIND):
            assert set(tokenize(t.prompt())) <= vocab, set(tokenize(t.prompt())) - vocab


def test_numeric_options_do_not_give_the_answer_away():
    """The mix path's numeric options are a randomly placed window: the answer is not 'the middle value'."""
    rng = random.Random(2)
    mix = TaskMix((("count", 1.0), ("chart_value", 1.0), ("grid_count", 1.0), ("grid_row", 1.0)))
    ranks = Counter()
    for w in sample_world(600, seed=6):
        for t in make_tasks(w, rng, mix):
            values = sorted(int(o) for o in t.options)
            assert values == list(range(values[0], values[0] + 4))  # consecutive
            ranks[values.index(int(t.answer_text))] += 1
    total = sum(ranks.values())
    assert min(ranks.values()) > 0.15 * total, ranks  # each rank common; the nearest-values options put ~all in 1-2
