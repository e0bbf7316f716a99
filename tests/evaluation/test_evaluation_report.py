"""Report printing: the headline table, skipped rows and per-category tables with n and 95% intervals."""

import json

from evaluation.report import BenchmarkResult, EvalReport

SKIPPED = [f"MMStar.tsv row index={i}: image (base64 text) is not a readable JPEG/PNG image: Truncated File Read" for i in (20, 21, 22, 23)]


def results():
    mm = BenchmarkResult(
        "MMStar", "accuracy", 0.5, 4, (0.15, 0.85),
        {"color": {"score": 0.5, "n": 2, "ci95": [0.094, 0.906]}, "shape": {"score": 1.0, "n": 2, "ci95": [0.342, 1.0]}},
        "p", "MMStar.parquet", "src", 16, 1.0, skipped=4, skipped_rows=SKIPPED,
    )  # fmt: skip
    mme = BenchmarkResult(
        "MME", "mme_total", 175.0, 6, (150.0, 200.0),
        {"perception": {"score": 125.0, "n": 4, "ci95": [100.0, 150.0]}, "subtasks_present": {"score": 2, "n": 14}},
        "p", "MME.parquet", "src", 8, 1.0,
    )  # fmt: skip
    pope = BenchmarkResult(
        "POPE", "f1", 0.8, 3, (0.5, 1.0),
        {"precision": {"score": 0.6667, "n": 3}, "random": {"score": 0.8, "n": 3, "ci95": [0.5, 1.0], "accuracy": 0.6667}},
        "p", "POPE.parquet", "src", 8, 1.0,
    )  # fmt: skip
    return {"MMStar": mm, "MME": mme, "POPE": pope}


EXPECTED = """\
benchmark  metric     score          95% CI  n  skipped
---------  ---------  -----  --------------  -  -------
MMStar     accuracy   50.0%    [15.0, 85.0]  4        4
MME        mme_total  175.0  [150.0, 200.0]  6        0
POPE       f1         80.0%   [50.0, 100.0]  3        0

MMStar: 4 rows skipped (image missing or unreadable):
  MMStar.tsv row index=20: image (base64 text) is not a readable JPEG/PNG image: Truncated File Read
  MMStar.tsv row index=21: image (base64 text) is not a readable JPEG/PNG image: Truncated File Read
  MMStar.tsv row index=22: image (base64 text) is not a readable JPEG/PNG image: Truncated File Read
  ... 1 more (report.json lists up to 100)

MMStar by category (accuracy, 95% CI, n):
  category   score         95% CI  n
  --------  ------  -------------  -
  color      50.0%    [9.4, 90.6]  2
  shape     100.0%  [34.2, 100.0]  2

MME by category (points, 95% CI, n):
  category    score          95% CI  n
  ----------  -----  --------------  -
  perception  125.0  [100.0, 150.0]  4

POPE by category (f1, 95% CI, n):
  category  score         95% CI  n
  --------  -----  -------------  -
  random    80.0%  [50.0, 100.0]  3"""


def test_text_table_by_hand():
    assert EvalReport("m", results()).text_table() == EXPECTED


def test_table_without_skipped_rows_has_no_skipped_column():
    res = results()
    res["MMStar"].skipped, res["MMStar"].skipped_rows = 0, []
    report = EvalReport("m", res)
    assert report.table().splitlines()[0].split() == ["benchmark", "metric", "score", "95%", "CI", "n"]
    assert "skipped" not in report.text_table()


def test_sub_scores_without_an_interval_stay_out_of_the_table():
    rows = results()["POPE"].sub_score_rows()
    assert rows == [("random", "80.0%", "[50.0, 100.0]", "3")]  # precision has no interval: report.json only
    assert BenchmarkResult("X", "accuracy", 1.0, 1, (0.2, 1.0), {}, "p", "x", "s", 8, 0.1).sub_score_table() == ""


def test_skipped_rows_round_trip_and_old_reports_load(tmp_path):
    report = EvalReport("m", results(), {"on_bad_image": "skip"})
    saved = json.loads(report.save(tmp_path / "report.json").read_text())
    assert saved["results"]["MMStar"]["skipped"] == 4 and saved["results"]["MMStar"]["skipped_rows"] == SKIPPED
    assert EvalReport.load(tmp_path).text_table() == EXPECTED
    old = dict(saved["results"]["MME"])
    del old["skipped"], old["skipped_rows"]
    old["added_later"] = True  # a field this version does not know
    back = BenchmarkResult.from_dict(old)
    assert back.skipped == 0 and back.skipped_rows == [] and back.score == 175.0
