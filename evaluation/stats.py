"""Intervals for scores: a score always travels with n and a 95% interval.

Accuracies get a Wilson interval (`wilson_interval`, `Accuracy`); scores that
are not a share of correct answers (POPE's F1, MME's point sums) get a seeded
percentile bootstrap (`bootstrap_interval`). `Score` carries any of them.

    >>> lo, hi = wilson_interval(50, 100)
    >>> round(lo, 3), round(hi, 3)
    (0.404, 0.596)
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval; well-behaved at 0% and 100% unlike the normal approximation."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Accuracy:
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict:
        lo, hi = self.interval
        return {"accuracy": round(self.value, 4), "n": self.n, "ci95": [round(lo, 4), round(hi, 4)]}

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{100 * self.value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={self.n})"


@dataclass(frozen=True)
class Score:
    """Any headline number (accuracy, F1, an MME sum) with its sample count and 95% interval.

    `Accuracy` is the special case of a share of correct answers; F1 and sums
    get their interval from `bootstrap_interval`.
    """

    value: float
    n: int
    ci95: tuple[float, float]

    @classmethod
    def from_accuracy(cls, acc: Accuracy) -> "Score":
        return cls(acc.value, acc.n, acc.interval)

    @classmethod
    def of_flags(cls, flags) -> "Score":
        """Share of true values in `flags`, with a Wilson interval."""
        flags = [bool(x) for x in flags]
        return cls.from_accuracy(Accuracy(sum(flags), len(flags)))

    def to_dict(self, digits: int = 4) -> dict:
        return {"score": round(self.value, digits), "n": self.n, "ci95": [round(self.ci95[0], digits), round(self.ci95[1], digits)]}


def bootstrap_intervals(
    n_units: int,
    statistic,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    strata=None,
) -> list[tuple[float, float]]:
    """Percentile bootstrap intervals of a vector-valued `statistic(indices)` over resampled units.

    `statistic` receives an integer array of unit indices drawn with
    replacement (a unit is whatever must be resampled together: a question,
    or an image with both of its MME questions) and returns a float or a 1-d
    array; one interval per component comes back. `strata` (one label per
    unit) resamples within each stratum, so every MME subtask or POPE split
    keeps its size. Seeded: the same predictions always give the same interval.
    """
    import numpy as np

    if n_units <= 0:
        return [(float("nan"), float("nan"))]
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n_units)]
    else:
        labels = np.asarray(list(strata))
        if len(labels) != n_units:
            raise ValueError(f"strata must label every unit: expected {n_units} labels, found {len(labels)}")
        groups = [np.flatnonzero(labels == v) for v in dict.fromkeys(labels.tolist())]
    draws = []
    for _ in range(n_resamples):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        draws.append(np.atleast_1d(np.asarray(statistic(idx), dtype=float)))
    qs = np.quantile(np.stack(draws), [alpha / 2, 1 - alpha / 2], axis=0)
    return [(float(lo), float(hi)) for lo, hi in zip(qs[0], qs[1])]


def bootstrap_interval(
    n_units: int,
    statistic,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    strata=None,
) -> tuple[float, float]:
    """The 95% (by default) percentile bootstrap interval of a scalar statistic; see `bootstrap_intervals`."""
    return bootstrap_intervals(n_units, statistic, n_resamples, seed, alpha, strata)[0]


def paired_difference(before, after, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of after - before over paired questions (True/False each), with its 95% paired bootstrap interval.

    Questions are resampled together, so the interval reflects the per-question correlation of the two
    models (much narrower than two independent intervals).

    >>> d = paired_difference([False] * 50 + [True] * 50, [True] * 70 + [False] * 30)
    >>> round(d["diff"], 2), d["n"], d["ci95"][0] > 0
    (0.2, 100, True)
    """
    import numpy as np

    if len(before) != len(after):
        raise ValueError(f"paired_difference needs the same questions: {len(before)} before, {len(after)} after")
    diffs = np.array([int(a) - int(b) for b, a in zip(before, after)], dtype=float)
    lo, hi = bootstrap_interval(len(diffs), lambda idx: diffs[idx].mean(), n_resamples=n_resamples, seed=seed)
    return {"diff": float(diffs.mean()) if len(diffs) else 0.0, "ci95": [lo, hi], "n": len(diffs)}


def mcnemar_losses_p(gains: int, losses: int) -> float:
    """One-sided exact McNemar: P(at least `losses` of the discordant pairs are losses | no real change)."""
    from scipy.stats import binomtest

    n = gains + losses
    return 1.0 if n == 0 else float(binomtest(losses, n, 0.5, alternative="greater").pvalue)
