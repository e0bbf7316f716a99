"""The core's shared pieces: reward tables (hand-computed from recipes.md), majority/band logic, keep rules, the GX gate."""

import pandas as pd
import pytest

from recipes.core.keep import KeepRule
from recipes.core.rewards import MALFORMED, choice_format, completion_text, solver_accuracy, uncertainty
from recipes.core.types import CORE_REASONS
from recipes.core.validation import validate_task_set as _validate
from recipes.core.voting import band_reason, majority_vote

BAND = KeepRule.band(0.3, 0.8)
REASONS = (*CORE_REASONS, *BAND.drop_reasons())


def validate_task_set(df, rule, resolvable):
    return _validate(df, rule, resolvable, REASONS)


@pytest.mark.parametrize("c, expected", [(0.0, 0.0), (0.1, 0.1), (0.3, 0.3), (0.5, 0.5), (0.7, 0.3), (1.0, 0.0)])
def test_uncertainty_is_min_c_one_minus_c(c, expected):
    assert uncertainty(c) == pytest.approx(expected)


def test_solver_rewards_follow_trl_contract():
    completions = [
        [{"role": "assistant", "content": "blue \\boxed{B}"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{C}"}]}],
        "\\boxed{}",
        [{"role": "assistant", "content": ""}],
    ]
    labels = ["B", "B", "A", "D"]
    assert solver_accuracy(completions, pseudo_label=labels, image=[None] * 4) == [1.0, 0.0, 0.0, 0.0]
    assert choice_format(completions) == [1.0, 1.0, 0.0, 0.0]
    # TRL's weighted sum with reward_weights [0.9, 0.1]
    total = [0.9 * a + 0.1 * f for a, f in zip(solver_accuracy(completions, labels), choice_format(completions))]
    assert total == pytest.approx([1.0, 0.1, 0.0, 0.0])
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x" and MALFORMED == -1.0


@pytest.mark.parametrize(
    "answers, label, c",
    [
        (["A"] * 10, "A", 1.0),
        (["A"] * 6 + ["B"] * 4, "A", 0.6),
        (["A"] * 3 + ["B"] * 2 + [None] * 5, "A", 0.3),  # invalid answers count in m
        (["A"] * 5 + ["B"] * 5, None, 0.5),  # tie: no majority
        ([None] * 10, None, 0.0),
        ([], None, 0.0),
    ],
)
def test_majority_vote_table(answers, label, c):
    assert majority_vote(answers) == (label, pytest.approx(c))


@pytest.mark.parametrize("c, reason", [(0.29, "too_hard"), (0.3, "kept"), (0.8, "kept"), (0.81, "too_easy")])
def test_band_edges_are_inclusive(c, reason):
    assert band_reason(c, 0.3, 0.8) == reason


def _task_set(**overrides):
    rows = [
        dict(task_id="t0", iteration=1, image_id="img0", question="What color is the circle?", options=["red", "blue", "green", "yellow"],
             answers=["A", "A", "B", "C"], majority="A", c=0.5, kept=True, reason="kept"),
        dict(task_id="t1", iteration=1, image_id="img1", question="How many shapes?", options=["1", "2", "3", "4"],
             answers=["B"] * 4, majority="B", c=1.0, kept=False, reason="too_easy"),
        dict(task_id="t2", iteration=1, image_id="img2", question="", options=[], answers=[], majority=None, c=0.0, kept=False, reason="malformed"),
    ]
    df = pd.DataFrame(rows)
    for col, (idx, value) in overrides.items():
        df.at[idx, col] = value
    return df


ALL_IMAGES = {"img0", "img1", "img2"}.__contains__


def test_gx_passes_a_good_task_set():
    report = validate_task_set(_task_set(), BAND, ALL_IMAGES)
    assert report.success, report.markdown()
    assert len(report.results) >= 8


@pytest.mark.parametrize(
    "overrides, resolvable, failing",
    [
        ({"c": (0, 0.95)}, ALL_IMAGES, "expect_column_pair_values_a_to_be_greater_than_b"),  # kept row outside the band
        ({"reason": (1, "too_weird")}, ALL_IMAGES, "expect_column_values_to_be_in_set"),  # a reason nobody declared
        ({"majority": (0, "E")}, ALL_IMAGES, "expect_column_values_to_be_in_set"),  # label not an option
        ({"options": (1, ["1", "2", "3"])}, ALL_IMAGES, "expect_column_values_to_be_between"),  # three options
        ({}, {"img1", "img2"}.__contains__, "expect_column_values_to_be_in_set"),  # image not in the pool
        ({"kept": (0, False), "reason": (0, "too_hard")}, ALL_IMAGES, "expect_column_sum_to_be_between"),  # nothing kept
    ],
)
def test_gx_fails_bad_task_sets_with_a_readable_report(overrides, resolvable, failing):
    report = validate_task_set(_task_set(**overrides), BAND, resolvable)
    assert not report.success
    assert failing in {f["expectation"] for f in report.failures()}
    assert "| NO |" in report.markdown()


def test_gx_flags_duplicate_kept_questions():
    df = pd.concat([_task_set(), _task_set().iloc[[0]].assign(task_id="t3")], ignore_index=True)
    report = validate_task_set(df, BAND, ALL_IMAGES)
    assert [f["expectation"] for f in report.failures()] == ["expect_compound_columns_to_be_unique"]


def test_gx_reports_missing_columns():
    report = validate_task_set(_task_set().drop(columns=["majority"]), BAND, ALL_IMAGES)
    assert not report.success and report.failures()[0]["examples"] == ["majority"]


@pytest.mark.parametrize(
    "rows, says",
    [
        (0, "produced no tasks"),  # an empty iteration: no proposals at all
        ("malformed", "were malformed"),  # every proposal malformed
        ("band", "no task passed the recipe's keep rule (c in all [0.3, 0.8]; malformed 1, too_easy 1, too_hard 1)"),
    ],
)
def test_failed_task_set_says_what_to_do(rows, says):
    df = _task_set(kept=(0, False), reason=(0, "too_hard"))
    if rows == 0:
        df = df.iloc[0:0]
    elif rows == "malformed":
        df = df.assign(reason="malformed", kept=False)
    report = validate_task_set(df, BAND, ALL_IMAGES)
    assert not report.success and says in report.next_step and report.next_step.startswith("Empty iteration")
    assert validate_task_set(_task_set(), BAND, ALL_IMAGES).next_step == ""
    broken = validate_task_set(_task_set(majority=(0, "E")), BAND, ALL_IMAGES)
    assert "labeling bug" in broken.next_step and "expect_column_values_to_be_in_set" in broken.next_step


def test_keep_rule_bands_per_kind_and_sibling_requirement():
    rule = KeepRule({"easy": (0.5, 1.0), "hard": (0.25, 0.75)}, requires={"hard": "easy"}, group_key="item")
    rows = [{"c": 0.6, "meta": {"question_kind": "easy", "item": 0}}, {"c": 0.9, "meta": {"question_kind": "hard", "item": 0}},
            {"c": 0.4, "meta": {"question_kind": "easy", "item": 1}}, {"c": 0.5, "meta": {"question_kind": "hard", "item": 1}}]
    assert rule.decide(rows) == ["kept", "too_easy", "too_hard", "easy_failed"]
    assert rule.drop_reasons() == ("too_hard", "too_easy", "easy_failed")


def test_gate_checks_the_declared_rule_not_the_loop_band():
    """A kept hard row with c = 0.9 passes a [0.3, 0.8]-band gate's envelope check only if the rule says so: it must not."""
    rule = KeepRule({"easy": (0.5, 1.0), "hard": (0.25, 0.75)}, requires={"hard": "easy"}, group_key="item")
    df = _task_set()
    df["meta"] = ['{"question_kind": "easy", "item": 0}', '{"question_kind": "hard", "item": 0}', "{}"]
    df.at[0, "c"], df.at[1, "kept"], df.at[1, "reason"], df.at[1, "c"] = 0.9, True, "kept", 0.5
    reasons = (*CORE_REASONS, *rule.drop_reasons())
    assert _validate(df, rule, ALL_IMAGES, reasons).success  # easy c=0.9 is inside [0.5, 1.0]
    df.at[1, "c"] = 0.9  # hard c=0.9 is outside [0.25, 0.75]
    bad = _validate(df, rule, ALL_IMAGES, reasons)
    assert not bad.success and "expect_column_pair_values_a_to_be_greater_than_b" in {f["expectation"] for f in bad.failures()}
    df.at[1, "c"], df.at[0, "kept"], df.at[0, "reason"] = 0.5, False, "too_hard"  # hard kept without its easy sibling
    orphan = _validate(df, rule, ALL_IMAGES, reasons)
    assert "sibling_kept" in {f["column"] for f in orphan.failures()}


def _kept_task_set(n: int) -> pd.DataFrame:
    return pd.DataFrame({"task_id": [f"iter-0001-{i:05d}" for i in range(n)], "image_id": [f"img{i}" for i in range(n)],
                         "question": ["What color is the circle?"] * n, "options": [["red", "Blue", "green", "pink"]] * n,
                         "majority": ["B"] * n, "kept": [True] * n})


@pytest.mark.parametrize("share, expected", [(0.0, 0), (1.0, 40), (0.5, None)])
def test_open_twins_ask_a_share_of_kept_tasks_openly_with_the_majority_text(share, expected):
    from types import SimpleNamespace

    from models.formats import kind_of_prompt, prompt_text
    from recipes.core.loop import solver_rows

    ctx = SimpleNamespace(config=SimpleNamespace(open_twin_share=share, seed=3), image=lambda image_id: image_id)
    rows = solver_rows(ctx, _kept_task_set(40))
    twins = [r for r in rows if r["task_id"].endswith("-open")]
    mc = [r for r in rows if not r["task_id"].endswith("-open")]
    assert len(mc) == 40 and all(r["pseudo_label"] == "B" for r in mc)  # every kept task keeps its 4-option row
    if expected is None:
        assert 10 < len(twins) < 30  # a fixed per-task draw near the share
        assert [r["task_id"] for r in solver_rows(ctx, _kept_task_set(40)) if r["task_id"].endswith("-open")] == \
            [r["task_id"] for r in twins]  # the same draw on a rerun
    else:
        assert len(twins) == expected
    image_of = {r["task_id"]: r["image"] for r in mc}
    for r in twins:
        text = prompt_text(r["prompt"])
        assert kind_of_prompt(text) == "open" and "A. red" not in text  # the stem without its options
        assert r["pseudo_label"] == "blue"  # the majority's option text, normalised: still no true label
        assert r["image"] == image_of[r["task_id"].removesuffix("-open")]  # about the same image
        assert rows.index(r) == [x["task_id"] for x in rows].index(r["task_id"].removesuffix("-open")) + 1
