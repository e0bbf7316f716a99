"""The demo's gain sentence: the last iteration against the base on the same held-out questions, in words."""

import json

import pytest

from assets.store import IterationStore
from orchestration.demo import gain_sentence


def _write(path, right):
    path.parent.mkdir(parents=True, exist_ok=True)
    preds = [{"greedy": "A" if r else "B", "gold": "A"} for r in right]
    path.write_text(json.dumps({"procedural": {"predictions": preds}}))


@pytest.mark.parametrize("base, last, words", [
    ([False] * 150 + [True] * 50, [True] * 120 + [False] * 80, "is above zero: the Solver improved without labels"),
    ([True] * 120 + [False] * 80, [False] * 150 + [True] * 50, "is below zero: the Solver got worse"),
    ([True, False] * 100, [False, True] * 100, "includes zero: no gain the held-out set can show"),
])
def test_gain_sentence_says_what_the_interval_says(tmp_path, base, last, words):
    store = IterationStore(tmp_path)
    _write(store.base_scores_path("vzero"), base)
    _write(store.scores_path("vzero", "iter-0002"), last)
    text = gain_sentence(store, "vzero", ["iter-0001", "iter-0002"])
    assert "iter-0002 vs base, greedy on the same 200 held-out questions" in text and text.endswith(f"the interval {words}.")


def test_no_sentence_without_scores(tmp_path):
    assert gain_sentence(IterationStore(tmp_path), "vzero", ["iter-0001"]) == ""


def test_the_table_names_a_keep_column_that_is_not_c():
    from orchestration.demo import _row

    assert _row("iter-0001", {"mean_c": 0.61, "keep_column": "c"}, None, None)["mean_c"] == "0.61"
    assert _row("iter-0001", {"mean_c": 0.61}, None, None)["mean_c"] == "0.61"  # metadata written before the key
    # Vision-Zero keeps games by their well-formed clues (out of the players' count), not by a vote share
    assert _row("iter-0001", {"mean_c": 7.98, "keep_column": "well_formed_clues"}, None, None)["mean_c"] == "7.98 (well_formed_clues)"
