"""Curriculum lineage: content hashes, Dagster data versions, DVC stages and `zeroforge lineage` verification."""

import json
import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets import lineage
from assets.lineage import artifact, dvc_bin, lineage_report, record_lineage, run_dvc, sync_lineage, upstream
from models.checkpoint import CARD, file_manifest
from models.files import atomic_write_json as write_json_atomic

pytestmark = pytest.mark.skipif(dvc_bin() is None, reason="needs the DVC environment (.venv/dvc, made by scripts/setup.sh)")
REPO = Path(__file__).resolve().parents[2]


def _dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    run_dvc(repo, "init", "-q")
    run_dvc(repo, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    (repo / ".dvcignore").write_text("trainer/\n")
    return repo


def _checkpoint(path: Path, weights: bytes) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(weights)
    (path / "trainer" / "checkpoint-1").mkdir(parents=True)  # resume state: ignored by DVC and by the hash
    (path / "trainer" / "checkpoint-1" / "optimizer.pt").write_bytes(b"o" * 64)
    write_json_atomic(path / CARD, {"steps": 1, "files": file_manifest(path)})
    return path


def _edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r'"([^"]+)"\s*->\s*"([^"]+)"', dot))


def test_lineage_records_dvc_stages_and_verifies_hashes(tmp_path, monkeypatch):
    """Without Dagster: each recorded step becomes a DVC stage when lineage is synced; chain, status, remote, verification."""
    monkeypatch.setenv("ZEROFORGE_DVC", "auto")
    monkeypatch.setenv("ZEROFORGE_DVC_PUSH", "0")
    repo = _dvc_repo(tmp_path)
    home = repo / ".zeroforge"
    base = _checkpoint(home / "models" / "base-abc", b"base" * 100)
    shards = home / "pool" / "shards"
    shards.mkdir(parents=True)
    (shards / "pool-000000.tar").write_bytes(b"images" * 100)
    it = home / "runs" / "vzero" / "iter-0001"
    it.mkdir(parents=True)
    (it / "iteration_config.json").write_text(json.dumps({"m": 4}))
    cfg = artifact("file", it / "iteration_config.json")

    base_rec = record_lineage(home, "base_model", None, artifact("dir", base), config={"size": "tiny"})
    assert "dvc" not in base_rec and not (repo / "dvc.lock").exists()  # recording is cheap: DVC runs at the sync
    dvc = sync_lineage(home)
    assert dvc["enabled"] and dvc["stages"] == ["base_model"]
    record_lineage(home, "image_pool", None, artifact("dir", shards))
    q = _checkpoint(it / "questioner", b"q" * 100)
    record_lineage(home, "vzero/questioner_checkpoint", "iter-0001", artifact("checkpoint", q),
                   inputs={"parent_checkpoint": upstream(home, "base_model", None, "dir", base), "iteration_config": cfg})
    (it / "task_set.parquet").write_bytes(b"tasks" * 100)
    record_lineage(home, "vzero/task_set", "iter-0001", artifact("file", it / "task_set.parquet"),
                   inputs={"task_maker_questioner": upstream(home, "vzero/questioner_checkpoint", "iter-0001", "checkpoint", q),
                           "solver_parent": upstream(home, "base_model", None, "dir", base),
                           "image_pool": upstream(home, "image_pool", None, "dir", shards), "iteration_config": cfg})
    s = _checkpoint(it / "solver", b"s" * 100)
    monkeypatch.setenv("ZEROFORGE_DVC_PUSH", "1")
    rec = record_lineage(home, "vzero/solver_checkpoint", "iter-0001", artifact("checkpoint", s),
                         inputs={"parent_checkpoint": upstream(home, "base_model", None, "dir", base),
                                 "task_set": upstream(home, "vzero/task_set", "iter-0001", "file", it / "task_set.parquet"),
                                 "iteration_config": cfg},
                         config={"m": 4, "solver": {"steps": 2}})
    dvc = sync_lineage(home)  # once per iteration (the curriculum_lineage asset), after the steps
    assert dvc["pushed_to"] == "local" and any((tmp_path / "remote").rglob("*"))
    assert rec["output"]["hash"] == lineage.manifest_hash(json.loads((s / CARD).read_text())["files"])
    assert rec["code"]["git_commit"] and len(rec["code"]["git_commit"]) == 40  # zeroforge's own commit

    stages = set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    assert stages == {"base_model", "image_pool", "vzero_iter-0001_questioner", "vzero_iter-0001_task_set", "vzero_iter-0001_solver"}
    edges = _edges(run_dvc(repo, "dag", "--dot").stdout)
    assert {("base_model", "vzero_iter-0001_questioner"), ("vzero_iter-0001_questioner", "vzero_iter-0001_task_set"),
            ("image_pool", "vzero_iter-0001_task_set"), ("vzero_iter-0001_task_set", "vzero_iter-0001_solver")} <= edges
    assert "up to date" in run_dvc(repo, "status").stdout

    rep = lineage_report(home, str(s))  # by folder
    assert rep["ok"] and rep["record"]["inputs"]["task_set"]["hash"] == artifact("file", it / "task_set.parquet")["hash"]
    text = lineage.format_report(rep)
    assert "task set (vzero/task_set iter-0001)" in text and "parent checkpoint (base_model)" in text
    assert "all hashes match" in text and rec["code"]["git_commit"] in text

    (it / "task_set.parquet").write_bytes(b"edited afterwards")
    bad = lineage_report(home, "vzero/iter-0001")  # by recipe/iteration: the Solver
    assert not bad["ok"] and "MISMATCH" in bad["checks"]["task_set"]["detail"] and bad["checks"]["output"]["ok"]
    assert "vzero_iter-0001_task_set" in run_dvc(repo, "status").stdout  # DVC sees it too


def test_a_home_can_be_its_own_dvc_repository_without_git(tmp_path, monkeypatch):
    """A home outside any checkout (`dvc init --no-scm` in it) records stages in its own dvc.yaml."""
    monkeypatch.setenv("ZEROFORGE_DVC", "auto")
    home = tmp_path / "home"
    home.mkdir()
    run_dvc(home, "init", "--no-scm", "-q")
    base = _checkpoint(home / "models" / "base-abc", b"base" * 100)
    record_lineage(home, "base_model", None, artifact("dir", base))
    dvc = sync_lineage(home)
    assert dvc["enabled"] and dvc["root"] == str(home.resolve()) and dvc["pushed_to"] is None
    assert set(yaml.safe_load((home / "dvc.yaml").read_text())["stages"]) == {"base_model"}
    assert "up to date" in run_dvc(home, "status").stdout


def test_loop_lineage_through_dagster_and_the_cli(smoke_home_factory, tmp_path, capsys, monkeypatch):
    """Two iterations in a DVC repo: data versions are the content hashes; the DVC chain; `zeroforge lineage`."""
    from orchestration.runs import materialization_metadata, run_iteration
    from zeroforge.cli import main

    monkeypatch.setenv("ZEROFORGE_DVC", "auto")
    repo = _dvc_repo(tmp_path)
    home, instance = smoke_home_factory("lineage", home=repo / ".zeroforge")
    r1 = run_iteration(instance, "vzero", 1, {"profile": "smoke"},
                       assets=["vzero/questioner_checkpoint", "vzero/task_set", "vzero/solver_checkpoint", "vzero/curriculum_lineage"])
    r2 = run_iteration(instance, "vzero", 2, assets=["vzero/questioner_checkpoint", "vzero/task_set", "vzero/curriculum_lineage"])
    assert r1.success and r2.success
    md = materialization_metadata(r1)
    for key in ("vzero/questioner_checkpoint", "vzero/task_set", "vzero/solver_checkpoint"):
        [event] = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(key),
                                                                         asset_partitions=["iter-0001"]), limit=1).records
        rec = lineage.read_record(home, key, "iter-0001")
        assert event.asset_materialization.tags["dagster/data_version"] == md[key]["content_hash"] == rec["output"]["hash"]

    edges = _edges(run_dvc(repo, "dag", "--dot").stdout)
    chain = ["base_model", "vzero_iter-0001_questioner", "vzero_iter-0001_task_set", "vzero_iter-0001_solver", "vzero_iter-0002_task_set"]
    assert set(zip(chain, chain[1:])) <= edges and ("image_pool", "vzero_iter-0001_task_set") in edges
    assert ("vzero_iter-0001_questioner", "vzero_iter-0002_questioner") in edges
    assert "up to date" in run_dvc(repo, "status").stdout

    solver_dir = home / "runs" / "vzero" / "iter-0001" / "solver"
    assert main(["--home", str(home), "lineage", str(solver_dir)]) == 0
    out = capsys.readouterr().out
    kept = lineage.read_record(home, "vzero/solver_checkpoint", "iter-0001")["inputs"]["images"]
    assert f"images: {len(kept['sha256'])} images from the pool" in out and "[ok]" in out
    assert "iter-0001/task_set.parquet" in out and "all hashes match" in out
