"""V-Zero's own pieces: the dual-track reward table (hand-computed from recipes.md) and its TRL-contract reward."""

import pytest

from recipes.core.questioner import questioner_target
from recipes.vzero.rewards import QuestionerReward, dual_track


@pytest.mark.parametrize(
    "fast, majority, c, expected",
    [
        ("A", "A", 0.5, 0.5),  # agree, split Solver: the frontier, maximal reward
        ("A", "A", 0.9, 0.1),  # agree, Solver sure: easy question, small reward
        ("A", "A", 0.3, 0.3),
        ("B", "A", 0.9, 0.45),  # disagree: 0.5 * c rewards questions that need reasoning
        ("B", "A", 0.4, 0.2),
        ("C", None, 0.4, 0.0),  # no majority
    ],
)
def test_dual_track_reward_table(fast, majority, c, expected):
    assert dual_track(fast, majority, c) == pytest.approx(expected)


def test_questioner_reward_scores_malformed_minus_one_and_calls_the_solver(tiny_model_dir, world_images):
    from models.generation import TransformersEngine
    from models.loading import load_vlm

    model, proc = load_vlm(tiny_model_dir)
    reward = QuestionerReward(TransformersEngine(model, proc), m=4)
    good = questioner_target("a red circle", "What color is the circle?", ["red", "blue", "green", "yellow"], "A")
    out = reward([[{"role": "assistant", "content": "nonsense"}], good, "<description>x</description>"],
                 image=[world_images[0].image] * 3)
    assert out[0] == -1.0 and out[2] == -1.0
    assert 0.0 <= out[1] <= 0.5  # dual track is bounded by max(min(c,1-c), 0.5c) <= 0.5
    s = reward.summary()
    assert s["questioner_completions"] == 3 and s["questioner_malformed_rate"] == pytest.approx(2 / 3)
