"""Red-team tests for retrieval.render: every hostile program must be contained.

The corpus is ``retrieval.render.redteam``.  All cases run once (module fixture)
with small limits; then each case must have failed with one of its expected
statuses and a reason, and the run as a whole must have left no trace: no
canary file outside the sandbox, the sentinel file and this package's sources
unchanged, no sandbox process alive, no temp dir left, and the parent's secret
environment variable in no output.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from pathlib import Path

import psutil
import pytest

from retrieval.render import SandboxLimits, render_python, render_svg
from retrieval.render.redteam import CANARY_GLOB, redteam_corpus
from retrieval.render.sandbox import RUNNER, TOKEN_VAR

REPO = Path(__file__).resolve().parents[2]
SECRET = "zf-secret-3f9c1e7a"
LIMITS = SandboxLimits(wall_seconds=30, cpu_seconds=1, memory_mb=256, max_processes=16)
SHORT_WALL = SandboxLimits(wall_seconds=2, cpu_seconds=1, memory_mb=256, max_processes=16)
CASE_NAMES = [c.name for c in redteam_corpus(REPO, Path("/nonexistent"))]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.py"))}


def canaries(sentinel: Path) -> list[str]:
    found = glob.glob(f"/tmp/{CANARY_GLOB}") + glob.glob(str(REPO / CANARY_GLOB))
    return found + glob.glob(str(sentinel / CANARY_GLOB))


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    sentinel = tmp_path_factory.mktemp("sentinel")
    (sentinel / "keep.txt").write_text("keep me")
    package = REPO / "retrieval" / "render"
    before = {"package": tree_digest(package), "canaries": canaries(sentinel),
              "tmp": {p.name for p in Path(tempfile.gettempdir()).glob("zf-render-*")}}
    old = os.environ.get("ZF_SECRET")
    os.environ["ZF_SECRET"] = SECRET
    results = {}
    try:
        for case in redteam_corpus(REPO, sentinel):
            render = render_svg if case.kind == "svg" else render_python
            limits = SHORT_WALL if case.name == "sleep_forever" else LIMITS
            results[case.name] = (case, render(case.program, limits=limits))
    finally:
        if old is None:
            os.environ.pop("ZF_SECRET", None)
        else:
            os.environ["ZF_SECRET"] = old
    return {"results": results, "sentinel": sentinel, "package": package, "before": before}


def test_corpus_is_large_enough():
    assert len(CASE_NAMES) >= 20 and len(set(CASE_NAMES)) == len(CASE_NAMES)
    kinds = {c.kind for c in redteam_corpus(REPO, Path("/nonexistent"))}
    assert kinds == {"python", "svg"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_is_contained(corpus_run, name):
    case, result = corpus_run["results"][name]
    assert not result.ok and result.image is None, f"{name} ({case.attack}) rendered"
    assert result.status in case.expected, (
        f"{name} ({case.attack}): expected {sorted(case.expected)}, got {result.status}: {result.reason}")
    assert result.reason, f"{name}: a failure must say why"
    assert SECRET not in result.stdout_tail and SECRET not in result.reason


def test_containment_rate_is_total(corpus_run):
    contained = sum(1 for case, r in corpus_run["results"].values()
                    if not r.ok and r.status in case.expected)
    assert contained == len(CASE_NAMES), f"contained {contained}/{len(CASE_NAMES)}"


def test_nothing_outside_the_sandbox_changed(corpus_run):
    before, sentinel = corpus_run["before"], corpus_run["sentinel"]
    assert canaries(sentinel) == before["canaries"] == [], "a program created a file outside its temp dir"
    assert sorted(p.name for p in sentinel.iterdir()) == ["keep.txt"]
    assert (sentinel / "keep.txt").read_text() == "keep me"
    assert tree_digest(corpus_run["package"]) == before["package"], "a project file changed"
    leftover = {p.name for p in Path(tempfile.gettempdir()).glob("zf-render-*")} - before["tmp"]
    assert not {n for n in leftover if not n.startswith("zf-render-mplcache-")}, leftover


def test_no_sandbox_process_survives(corpus_run):
    assert corpus_run["results"]  # the corpus ran
    survivors = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(RUNNER) in " ".join(proc.info["cmdline"] or []):
                survivors.append(proc.info)
            elif TOKEN_VAR in proc.environ():
                survivors.append(proc.info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert not survivors, survivors


def test_secret_never_reaches_the_child(corpus_run):
    _, result = corpus_run["results"]["print_environ"]
    assert "PATH" in result.stdout_tail and TOKEN_VAR in result.stdout_tail  # it did print its env
    assert SECRET not in result.stdout_tail and "ZF_SECRET" not in result.stdout_tail
