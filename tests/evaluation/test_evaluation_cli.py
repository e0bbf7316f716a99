"""`zeroforge eval` end to end on the tiny model: table printed, predictions + report written."""

import json

import pandas as pd
import pytest
from test_evaluation_readers import MC_ROWS, write_tsv

from zeroforge.cli import main


def test_zeroforge_eval_on_tiny_model(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "vlmeval"
    data.mkdir()
    write_tsv(data / "MMStar.tsv", MC_ROWS)
    out = tmp_path / "out"
    rc = main(["eval", "--model", str(tiny_model_dir), "--bench", f"MMStar={data}", "--bench", "procedural",
               "--out", str(out), "--limit", "6", "--batch-size", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "metric", "score", "95%", "CI", "n"]
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == str(tiny_model_dir) and report["settings"]["batch_size"] == 4
    assert set(report["results"]) == {"MMStar", "procedural"}
    for name, n in (("MMStar", 3), ("procedural", 6)):
        res = report["results"][name]
        assert res["n"] == n and 0.0 <= res["ci95"][0] <= res["score"] <= res["ci95"][1] <= 1.0
        row = next(line for line in printed.splitlines() if line.startswith(name))
        assert row.split()[-1] == str(n)
        preds = pd.read_parquet(res["predictions_path"])
        assert len(preds) == n and preds["correct"].mean() == pytest.approx(res["score"])
        assert preds["reply"].map(type).eq(str).all() and preds["prompt"].str.len().gt(0).all()


def test_zeroforge_eval_default_out_is_under_home(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZEROFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--model", str(tiny_model_dir), "--bench", "procedural", "--limit", "2"]) == 0
    (run_dir,) = (tmp_path / "home" / "eval").iterdir()
    assert (run_dir / "report.json").is_file() and (run_dir / "predictions" / "procedural.parquet").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing written in the cwd


def test_zeroforge_eval_missing_benchmark_file_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(SystemExit, match="ChartQA_TEST.tsv"):
        main(["eval", "--model", str(tiny_model_dir), "--bench", f"ChartQA={tmp_path}", "--out", str(tmp_path / "o")])
