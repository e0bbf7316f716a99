"""The guards' arithmetic on hand-made predictions: collapse, label quality, flips, format, the base."""

import pytest

from recipes.core import guards as g
from recipes.core.config import GuardConfig

CFG = GuardConfig()


def preds(greedy: str, gold: str) -> list[dict]:
    return [{"greedy": a, "gold": b} for a, b in zip(greedy, gold)]


GOLD = "ABCDABCDABCDABCDABCD"


def test_collapse_fails_on_one_answer_and_names_it():
    healthy = preds("ABCDABCDABCAABCDBBCD", GOLD)
    assert g.answer_collapse(healthy, healthy, healthy, CFG).passed
    collapsed = preds("B" * 20, GOLD)
    r = g.answer_collapse(collapsed, healthy, healthy, CFG)
    assert not r.passed and "'B' to 100% of 20" in r.message and r.metrics["top_answer_share"] == 1.0
    assert r.metrics["entropy_bits"] == 0.0 and r.metrics["base_entropy_bits"] > 1.5


def test_collapse_by_entropy_against_the_base():
    # 55% one answer passes the share threshold (60%), but 2 answers instead of 4: entropy ~1.0 vs the base's 2.0
    narrowed = preds("A" * 11 + "B" * 9, GOLD)
    r = g.answer_collapse(narrowed, None, preds("ABCD" * 5, GOLD), CFG)
    assert not r.passed and "entropy fell" in r.message and "share" not in r.message.split("entropy")[0]


def _audit(labels: str, gold: str, reference: str | None = None) -> dict:
    reference = reference or labels
    return {"predictions": [{"key": f"q{i}", "gold": b, "label": a, "reference": r}
                            for i, (a, b, r) in enumerate(zip(labels, gold, reference))]}


def test_label_quality_chance_bug_and_decline():
    gold = "ABCD" * 25
    good = _audit("ABCD" * 15 + "BBBB" * 10, gold)  # 60 + 10 right of 100
    assert g.label_quality(good, None, 0.25, CFG).passed
    at_chance = _audit("DABC" * 20 + "ABCD" * 5, gold)  # 20 of 100 right: upper bound ~0.29 > 0.25 ...
    assert g.label_quality(at_chance, None, 0.25, CFG).passed  # ... so not provably at chance
    below = _audit("DABC" * 24 + "ABCD", gold)  # 4 of 100: the upper bound is below chance
    r = g.label_quality(below, None, 0.25, CFG)
    assert not r.passed and "not above chance" in r.message
    # the loop's labels are not the majority of the Solver's own votes: a labeling bug, whatever the accuracy
    shuffled = _audit("BCDA" * 25, gold, reference="ABCD" * 25)
    r = g.label_quality(shuffled, None, 0.25, CFG)
    assert not r.passed and "labeling bug" in r.message and r.metrics["agreement_with_own_votes"] == 0.0
    # fell significantly from the parent iteration's labels on the same questions
    r = g.label_quality(at_chance, good, 0.25, CFG)
    assert not r.passed and "fell from 70.0% to 20.0%" in r.message and r.metrics["labels_lost"] > r.metrics["labels_gained"]


@pytest.mark.parametrize("gains, losses, fails", [(10, 10, False), (2, 12, True), (12, 2, False), (0, 0, False), (1, 5, False)])
def test_flip_rate_table(gains, losses, fails):
    # parent right on the first `losses` questions only; current right on the next `gains` only
    n = 40
    parent = [{"greedy": "A" if i < losses else "B", "gold": "A"} for i in range(n)]
    current = [{"greedy": "A" if losses <= i < losses + gains else "B", "gold": "A"} for i in range(n)]
    r = g.flip_rate(current, parent, CFG)
    assert (r.metrics["right_to_wrong"], r.metrics["wrong_to_right"]) == (losses, gains)
    assert r.passed is not fails


def test_flip_rate_sees_a_benchmark_the_four_option_set_does_not():
    """The open form eroding while the 4-option set holds (the loop's measured failure) fails the guard."""
    steady = [{"greedy": "A", "gold": "A"}] * 30 + [{"greedy": "B", "gold": "A"}] * 10
    eroded = {"procedural_open": {"n": 387, "gained": 17, "lost": 38}, "procedural_yesno": {"n": 278, "gained": 3, "lost": 4}}
    r = g.flip_rate(steady, steady, CFG, eroded)
    assert not r.passed and "procedural_open: 38 lost, 17 gained of 387" in r.message
    assert "procedural_yesno" not in r.message and r.metrics["alpha_per_set"] == pytest.approx(CFG.alpha / 3, abs=1e-5)
    assert g.flip_rate(steady, steady, CFG).passed  # blind to it without the benchmarks


def test_flip_rate_against_the_base_sees_a_drift_of_in_noise_steps():
    """Each step loses a few questions more than it gains (within noise against the parent); the base sees the sum."""
    right = {"greedy": "A", "gold": "A"}
    wrong = {"greedy": "B", "gold": "A"}
    base = [right] * 30 + [wrong] * 70
    parent = [wrong] * 4 + [right] * 26 + [wrong] * 70  # iteration 1: 4 lost (p = 0.0625)
    current = [wrong] * 8 + [right] * 22 + [wrong] * 70  # iteration 2: 4 more lost, 8 against the base
    assert g.flip_rate(current, parent, CFG).passed  # each step is within noise
    r = g.flip_rate(current, parent, CFG, base=base)
    assert r.metrics["sets"]["held-out 4-option vs base"] == {"n": 100, "gained": 0, "lost": 8, "p_more_losses": 0.00391}
    assert not r.passed and "held-out 4-option vs base: 8 lost" in r.message  # p = 0.0039 < 0.05 / 2


def test_flip_rate_tests_each_set_at_a_bonferroni_level():
    steady = [{"greedy": "A", "gold": "A"}] * 40
    # 4 gained, 13 lost: p ~ 0.025, significant alone, not at 0.05 / 3
    marginal = {"a": {"n": 300, "gained": 4, "lost": 13}, "b": {"n": 300, "gained": 5, "lost": 5}}
    r = g.flip_rate(steady, steady, CFG, marginal)
    assert 0.05 / 3 < r.metrics["sets"]["a"]["p_more_losses"] < 0.05 and r.passed
    assert not g.flip_rate(steady, steady, CFG, {"a": marginal["a"]}).passed  # two sets: p = 0.0245 < 0.05 / 2


def test_task_format_and_answers_given_away():
    assert g.gives_answer_away("Is the red circle red?", ["red", "blue", "green", "pink"], "A")
    assert not g.gives_answer_away("What color is the circle?", ["red", "blue", "green", "pink"], "A")
    assert g.task_format(["kept"] * 8 + ["malformed"] * 2, degenerate=1, well_formed=8, cfg=CFG).passed
    r = g.task_format(["malformed"] * 99 + ["kept"], degenerate=0, well_formed=1, cfg=CFG)
    assert not r.passed and "99% of the 100" in r.message


def test_base_above_chance_uses_the_lower_bound():
    assert g.base_above_chance({"accuracy": 0.55, "n": 500, "ci95": [0.51, 0.59]}).passed
    r = g.base_above_chance({"accuracy": 0.27, "n": 500, "ci95": [0.23, 0.31]})
    assert not r.passed and "cannot self-evolve" in r.message


def test_base_above_chance_by_priors_alone_is_blind():
    seen = {"accuracy": 0.40, "n": 500, "ci95": [0.36, 0.44]}
    blind = g.base_above_chance(seen, blank={"accuracy": 0.39, "n": 500, "gained": 40, "lost": 35})
    assert not blind.passed and "blank one" in blind.message and blind.metrics["right_only_with_image"] == 40
    sees = g.base_above_chance(seen, blank={"accuracy": 0.28, "n": 500, "gained": 90, "lost": 30})
    assert sees.passed and sees.metrics["p_not_seeing"] < 0.001
