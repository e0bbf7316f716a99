"""Active-Zero: reward tables (hand-computed from recipes.md), the Searcher's parser, profiles, the curriculum table."""

import json
import random

import pandas as pd
import pytest

from recipes import RECIPES, get_recipe
from recipes.activezero.report import curriculum_rows
from recipes.activezero.rewards import questioner_reward, searcher_reward
from recipes.activezero.search import parse_searcher, searcher_examples, searcher_format, searcher_target
from recipes.core.questioner import MalformedOutput


@pytest.mark.parametrize(
    "c, fmt, image_share, query_share, expected",
    [
        (0.5, 1.0, 0.25, 0.25, 0.05),  # 0.9*0.5 + 0.1 - 0.25 - 0.25
        (0.8, 1.0, 0.125, 0.125, 0.03),  # 0.9*0.2 + 0.1 - 0.25
        (0.3, 1.0, 0.1, 0.1, 0.17),  # 0.27 + 0.1 - 0.2
        (1.0, 0.0, 0.5, 0.25, -0.75),  # Solver sure, unknown type, repeated image and query
        (None, 1.0, 0.25, 0.25, -0.4),  # no usable question on the image: uncertainty 0
        (0.6, 0.0, 0.0, 0.0, 0.36),
    ],
)
def test_searcher_reward_table(c, fmt, image_share, query_share, expected):
    assert searcher_reward(c, fmt, image_share, query_share) == pytest.approx(expected)


@pytest.mark.parametrize(
    "c, fmt, share, expected",
    [
        (0.6, 1.0, 0.25, 0.21),  # 0.9*0.4 + 0.1 - 0.25
        (0.9, 1.0, 1 / 3, 0.09 + 0.1 - 1 / 3),
        (0.5, 1.0, 0.125, 0.425),
        (None, 1.0, 0.5, -0.4),  # no majority
    ],
)
def test_questioner_reward_table(c, fmt, share, expected):
    assert questioner_reward(c, fmt, share) == pytest.approx(expected)


def test_searcher_parser_and_format():
    out = parse_searcher(searcher_target("Shapes", "two shapes:  a red circle"))
    assert (out.query_type, out.query) == ("shapes", "two shapes: a red circle") and searcher_format(out) == 1.0
    assert searcher_format(parse_searcher("<type>dogs</type><query>a dog</query>")) == 0.0  # searches, no format credit


@pytest.mark.parametrize("text, reason", [
    ("", "missing"), ("<query>a red circle</query>", "missing"), ("<type>shapes</type>", "missing"),
    ("<type>shapes</type><query>  </query>", "empty query"), ("<type></type><query>a grid</query>", "empty type"),
])
def test_malformed_searcher_output_is_rejected_with_reason(text, reason):
    with pytest.raises(MalformedOutput, match=reason):
        parse_searcher(text)


def test_curriculum_rows_recompute_the_searcher_reward():
    meta = {"query": "a grid", "query_type": "grids", "rank": 2, "similarity": 0.7, "searcher_format": 1.0,
            "image_cluster_share": 0.25, "query_cluster_share": 0.25}
    df = pd.DataFrame([
        {"task_id": "t0", "image_id": "img", "c": 0.5, "majority": "A", "reason": "kept", "kept": True, "detail": "",
         "meta": json.dumps(meta)},
        {"task_id": "t1", "image_id": "", "c": 0.0, "majority": None, "reason": "malformed", "kept": False,
         "detail": "searcher: missing <type> or <query> tags", "meta": "{}"},
    ])
    rows = curriculum_rows(df)
    assert rows[0]["searcher_reward"] == pytest.approx(0.05) and rows[0]["query"] == "a grid"
    assert rows[1]["searcher_reward"] == -1.0


def test_recipes_registered_with_roles_and_dapo_solver():
    assert get_recipe("activezero").roles == ("searcher", "questioner", "solver")
    assert get_recipe("activezero_passive").roles == ("questioner", "solver")
    assert {"activezero", "activezero_passive"} <= set(RECIPES)
    for profile in ("paper", "embedded", "smoke"):
        cfg = get_recipe("activezero").default_config(profile)
        s = cfg.solver
        assert (s.epsilon, s.epsilon_high, s.loss_type, s.drop_zero_std_groups) == (0.2, 0.28, "dapo", True)
        assert set(cfg.task_makers) == {"searcher", "questioner"}
        assert set(get_recipe("activezero_passive").default_config(profile).task_makers) == {"questioner"}
    paper = get_recipe("activezero").default_config("paper")
    assert (paper.role_hp("searcher").steps, paper.role_hp("questioner").steps, paper.solver.steps) == (10, 10, 30)


def test_searcher_warm_start_examples_are_few_and_parse(world_images):
    examples = searcher_examples(world_images, random.Random(0))
    assert 0 < len(examples) <= len(world_images) // 8 + 1
    assert all(parse_searcher(e.target).query_type in ("shapes", "charts", "grids") and e.images == [] for e in examples)
    assert set(get_recipe("activezero").warm_start_formats()) == {"questioner", "searcher"}
    assert set(get_recipe("activezero_passive").warm_start_formats()) == {"questioner"}
