"""Evaluation reports: what `evaluate_model` returns and writes, how it prints, how two compare.

`BenchmarkResult` is one benchmark's headline score with its n and 95%
interval, its sub-scores (per category, split or subtask, each with n and an
interval where one applies), the rows left out for a bad image and where the
per-sample predictions are. `EvalReport` holds them for one model and is
saved as report.json. `text_table()` is what `zeroforge eval` prints: the
headline table, then one table of sub-scores per benchmark. `compare` lines
several reports up and `regressed` says whether a drop is beyond noise.

    report = EvalReport.load("out/eval")            # the folder or its report.json
    print(report.text_table())
    compare({"base": base_report, "iter3": report})   # leaderboard DataFrame
    regressed(base_report["MMStar"], report["MMStar"])
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from evaluation.stats import Score, mcnemar_losses_p

REPORT_FILE = "report.json"
RATIO_METRICS = ("accuracy", "relaxed_accuracy", "f1", "aAcc")  # printed as percentages
SKIPPED_ROWS_KEPT = 100  # report.json lists at most this many skipped rows (the count is always exact)
SKIPPED_ROWS_PRINTED = 3


def _align(rows: list[tuple[str, ...]], left: int, indent: str = "") -> list[str]:
    """Columns padded to their widest cell: the first `left` left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        indent + "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]
    lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return lines


@dataclass
class BenchmarkResult:
    """One benchmark's outcome: headline score with n and 95% CI, sub-scores, prompt, predictions file."""

    name: str
    metric: str
    score: float
    n: int
    ci95: tuple[float, float]
    sub_scores: dict[str, dict]
    prompt: str
    predictions_path: str
    source: str
    max_new_tokens: int
    seconds: float
    skipped: int = 0  # rows left out because their image could not be used (on_bad_image="skip")
    skipped_rows: list[str] = field(default_factory=list)  # "file row: reason", the first SKIPPED_ROWS_KEPT

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = [round(self.ci95[0], 4), round(self.ci95[1], 4)]
        d["score"] = round(self.score, 4)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "BenchmarkResult":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}  # reports written by other versions still load
        d["ci95"] = tuple(d["ci95"])
        return cls(**d)

    @property
    def in_points(self) -> bool:
        """MME's sums are points; every other headline (and sub-score) is a share, printed in %."""
        return self.metric not in RATIO_METRICS

    def _fmt(self, value: float, ci: Sequence[float]) -> tuple[str, str]:
        if any(isinstance(x, float) and math.isnan(x) for x in (value, *ci)):
            return "-", "-"
        if self.in_points:
            return f"{value:.1f}", f"[{ci[0]:.1f}, {ci[1]:.1f}]"
        return f"{100 * value:.1f}%", f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"

    def formatted(self) -> tuple[str, str]:
        """(score, '[lo, hi]') as printed: percentages for ratios, points for MME."""
        return self._fmt(self.score, self.ci95)

    def sub_score_rows(self) -> list[tuple[str, str, str, str]]:
        """(name, score, '[lo, hi]', n) for every sub-score with a sample count and an interval.

        Those are the per-category (split, subtask, task type) scores and the
        group scores such as HallusionBench's qAcc; POPE's precision or the
        yes-ratio carry no interval and stay in report.json.
        """
        rows = []
        for name, sub in self.sub_scores.items():
            if isinstance(sub, Mapping) and "ci95" in sub and "n" in sub and "score" in sub:
                rows.append((name, *self._fmt(float(sub["score"]), sub["ci95"]), str(sub["n"])))
        return rows

    def sub_score_table(self) -> str:
        """The sub-scores as an indented text table under a title line; '' when there are none."""
        rows = self.sub_score_rows()
        if not rows:
            return ""
        unit = "points" if self.in_points else self.metric
        title = f"{self.name} by category ({unit}, 95% CI, n):"
        return "\n".join([title, *_align([("category", "score", "95% CI", "n"), *rows], 1, "  ")])

    def skipped_text(self) -> str:
        """'MMStar: 2 rows skipped (image missing or unreadable): ...' with the first rows; '' if none."""
        if not self.skipped:
            return ""
        lines = [f"{self.name}: {self.skipped} row{'s' if self.skipped != 1 else ''} skipped (image missing or unreadable):"]
        lines += [f"  {row}" for row in self.skipped_rows[:SKIPPED_ROWS_PRINTED]]
        if self.skipped > SKIPPED_ROWS_PRINTED:
            lines.append(f"  ... {self.skipped - SKIPPED_ROWS_PRINTED} more (report.json lists up to {SKIPPED_ROWS_KEPT})")
        return "\n".join(lines)


@dataclass
class EvalReport:
    """Results per benchmark plus how they were produced (model, engine, decoding settings)."""

    model: str
    results: dict[str, BenchmarkResult]
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def __getitem__(self, name: str) -> BenchmarkResult:
        if name not in self.results:
            raise KeyError(f"no result for benchmark {name!r}; this report has {sorted(self.results)}")
        return self.results[name]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "created": self.created,
            "settings": self.settings,
            "results": {k: v.to_dict() for k, v in self.results.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "EvalReport":
        results = {k: BenchmarkResult.from_dict(v) for k, v in d["results"].items()}
        return cls(d.get("model", "?"), results, dict(d.get("settings", {})), d.get("created", ""))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "EvalReport":
        path = Path(path)
        if path.is_dir():
            path = path / REPORT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"expected an evaluation report at {path}, found nothing")
        return cls.from_dict(json.loads(path.read_text()))

    def table(self) -> str:
        """Plain-text table: benchmark, metric, score, 95% CI, n (and skipped, when rows were)."""
        skipped = any(r.skipped for r in self.results.values())
        rows = [("benchmark", "metric", "score", "95% CI", "n", *(("skipped",) if skipped else ()))]
        for r in self.results.values():
            rows.append((r.name, r.metric, *r.formatted(), str(r.n), *((str(r.skipped),) if skipped else ())))
        return "\n".join(_align(rows, 2))

    def text_table(self) -> str:
        """What `zeroforge eval` prints: `table()`, the skipped rows, then each benchmark's sub-scores."""
        parts = [self.table()]
        parts += [t for r in self.results.values() if (t := r.skipped_text())]
        parts += [t for r in self.results.values() if (t := r.sub_score_table())]
        return "\n\n".join(parts)


# ---------------------------------------------------------------- comparing reports


def _as_report(r) -> EvalReport:
    if isinstance(r, EvalReport):
        return r
    if isinstance(r, Mapping):
        return EvalReport.from_dict(r)
    return EvalReport.load(r)


def compare(reports_by_label: Mapping[str, Any]):
    """Leaderboard: one row per benchmark, columns (label, score | ci_low | ci_high | n | regressed).

    Reports may be `EvalReport`s, their `.to_dict()`, or paths to report.json
    (or its folder). The first label is the baseline: every later label gets
    a `regressed` column (see `regressed`). A benchmark a report lacks is NaN.
    """
    import pandas as pd

    if not reports_by_label:
        raise ValueError("compare needs at least one report")
    reports = {label: _as_report(r) for label, r in reports_by_label.items()}
    benches = list(dict.fromkeys(b for r in reports.values() for b in r.results))
    labels = list(reports)
    base = reports[labels[0]]
    data: dict[tuple[str, str], list] = {}
    for i, label in enumerate(labels):
        res = reports[label].results
        data[(label, "score")] = [res[b].score if b in res else math.nan for b in benches]
        data[(label, "ci_low")] = [res[b].ci95[0] if b in res else math.nan for b in benches]
        data[(label, "ci_high")] = [res[b].ci95[1] if b in res else math.nan for b in benches]
        data[(label, "n")] = [res[b].n if b in res else pd.NA for b in benches]
        if i > 0:
            data[(label, "regressed")] = [
                regressed(base.results[b], res[b]) if b in res and b in base.results else pd.NA for b in benches
            ]
    df = pd.DataFrame(data, index=pd.Index(benches, name="benchmark"))
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["label", "field"])
    return df


def _score_ci(x) -> tuple[float, tuple[float, float]]:
    if isinstance(x, (BenchmarkResult, Score)):
        value = x.score if isinstance(x, BenchmarkResult) else x.value
        return float(value), (float(x.ci95[0]), float(x.ci95[1]))
    if isinstance(x, Mapping):
        value = x.get("score", x.get("accuracy"))
        if value is None or "ci95" not in x:
            raise ValueError(f"expected a dict with 'score' (or 'accuracy') and 'ci95', found keys {sorted(x)}")
        return float(value), (float(x["ci95"][0]), float(x["ci95"][1]))
    if isinstance(x, Sequence) and len(x) == 2:
        return float(x[0]), (float(x[1][0]), float(x[1][1]))
    raise TypeError(f"expected a BenchmarkResult, Score, {{'score', 'ci95'}} dict or (score, (lo, hi)), found {type(x).__name__}")


def regressed(prev, cur) -> bool:
    """True when `cur` dropped below `prev` by more than the two intervals allow.

    Each argument is a score with its 95% interval (BenchmarkResult, Score,
    {'score', 'ci95'} dict or (score, (lo, hi))). The drop must exceed
    sqrt(a^2 + b^2), where a is prev's lower half-width and b cur's upper
    half-width: the usual 95% test for a difference of two independent
    estimates, less jumpy than "below prev's interval" and less blind than
    "intervals do not overlap".
    """
    p, (p_lo, _) = _score_ci(prev)
    c, (_, c_hi) = _score_ci(cur)
    drop = p - c
    margin = math.hypot(max(p - p_lo, 0.0), max(c_hi - c, 0.0))
    return drop > margin


def paired_change(prev: BenchmarkResult, cur: BenchmarkResult) -> dict | None:
    """Question by question, what `cur` gained and lost against `prev` on the same benchmark.

    Returns {"n", "gained", "lost", "delta", "p_more_losses"} over the questions both prediction files
    hold (matched by id; `delta` in points, `p_more_losses` the exact one-sided McNemar test that cur
    loses more than it gains), or None when a file is missing or they share no question. Paired, so far
    more sensitive than `regressed`, which compares two intervals as if the questions were different:
    the same 387 questions moving 17 right and 38 wrong (-5.4 points) is p = 0.003 here and within the
    intervals there.
    """
    import pandas as pd

    paths = [Path(r.predictions_path) for r in (prev, cur)]
    if not all(p.is_file() for p in paths):
        return None
    a, b = (pd.read_parquet(p, columns=["id", "correct"]) for p in paths)
    both = a.merge(b, on="id", suffixes=("_prev", "_cur"))
    if both.empty:
        return None
    was, now = both["correct_prev"].astype(bool), both["correct_cur"].astype(bool)
    gained, lost = int((now & ~was).sum()), int((was & ~now).sum())
    p = mcnemar_losses_p(gained, lost)
    return {"n": len(both), "gained": gained, "lost": lost, "delta": round(100 * (gained - lost) / len(both), 2),
            "p_more_losses": round(p, 5)}


def regression_verdict(prev: BenchmarkResult, cur: BenchmarkResult, alpha: float = 0.05) -> tuple[bool, str, dict | None]:
    """(regressed, a one-line summary, the `paired_change` or None): paired when both predictions files are
    there (losses significantly more than gains at `alpha`), else `regressed` on the two intervals."""
    change = paired_change(prev, cur)
    if change is None:
        return regressed(prev, cur), "intervals only", None
    summary = f"{change['delta']:+.1f} pts, +{change['gained']}/-{change['lost']}, p={change['p_more_losses']:.3g}"
    return change["p_more_losses"] < alpha, summary, change
