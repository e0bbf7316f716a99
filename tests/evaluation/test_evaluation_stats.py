import doctest

import pytest

import evaluation.stats
import models.formats
from evaluation.stats import Accuracy, wilson_interval


@pytest.mark.parametrize("module", [evaluation.stats, models.formats])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [(50, 100, 0.4038, 0.5962), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (1, 4, 0.0456, 0.6994)],
)
def test_wilson_interval_hand_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_accuracy_dict():
    a = Accuracy(3, 4)
    d = a.to_dict()
    assert d["accuracy"] == 0.75 and d["n"] == 4 and d["ci95"][0] < 0.75 < d["ci95"][1]
