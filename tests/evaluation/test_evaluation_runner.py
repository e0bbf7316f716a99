"""evaluate_model with scripted engines, the procedural held-out set, compare and regressed."""

import json

import pandas as pd
import pytest
from test_evaluation_readers import MC_ROWS, write_tsv

from evaluation.benchmarks import load_benchmark
from evaluation.procedural import procedural_samples
from evaluation.readers import BenchmarkFileError, BenchmarkFormatError, BenchSample
from evaluation.runner import BenchmarkResult, EvalReport, compare, evaluate_model, regressed
from evaluation.stats import Score
from models.formats import solver_prompt


def key(request):
    return (request.prompt, tuple(img.tobytes() for img in request.images))


class ScriptedEngine:
    """Replies looked up by (prompt, image pixels); records every batch it is given."""

    name = "scripted"

    def __init__(self, table, default="I do not know"):
        self.table, self.default, self.calls = table, default, []

    def generate(self, requests, params):
        self.calls.append((len(requests), params))
        return [[self.table.get(key(r), self.default)] for r in requests]


def procedural_engine(limit):
    """Right on even positions, wrong on odd ones: a known score."""
    _, _, samples = load_benchmark("procedural", limit=limit)
    table, right = {}, {}
    for i, s in enumerate(samples):
        letter = s.answer if i % 2 == 0 else "ABCD"[("ABCD".index(s.answer) + 1) % 4]
        k = (solver_prompt(s.question, list(s.options.values())), tuple(img.tobytes() for img in s.images))
        table[k] = f"\\boxed{{{letter}}}"
        right[s.id] = i % 2 == 0
    return ScriptedEngine(table), right


def test_procedural_benchmark_end_to_end(tmp_path):
    engine, right = procedural_engine(24)
    report = evaluate_model(engine, {"procedural": None}, tmp_path, limit=24)
    res = report["procedural"]
    assert res.metric == "accuracy" and res.n == 24 and res.score == sum(right.values()) / 24
    assert res.ci95[0] < res.score < res.ci95[1]
    params = engine.calls[0][1]
    assert params.temperature == 0.0 and params.n == 1  # greedy, deterministic
    df = pd.read_parquet(res.predictions_path)
    assert list(df.columns[:9]) == ["benchmark", "id", "prompt", "reply", "extracted", "answer", "correct", "extracted_from", "rule"]
    assert len(df) == 24 and dict(zip(df["id"], df["correct"])) == right  # replies map back to their sample
    assert df["correct"].mean() == res.score
    assert set(df["group"]) <= set(res.sub_scores)  # per task type breakdown
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))
    assert saved["results"]["procedural"]["ci95"] == [round(x, 4) for x in res.ci95]
    assert "solver_prompt" in saved["results"]["procedural"]["prompt"]


def test_mixed_benchmarks_with_a_fixed_reply(tmp_path):
    write_tsv(tmp_path / "MMStar.tsv", MC_ROWS)
    (tmp_path / "pope").mkdir()
    pope_rows = [{"index": i, "image": MC_ROWS[0]["image"] if i == 0 else "0", "question": f"Is there a {o}?",
                  "answer": a, "category": "random"} for i, (o, a) in enumerate([("cat", "yes"), ("dog", "no"), ("cup", "yes")])]
    write_tsv(tmp_path / "pope" / "POPE.tsv", pope_rows)
    engine = ScriptedEngine({}, default="Yes, (A)")
    report = evaluate_model(engine, {"MMStar": tmp_path, "POPE": tmp_path / "pope"}, tmp_path / "out")
    mm, pope = report["MMStar"], report["POPE"]
    golds = [r["answer"] for r in MC_ROWS]
    assert mm.n == 3 and mm.score == pytest.approx(golds.count("A") / 3)
    # always "yes": recall 1, precision 2/3 -> F1 0.8; yes-ratio 1.
    assert pope.metric == "f1" and pope.score == pytest.approx(0.8) and pope.sub_scores["yes_ratio"]["score"] == 1.0
    assert "Answer with the option letter." in mm.prompt
    assert {p.name for p in (tmp_path / "out" / "predictions").iterdir()} == {"MMStar.parquet", "POPE.parquet"}
    assert "MMStar" in report.table() and "80.0%" in report.table()


def test_chunked_generation_keeps_order_and_releases_images(monkeypatch):
    from PIL import Image

    import evaluation.runner as runner

    monkeypatch.setattr(runner, "CHUNK_REQUESTS", 4)
    shared = Image.new("RGB", (4, 4), (1, 2, 3))
    samples = [BenchSample(str(i), [shared if i % 3 == 0 else Image.new("RGB", (2 + i, 2), (i, 0, 0))], f"q{i}", "A")
               for i in range(10)]
    prompts = [s.question for s in samples]

    class Echo:
        name, batch_size, calls = "echo", 2, []

        def generate(self, requests, params):
            self.calls.append(len(requests))
            return [[f"reply to {r.prompt}"] for r in requests]

    engine = Echo()
    replies = runner.generate_replies(engine, samples, prompts, 8, release_images=True)
    assert replies == [f"reply to q{i}" for i in range(10)] and engine.calls == [4, 4, 2]
    with pytest.raises(ValueError, match="closed"):
        shared.getpixel((0, 0))  # pixels freed after the last request using them


def test_missing_file_fails_before_any_generation(tmp_path):
    engine = ScriptedEngine({})
    with pytest.raises(BenchmarkFileError, match="MathVista_MINI.tsv"):
        evaluate_model(engine, {"procedural": None, "MathVista": tmp_path}, tmp_path / "out", limit=2)
    assert engine.calls == []


def test_procedural_set_is_fixed_held_out_and_the_one_every_model_is_scored_on():
    from recipes.core.bootstrap import labeled_examples
    from retrieval.world import sample_world
    from retrieval.world.tasks import TASK_TYPES

    a, b = procedural_samples(30), procedural_samples(30)
    assert [(s.id, s.answer, s.question) for s in a] == [(s.id, s.answer, s.question) for s in b]
    assert {s.meta["task_type"] for s in a} == set(TASK_TYPES)
    # training images use seeds below 10^6; per-image seeds are seed * 1_000_003 + i.
    assert min(s.meta["world_seed"] for s in a) > (10**6) * 1_000_003
    train_ids = {wi.id for wi in sample_world(30, seed=0)}
    assert not train_ids & {s.meta["image_id"] for s in a}
    # the harness asks exactly the questions the base's card and benchmark_scores ask (the test split)
    held = labeled_examples("test", 30)
    assert [s.question for s in a] == [e.prompt.split("\n")[0] for e in held]


def result(name, score, ci, n=100, metric="accuracy"):
    return BenchmarkResult(name, metric, score, n, ci, {}, "p", f"{name}.parquet", "src", 16, 1.0)


def test_compare_two_reports():
    base = EvalReport("base", {"MMStar": result("MMStar", 0.60, (0.55, 0.65)), "POPE": result("POPE", 0.80, (0.77, 0.83), metric="f1")})
    new = EvalReport("new", {"MMStar": result("MMStar", 0.50, (0.45, 0.55)), "procedural": result("procedural", 0.9, (0.85, 0.94))})
    df = compare({"base": base, "iter1": new.to_dict()})
    assert list(df.index) == ["MMStar", "POPE", "procedural"]
    assert df.loc["MMStar", ("base", "score")] == 0.60 and df.loc["MMStar", ("iter1", "score")] == 0.50
    assert df.loc["POPE", ("base", "ci_low")] == 0.77 and df.loc["POPE", ("base", "n")] == 100
    assert pd.isna(df.loc["POPE", ("iter1", "score")]) and pd.isna(df.loc["procedural", ("base", "score")])
    assert bool(df.loc["MMStar", ("iter1", "regressed")]) is True
    assert ("base", "regressed") not in df.columns


def test_compare_reads_saved_reports(tmp_path):
    EvalReport("m", {"POPE": result("POPE", 0.8, (0.7, 0.9))}).save(tmp_path / "report.json")
    df = compare({"a": tmp_path, "b": tmp_path / "report.json"})
    assert df.loc["POPE", ("a", "score")] == df.loc["POPE", ("b", "score")] == 0.8
    assert bool(df.loc["POPE", ("b", "regressed")]) is False


@pytest.mark.parametrize(
    "prev, cur, expected",
    [
        ((0.60, (0.55, 0.65)), (0.50, (0.45, 0.55)), True),  # drop 0.10 > hypot(0.05, 0.05)
        ((0.60, (0.55, 0.65)), (0.56, (0.51, 0.61)), False),  # within noise
        ((0.60, (0.55, 0.65)), (0.70, (0.65, 0.75)), False),  # improvement
        ({"score": 0.9, "ci95": [0.89, 0.91]}, {"accuracy": 0.85, "ci95": [0.84, 0.86]}, True),
        (Score(1500.0, 2000, (1450.0, 1550.0)), Score(1480.0, 2000, (1430.0, 1530.0)), False),
    ],
)
def test_regressed(prev, cur, expected):
    assert regressed(prev, cur) is expected


def test_paired_regression_sees_a_drop_the_intervals_miss(tmp_path):
    """The same 387 questions, 17 turned right and 38 wrong (the demo's open questions after two iterations):
    -5.4 points, inside the two intervals but clearly a loss when paired; without predictions, the intervals."""
    from evaluation.report import paired_change, regression_verdict

    ids = [f"q{i}" for i in range(387)]
    before = [i < 118 for i in range(387)]  # 118 right: 30.5%
    after = [(b and not (i < 38)) or (not b and i < 118 + 17) for i, b in enumerate(before)]
    for name, flags in (("before", before), ("after", after)):
        pd.DataFrame({"id": ids, "correct": flags, "reply": "x"}).to_parquet(tmp_path / f"{name}.parquet")
    prev = BenchmarkResult("open", "accuracy", sum(before) / 387, 387, (0.261, 0.353), {}, "p", str(tmp_path / "before.parquet"), "s", 12, 1.0)
    cur = BenchmarkResult("open", "accuracy", sum(after) / 387, 387, (0.210, 0.296), {}, "p", str(tmp_path / "after.parquet"), "s", 12, 1.0)
    assert not regressed(prev, cur)  # the unpaired test does not see it
    change = paired_change(prev, cur)
    assert (change["n"], change["gained"], change["lost"], change["delta"]) == (387, 17, 38, -5.43)
    assert 0.002 < change["p_more_losses"] < 0.005
    bad, summary, _ = regression_verdict(prev, cur)
    assert bad and summary == "-5.4 pts, +17/-38, p=0.00323"
    assert regression_verdict(cur, prev)[0] is False  # gains never count against an iteration
    assert paired_change(prev, prev)["p_more_losses"] == 1.0
    gone = BenchmarkResult("open", "accuracy", 0.25, 387, (0.21, 0.30), {}, "p", str(tmp_path / "missing.parquet"), "s", 12, 1.0)
    assert paired_change(prev, gone) is None and regression_verdict(prev, gone)[1] == "intervals only"


def test_regressed_rejects_scores_without_interval():
    with pytest.raises(ValueError, match="ci95"):
        regressed({"score": 0.5}, {"score": 0.4, "ci95": [0.3, 0.5]})


def test_progress_bars_and_status_on_stderr(tmp_path, capsys):
    write_tsv(tmp_path / "MMStar.tsv", MC_ROWS)
    engine = ScriptedEngine({}, default="\\boxed{A}")
    engine.batch_size = 2
    evaluate_model(engine, {"MMStar": tmp_path, "procedural": None}, tmp_path / "out", limit=5, progress=True)
    err = capsys.readouterr().err
    assert "reading MMStar from" in err and "MMStar: 3 samples from" in err
    assert "MMStar: 3/3 samples" in err and "procedural: 5/5 samples" in err
    assert "samples/s" in err and "ETA" in err
    # one engine call per batch of 2 while a bar is shown
    assert [n for n, _ in engine.calls] == [2, 1, 2, 2, 1]


def test_no_progress_is_silent(tmp_path, capsys):
    evaluate_model(ScriptedEngine({}), {"procedural": None}, tmp_path, limit=3)
    assert capsys.readouterr().err == ""


def test_predictions_say_where_each_answer_came_from(tmp_path):
    write_tsv(tmp_path / "MMStar.tsv", MC_ROWS)
    replies = {0: "\\boxed{red}", 1: "B", 2: "I cannot tell"}
    samples = load_benchmark("MMStar", tmp_path)[2]
    from evaluation.benchmarks import find_spec

    scorer = find_spec("MMStar").scorer
    table = {(scorer.prompt(s), tuple(img.tobytes() for img in s.images)): replies[i] for i, s in enumerate(samples)}
    report = evaluate_model(ScriptedEngine(table), {"MMStar": tmp_path}, tmp_path / "out")
    df = pd.read_parquet(report["MMStar"].predictions_path)
    assert list(df["extracted_from"]) == ["boxed_option_text", "letter", "none"]
    assert list(df["extracted"].fillna("-")) == ["A", "B", "-"] and list(df["rule"]) == ["choice"] * 3
    assert list(df["correct"]) == [True, True, False]


def test_skipped_rows_reach_report_json_and_the_printout(tmp_path, capsys):
    from test_evaluation_bad_input import truncated_png_b64

    rows = [dict(MC_ROWS[0]), dict(MC_ROWS[0], index=20, image=truncated_png_b64()), dict(MC_ROWS[1], index=21, image="20")]
    write_tsv(tmp_path / "MMStar.tsv", rows)
    report = evaluate_model(ScriptedEngine({}), {"MMStar": tmp_path}, tmp_path / "out", on_bad_image="skip", progress=True)
    assert report["MMStar"].n == 1 and report["MMStar"].skipped == 2
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["results"]["MMStar"]["skipped"] == 2 and saved["settings"]["on_bad_image"] == "skip"
    assert saved["results"]["MMStar"]["skipped_rows"][1].startswith("MMStar.tsv row index=21 (image of row index=20): ")
    err = capsys.readouterr().err
    assert "MMStar: 1 samples from" in err and "2 rows skipped" in err and "skipped MMStar.tsv row index=20: " in err
    assert "MMStar: 2 rows skipped (image missing or unreadable):" in report.text_table()


def test_bad_image_stops_before_the_engine_and_writes_nothing(tmp_path):
    from test_evaluation_bad_input import truncated_png_b64

    write_tsv(tmp_path / "MMStar.tsv", [dict(MC_ROWS[0]), dict(MC_ROWS[0], index=20, image=truncated_png_b64())])
    engine = ScriptedEngine({})
    with pytest.raises(BenchmarkFormatError, match=r"^MMStar\.tsv row index=20: "):
        evaluate_model(engine, {"procedural": None, "MMStar": tmp_path}, tmp_path / "out", limit=2)
    assert engine.calls == [] and not (tmp_path / "out").exists()


def test_rules_reach_custom_sets(tmp_path):
    from test_evaluation_custom import MIXED, write_set

    write_set(tmp_path, MIXED)
    engine = ScriptedEngine({}, default="2.0")
    report = evaluate_model(engine, {"MySet": tmp_path}, tmp_path / "out", rules={"myset": "exact"})
    df = pd.read_parquet(report["MySet"].predictions_path)
    assert dict(zip(df["id"], df["rule"])) == {"mc": "choice", "yn": "exact", "open": "exact", "count": "exact", "own": "relaxed"}
    assert dict(zip(df["id"], df["correct"]))["count"]  # "2.0" equals 2 by value under rule exact
    assert report.settings["rules"] == {"MySet": "exact"}


@pytest.mark.parametrize(
    "rules, message",
    [({"Other": "vqa"}, "no benchmark 'Other' among"), ({"procedural": "vqa"}, "procedural is scored by its published rule")],
)
def test_rules_for_unlisted_or_known_benchmarks_are_refused(tmp_path, rules, message):
    with pytest.raises(ValueError, match=message):
        evaluate_model(ScriptedEngine({}), {"procedural": None}, tmp_path, limit=2, rules=rules)


def test_model_directory_with_progress(tiny_model_dir, tmp_path, capsys):
    report = evaluate_model(tiny_model_dir, {"procedural": None}, tmp_path, batch_size=2, limit=3, progress=True, device="cpu")
    err = capsys.readouterr().err
    assert f"loading model {tiny_model_dir}" in err and "procedural: 3/3 samples" in err
    assert "generate x1" not in err  # the engine's own per-call bar stays off
    assert report["procedural"].n == 3 and "procedural by category" in report.text_table()
