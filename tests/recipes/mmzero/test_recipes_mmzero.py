"""MM-Zero: reward tables (hand-computed from recipes.md), Proposer parser, keep filter, render paths, audit."""

import json

import pandas as pd
import pytest

from recipes import RECIPES, get_recipe
from recipes.core.bootstrap import BaseModelBuild, bootstrap_datasets
from recipes.core.diversity import bleu_distance_matrix, cluster_labels
from recipes.core.questioner import MalformedOutput
from recipes.mmzero.config import MMZeroConfig
from recipes.mmzero.formats import Proposal, parse_proposer, proposer_target
from recipes.mmzero.render import render_program, score_from_answers
from recipes.mmzero.report import audit_items
from recipes.mmzero.rewards import (
    coder_reward,
    content_type_penalties,
    diversity_penalties,
    low_difficulty_penalty,
    proposer_render_score,
    proposer_rewards,
)

GOOD = proposer_target("two shapes: a red circle and a blue square", "shapes",
                       ("What color is the circle?", ["red", "blue", "green", "yellow"], "A"),
                       ("How many shapes are there?", ["1", "2", "3", "4"], "B"))


# ---------------------------------------------------------------- Coder reward


@pytest.mark.parametrize(
    "status, solvability, hard_solved, expected",
    [
        ("ok", 0.7, True, 2.7),  # renderable 1 + solvability 0.7 + difficulty 1
        ("ok", 0.0, False, 1.0),  # renders, but the Solver never matches the Proposer
        ("ok", 1.0, True, 3.0),  # the maximum
        ("ok", 0.3, False, 1.3),
        ("crashed", 0.0, False, -0.1),  # no render
        ("timeout", 0.0, False, -0.1),
        ("rejected", 0.0, False, -0.1),
        ("syntax_error", 0.0, False, -0.15),  # no render -0.1, syntax error -0.05
        ("not_svg", 0.0, False, -0.5),  # -0.1 - 0.5 = -0.6, floored at -0.5
    ],
)
def test_coder_reward_table(status, solvability, hard_solved, expected):
    assert coder_reward(status, solvability, hard_solved) == pytest.approx(expected)


# ---------------------------------------------------------------- Proposer reward terms


@pytest.mark.parametrize(
    "renders, score, low_penalty",
    [
        ([(1.0, 0.5, 1)], 1.0, 0.0),  # min(1, .5) + min(.5, .5)
        ([(0.2, 0.9, 0), (0.6, 0.7, 0)], 0.55, 0.3),  # mean(0.2 + 0.1, 0.5 + 0.3); mean difficulty 0 < 0.15
        ([(0.4, 0.3, 1), (0.4, 0.3, 0)], 0.7, 0.0),  # mean difficulty 0.5
        ([(0.5, 1.0, 0)] * 7 + [(0.5, 1.0, 1)], 0.5, 0.3),  # mean difficulty 0.125 < 0.15
        ([(0.5, 1.0, 0)] * 5 + [(0.5, 1.0, 1)], 0.5, 0.0),  # mean difficulty 0.167
        ([], 0.0, 0.0),  # nothing rendered: nothing earned, nothing to measure
    ],
)
def test_proposer_render_score_and_low_difficulty_table(renders, score, low_penalty):
    assert proposer_render_score(renders) == pytest.approx(score)
    assert low_difficulty_penalty(renders) == pytest.approx(low_penalty)


@pytest.mark.parametrize(
    "types, expected",
    [
        (["a", "b"], [0.0, 0.0]),  # shares 0.5: not above 0.5
        (["a", "a", "a", "b"], [0.075, 0.075, 0.075, 0.0]),  # 0.15 * (0.75 - 0.5) / 0.5
        (["a", "a", "a"], [0.15, 0.15, 0.15]),  # share 1: the full 0.15
        (["a", "a", "b"], [0.05, 0.05, 0.0]),  # 0.15 * (2/3 - 1/2) / (1/2)
        ([], []),
    ],
)
def test_content_type_penalty_table(types, expected):
    assert content_type_penalties(types) == pytest.approx(expected)


CAPTIONS = ["two shapes: a red circle and a blue square", "two shapes: a red circle and a blue square", "a bar chart of three bars"]
EASY = ["What color is the circle?", "How many bars are there?", "Which row holds most cells?"]
HARD = ["How many shapes are above the line?", "How many shapes are above the line?", "Which bar is the tallest one?"]


def test_bleu_clusters_group_near_duplicates_only():
    labels = cluster_labels(bleu_distance_matrix(CAPTIONS), 0.5)
    assert labels[0] == labels[1] != labels[2]
    assert len(set(cluster_labels(bleu_distance_matrix(EASY), 0.5))) == 3


def test_diversity_penalty_weights():
    # caption shares 2/3, 2/3, 1/3; easy 1/3 each; hard 2/3, 2/3, 1/3
    expected = [0.45 * 2 / 3 + 0.20 / 3 + 0.35 * 2 / 3] * 2 + [(0.45 + 0.20 + 0.35) / 3]
    assert diversity_penalties(CAPTIONS, EASY, HARD) == pytest.approx(expected)
    assert expected[0] == pytest.approx(0.6)


def test_proposer_reward_combines_every_term():
    items = [
        {"renders": [(0.8, 0.5, 1)], "content_type": "shapes", "caption": CAPTIONS[0], "easy": EASY[0], "hard": HARD[0]},
        {"renders": [(0.2, 0.9, 0), (0.6, 0.7, 0)], "content_type": "shapes", "caption": CAPTIONS[1], "easy": EASY[1], "hard": HARD[1]},
        None,  # malformed
        {"renders": [], "content_type": "chart", "caption": CAPTIONS[2], "easy": EASY[2], "hard": HARD[2]},
    ]
    # content: shapes share 2/3 -> 0.05; diversity 0.6, 0.6, 1/3 (as above)
    expected = [1.0 - 0.05 - 0.6, 0.55 - 0.3 - 0.05 - 0.6, -1.0, 0.0 - 0.0 - 1 / 3]
    assert proposer_rewards(items) == pytest.approx(expected)
    assert proposer_rewards([None, None]) == [-1.0, -1.0]


def test_solver_score_from_answers():
    p = parse_proposer(GOOD)
    sc = score_from_answers(p, ["A", "A", "B", None], ["C", "C", "C", "B"])
    assert (sc.solvability, sc.c_hard, sc.hard_solved) == (0.5, 0.75, True)
    sc = score_from_answers(p, [None] * 4, ["C", "D", "A", "A"])
    assert (sc.solvability, sc.c_hard, sc.hard_solved) == (0.0, 0.5, False)


# ---------------------------------------------------------------- Proposer format


def test_proposer_round_trip():
    p = parse_proposer(GOOD)
    assert p == Proposal("two shapes: a red circle and a blue square", "shapes", "What color is the circle?",
                         ("red", "blue", "green", "yellow"), "A", "How many shapes are there?", ("1", "2", "3", "4"), "B")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "missing"),
        (GOOD.replace("<type>shapes</type>\n", ""), "missing"),
        (GOOD.replace("<hard_answer>B</hard_answer>", ""), "missing"),
        (GOOD.replace("two shapes: a red circle and a blue square", ""), "empty caption"),
        (GOOD.replace("<type>shapes</type>", "<type></type>"), "content type"),
        (GOOD.replace("D. yellow", ""), "easy options must be exactly A-D"),
        (GOOD.replace("D. 4", "D. 4\nE. 5"), "hard options must be exactly A-D"),
        (GOOD.replace("B. 2", "B. 1"), "hard options must be distinct"),
        (GOOD.replace("<easy_answer>A</easy_answer>", "<easy_answer>E</easy_answer>"), "easy answer must be one of A-D"),
        (GOOD.replace("How many shapes are there?", "What color is the circle?"), "the same"),
        (GOOD.replace("What color is the circle?\n", ""), "easy question has no stem"),
    ],
)
def test_malformed_proposer_output_is_rejected_with_reason(text, reason):
    with pytest.raises(MalformedOutput, match=reason):
        parse_proposer(text)


# ---------------------------------------------------------------- keep filter


def test_keep_rule_easy_and_hard():
    rule = get_recipe("mmzero").keep_rule(get_recipe("mmzero").default_config("embedded"))
    rows = [  # in proposal order: each render's easy question right before its hard one
        ({"question_kind": "easy", "item": 0}, 0.6, "kept"),
        ({"question_kind": "hard", "item": 0}, 0.5, "kept"),
        ({"question_kind": "easy", "item": 1}, 0.4, "too_hard"),  # easy c < 0.5: the render is not verified
        ({"question_kind": "hard", "item": 1}, 0.5, "easy_failed"),
        ({"question_kind": "easy", "item": 2}, 1.0, "kept"),
        ({"question_kind": "hard", "item": 2}, 0.8, "too_easy"),  # hard c > 0.75
        ({"question_kind": "easy", "item": 3}, 0.5, "kept"),  # edges are inclusive
        ({"question_kind": "hard", "item": 3}, 0.25, "kept"),
        ({"question_kind": "easy", "item": 4}, 0.9, "kept"),
        ({"question_kind": "hard", "item": 4}, 0.2, "too_hard"),
        ({"question_kind": "hard", "item": 5}, 0.5, "easy_failed"),  # its easy question was never labeled
    ]
    assert rule.decide([{"meta": meta, "c": c} for meta, c, _ in rows]) == [r for _, _, r in rows]


def test_the_gate_checks_mmzero_s_rule_not_the_loop_band():
    """With band_low=0.4 set on the loop, MM-Zero still keeps (and its gate still accepts) a hard question at c=0.25."""
    recipe = get_recipe("mmzero")
    cfg = recipe.default_config("embedded")
    cfg.band_low = 0.4  # the loop's band: MM-Zero does not use it
    rule = recipe.keep_rule(cfg)
    meta = lambda kind: json.dumps({"question_kind": kind, "item": 0})  # noqa: E731
    df = pd.DataFrame([
        dict(task_id="t0", iteration=1, image_id="r0", question="Q1?", options=list("abcd"), answers=["A"] * 4, majority="A",
             c=0.75, kept=True, reason="kept", meta=meta("easy")),
        dict(task_id="t1", iteration=1, image_id="r0", question="Q2?", options=list("abcd"), answers=["B"] * 4, majority="B",
             c=0.25, kept=True, reason="kept", meta=meta("hard")),
    ])
    assert rule.decide([{"c": r.c, "meta": json.loads(r.meta)} for r in df.itertuples()]) == ["kept", "kept"]
    assert recipe.validate_task_set(df, cfg, {"r0"}.__contains__).success
    df.at[1, "c"] = 0.8  # outside MM-Zero's hard band [0.25, 0.75], though inside the loop's envelope
    report = recipe.validate_task_set(df, cfg, {"r0"}.__contains__)
    assert not report.success and "labeling bug" in report.next_step


# ---------------------------------------------------------------- render paths

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="20" fill="red"/></svg>'
PY = ("```python\nfrom PIL import Image, ImageDraw\nim = Image.new('RGB', (SIZE, SIZE), 'white')\n"
      "ImageDraw.Draw(im).rectangle((8, 8, 40, 40), fill='blue')\nim.save(OUT)\n```")


@pytest.mark.parametrize(
    "reply, allow_python, kind, status",
    [
        (SVG, True, "svg", "ok"),
        (f"Here it is:\n```svg\n{SVG}\n```", True, "svg", "ok"),
        (SVG.replace("</svg>", ""), True, "svg", "syntax_error"),  # cut off at max tokens
        (SVG.replace('r="20"', "r=20"), True, "svg", "syntax_error"),
        (PY, True, "python", "ok"),
        (PY, False, "python", "not_svg"),  # the released code's SVG-only setting
        ("```python\nraise SystemExit(1)\n```", True, "python", "crashed"),
        ("a red circle", True, None, "not_svg"),  # no program at all
    ],
)
def test_render_paths(reply, allow_python, kind, status):
    got_kind, _, res = render_program(reply, MMZeroConfig(allow_python=allow_python))
    assert (got_kind, res.status) == (kind, status), res.reason
    if res.ok:
        assert res.image.size == (64, 64) and res.image.getpixel((32, 32)) != (255, 255, 255)


def test_world_scenes_as_svg_render_like_the_originals():
    import numpy as np

    from retrieval.render import render_svg
    from retrieval.world import sample_world
    from retrieval.world.svg import scene_svg

    for wi in sample_world(6, seed=5):  # shapes, charts, grids at difficulties 1 and 2
        res = render_svg(scene_svg(wi), size=64)
        assert res.ok, (wi.kind, res.reason)
        diff = np.abs(np.asarray(res.image, dtype=float) - np.asarray(wi.image, dtype=float)).mean()
        assert diff < 30, (wi.kind, diff)  # same picture up to anti-aliasing and SVG's named colours


# ---------------------------------------------------------------- registration, warm start, audit


def test_registered_with_three_roles_and_bootstrap_formats_parse():
    assert "mmzero" in RECIPES and get_recipe("mmzero").roles == ("proposer", "coder", "solver")
    assert "mmzero" in BaseModelBuild().recipes  # the warm start teaches every registered recipe's formats
    train, _ = bootstrap_datasets(30, 3, seed=0, recipes=["vzero", "mmzero"])
    proposer = [e for e in train if e.task_type == "mmzero_proposer"]
    coder = [e for e in train if e.task_type == "mmzero_coder"]
    assert proposer and len(proposer) == len(coder) and len(proposer) <= len([e for e in train if e.task_type == "questioner"]) // 2
    assert all(parse_proposer(e.target) and not e.images for e in proposer)
    assert all(render_program(e.target, MMZeroConfig())[2].ok for e in coder)


def test_curriculum_audit_table_from_a_task_set():
    meta = {"item": 0, "caption": "a red circle", "content_type": "shapes", "proposer_text": GOOD, "program": SVG, "render_status": "ok"}
    rows = [
        dict(image_id="r0", question="What color is the circle?", answers=["A", "A", "B", None], c=0.5, kept=True, reason="kept",
             detail="", raw=GOOD, meta=json.dumps({**meta, "question_kind": "easy", "answer": "A"})),
        dict(image_id="r0", question="How many shapes are there?", answers=["C", "C", "C", "B"], c=0.75, kept=True, reason="kept",
             detail="", raw=GOOD, meta=json.dumps({**meta, "question_kind": "hard", "answer": "B"})),
        dict(image_id="", question="", answers=[], c=0.0, kept=False, reason="render_failed", detail="render syntax_error: bad",
             raw="<svg", meta=json.dumps({**meta, "item": 1, "caption": "a blue square", "render_status": "syntax_error"})),
        dict(image_id="", question="", answers=[], c=0.0, kept=False, reason="malformed", detail="missing tags", raw="junk",
             meta=json.dumps({"item": 2})),
    ]
    items = audit_items(pd.DataFrame(rows))
    assert [it["item"] for it in items] == [0, 1, 2]
    assert items[0]["coder_reward"] == pytest.approx(1 + 0.5 + 1)  # rendered, solvability 0.5, hard solved once
    assert items[1]["coder_reward"] == pytest.approx(-0.15)
    assert "coder_reward" not in items[2] and items[2]["proposer_reward"] == -1.0
    # item 0: min(.5, .5) + min(.75, .25) = 0.75; both coded items are "shapes" (share 1: -0.15); distinct texts
    assert items[0]["proposer_reward"] < 0.75 - 0.15


def test_profiles_round_trip_as_typed_configs():
    recipe = get_recipe("mmzero")
    for profile in ("paper", "embedded", "smoke"):
        cfg = recipe.default_config(profile)
        assert isinstance(cfg, MMZeroConfig) and set(cfg.task_makers) == {"proposer", "coder"}
        again = recipe.config_from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    assert recipe.default_config("paper").allow_python and recipe.default_config("paper").coder_samples == 4
    with pytest.raises(ValueError, match="unknown profile"):
        recipe.default_config("nope")
