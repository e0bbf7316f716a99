"""Vision-Zero: reward tables (hand-computed from recipes.md), role baseline, Iterative-SPO switching, parsers,
and one in-process iteration pair on the tiny model (clue phase, then the decision phase it switches to)."""

import json
import random

import pytest

from models.grpo import GRPOResult
from recipes import get_recipe
from recipes.core.context import IterationContext, IterationImages
from recipes.core.loop import train_solver, train_task_maker
from recipes.visionzero import game as sg
from recipes.visionzero.recipe import phase_state, visionzero_examples
from retrieval.pool import ImagePool
from retrieval.sources import build_source

N = 4


@pytest.mark.parametrize(
    "votes, spy, expected",
    [
        # all three civilians catch the spy (player 3); the spy votes player 1, who got no other vote
        ([2, 2, 0, 2], 2, [1 - 0.6 * 1 / 3, 1.0, 1 - 3 / 3 + 0.0, 1.0]),
        # civilians split: 1 and 2 vote each other (misled), 4 votes the spy; spy votes N/A
        ([1, 0, None, 2], 2, [-1 - 0.2, -1 - 0.2, 1 - 1 / 3 + 0.5 * 2 / 3, 1.0]),
        # the spy votes for itself: -1; a civilian voting for itself is wrong (-1) and its self-vote is not "received"
        ([0, 2, 2, 2], 2, [-1.0, 1.0, -1.0, 1.0]),
        # N/A from civilians: 0 before the suspicion penalty; malformed votes: -1
        ([None, None, "malformed", "malformed"], 2, [0.0, 0.0, -1.0, -1.0]),
        # a tie between the spy (player 3) and player 1, two votes each; player 2 was misled
        ([2, 0, 0, 2], 2, [1 - 0.6 * 2 / 3, -1.0, 1 - 2 / 3 + 0.5 * 1 / 3, 1.0]),
    ],
)
def test_vote_reward_table(votes, spy, expected):
    assert sg.vote_rewards(votes, spy) == pytest.approx([max(-1, min(1, e)) for e in expected])


@pytest.mark.parametrize(
    "votes, spy, outcome",
    [([2, 2, 0, 2], 2, "caught"), ([2, 0, 0, 2], 2, "tie"), ([1, 0, 1, 1], 2, "escaped"), ([None, "malformed", 2, None], 2, "no_votes")],
)
def test_outcome_with_ties(votes, spy, outcome):
    assert sg.outcome(votes, spy) == outcome


def test_rewards_are_clipped():
    # civilian, wrong and suspected by all three others: -1 - 0.6 -> clipped to -1
    assert sg.civilian_vote_reward(0, 2, 3, N) == -1.0
    # spy unsuspected and misled all three civilians: 1 + 0.5 -> clipped to 1
    # (civilians: -1.2, -1.4 and -1.0 before clipping; spy: 1 - 0 + 0.5 * 3/3 = 1.5)
    assert sg.vote_rewards([1, 2, 1, 0], 3) == [-1.0, -1.0, -1.0, 1.0]


@pytest.mark.parametrize(
    "vote, spy, player, reward",
    [(2, 2, 0, 1.0), (None, 2, 0, -0.5), (1, 2, 0, -1.0), ("malformed", 2, 0, -1.0),  # civilian
     (0, 2, 2, 0.5), (None, 2, 2, 0.2), (2, 2, 2, -1.0), ("malformed", 2, 2, -1.0)],  # spy
)
def test_decision_reward_table(vote, spy, player, reward):
    assert sg.decision_reward(vote, spy, player) == reward


def test_clue_reward_quality_minus_suspicion():
    assert sg.clue_quality("a red circle", []) == 1.0
    assert sg.clue_quality("a red circle", ["a blue circle"]) == pytest.approx(1 - 2 / 4)
    assert sg.clue_quality("red circle", ["circle red"]) == 0.0
    assert sg.clue_reward(1.0, 2, N) == pytest.approx(1 - 0.4)
    assert sg.clue_reward(0.0, 3, N) == pytest.approx(-0.6)


def test_role_baseline_ema():
    b = sg.RoleBaseline(alpha=0.9)
    # first batch: baseline 0 -> advantage = clipped reward; then b = 0.1 * batch mean per role
    assert b.advantages(["civilian", "civilian", "spy"], [1.0, 0.0, 2.0]) == pytest.approx([1.0, 0.0, 1.0])
    assert b.values == pytest.approx({"civilian": 0.05, "spy": 0.1})
    assert b.advantages(["civilian", "spy"], [0.5, -1.0]) == pytest.approx([0.45, -1.1])
    assert b.values == pytest.approx({"civilian": 0.9 * 0.05 + 0.1 * 0.5, "spy": 0.9 * 0.1 - 0.1})


@pytest.mark.parametrize(
    "phase, acc, expected, switched",
    [("clue", 0.39, "decision", True), ("clue", 0.4, "clue", False), ("clue", 0.9, "clue", False),
     ("decision", 0.79, "decision", False), ("decision", 0.8, "clue", True), ("decision", 0.1, "decision", False)],
)
def test_criterion_switching(phase, acc, expected, switched):
    cfg = sg.PhaseConfig(rule="criterion", upper=0.8, lower=0.4)
    nxt = sg.next_phase(cfg, sg.PhaseState(phase, 5, 3), acc, 10)
    assert nxt.phase == expected and bool(nxt.switched) == switched and nxt.iteration == 4
    assert nxt.steps_in_phase == (0 if switched else 15)


def test_cycle_switching_ignores_accuracy():
    cfg = sg.PhaseConfig(rule="cycle", cycle_steps=20)
    s = sg.PhaseState("clue")
    phases = []
    for _ in range(6):
        s = sg.next_phase(cfg, s, 0.0, 10)  # accuracy 0 would switch under the criterion at once
        phases.append(s.phase)
    assert phases == ["clue", "decision", "decision", "clue", "clue", "decision"]
    with pytest.raises(ValueError, match="criterion"):
        sg.next_phase(sg.PhaseConfig(rule="both"), s, 0.5, 1)


@pytest.mark.parametrize(
    "text, vote", [("\\boxed{3}", 2), ("I think \\boxed{player 1}", 0), ("\\boxed{N/A}", None), ("\\boxed{na}", None)]
)
def test_vote_parser(text, vote):
    assert sg.parse_vote(text, N) == vote


@pytest.mark.parametrize("text, reason", [("3", "missing"), ("\\boxed{5}", "1-4"), ("\\boxed{0}", "1-4"), ("\\boxed{red}", "1-4")])
def test_malformed_votes(text, reason):
    with pytest.raises(sg.MalformedMove, match=reason):
        sg.parse_vote(text, N)


def test_clue_parser():
    assert sg.parse_clue("<clue> a  red\ncircle </clue>") == "a red circle"
    for bad, why in [("a red circle", "missing"), ("<clue> </clue>", "empty"), ("<clue>" + "x " * 31 + "</clue>", "longer")]:
        with pytest.raises(sg.MalformedMove, match=why):
            sg.parse_clue(bad)
    assert sg.parse_clue(sg.clue_target("two bars")) == "two bars" and sg.parse_vote(sg.vote_target(None), N) is None


def test_bootstrap_examples_parse(world_images):
    ex = visionzero_examples(world_images, random.Random(0))
    shapes = sum(1 for w in world_images if w.kind == "shapes" and w.scene["objects"])
    assert 0 < len(ex) <= shapes  # a clue and a vote per 4 shapes images: few next to V-Zero's
    for e in ex:
        if e.task_type == "visionzero_clue":
            assert sg.parse_clue(e.target)
        else:
            assert isinstance(sg.parse_vote(e.target, N), int)


def test_one_iteration_in_process(tmp_path, tiny_model_dir):
    """Iteration 1 (clue phase: player trains, Solver paused), then iteration 2 reads 1's phase and switches."""
    recipe = get_recipe("visionzero")
    pool = ImagePool(tmp_path / "pool")
    pool.add(build_source("procedural", n=6, seed=3).iter_items())
    cfg = recipe.default_config("smoke")
    parents = {"player": tiny_model_dir, "solver": tiny_model_dir}
    images = IterationImages(pool, tmp_path / "it1" / "images")
    ctx = IterationContext(recipe, 1, "iter-0001", cfg, parents, images)

    player_dir = tmp_path / "it1" / "player"
    result, summary = train_task_maker(ctx, "player", player_dir)
    assert result.steps == 1 and not result.skipped and summary["clue_completions"] > 0
    df = recipe.build_task_set(ctx, {"player": player_dir})
    assert len(df) == 4 and (df["phase"] == "clue").all()
    played = df[df["reason"] != "no_pair"]
    assert all(len(a) == 4 and len(json.loads(c)) == 8 for a, c in zip(played["answers"], played["clues"]))  # 4 votes, 2x4 clues
    # each game's pair images are stored with the iteration (and resolve there), never in the foundation pool
    assert pool.count() == 6 and len(images.generated_ids()) == 2 * len(played)
    report = recipe.validate_task_set(df, cfg, images.has)
    assert report.success, report.markdown()
    md = recipe.task_set_metadata(df, ctx)
    assert md["phase"] == "clue" and sum(md["outcomes"].values()) == len(played) and "| round | player |" in md["transcripts"]
    solver = train_solver(ctx, df, tmp_path / "it1" / "solver")
    assert solver.steps == 0 and "clue phase" not in solver.skipped and "decision" in solver.skipped
    card = json.loads((tmp_path / "it1" / "solver" / "zeroforge_train.json").read_text())
    state = card["recipe_state"]
    assert state["phase"]["phase"] == "clue" and state["decision_accuracy"] == pytest.approx(played["decision_accuracy"].mean())
    assert GRPOResult.load(tmp_path / "it1" / "solver").skipped  # the pause survives a reload

    # iteration 2: the phase follows from iteration 1's card by the criterion rule (lower 0.4)
    ctx2 = IterationContext(recipe, 2, "iter-0002", cfg, {"player": player_dir, "solver": tmp_path / "it1" / "solver"},
                            IterationImages(pool, tmp_path / "it2" / "images"))
    expected = sg.next_phase(cfg.phase, sg.PhaseState(**state["phase"]), state["decision_accuracy"], 1)
    assert phase_state(ctx2) == expected
    if expected.phase == "decision":
        skipped, _ = train_task_maker(ctx2, "player", tmp_path / "it2" / "player")
        assert skipped.steps == 0 and skipped.skipped
        df2 = recipe.build_task_set(ctx2, {"player": tmp_path / "it2" / "player"})
        trained = train_solver(ctx2, df2, tmp_path / "it2" / "solver")
        assert trained.steps == 1 and not trained.skipped
