"""Red-team tests for retrieval.render: every hostile program must be contained.

The corpus is ``retrieval.render.redteam`` (both halves).  All cases run once
(module fixture, a few at a time) with small limits against real targets: a
sentinel folder with canaries (a 0600 file, a world-readable one, a safetensors
file, a private PNG), a victim process outside the sandbox, a TCP/UDP port on
the host's loopback.  The Python cases then run a second time WITHOUT the audit
hook, to show that containment does not depend on it.  Afterwards each case
must have failed with one of its expected statuses (on a machine without the
OS boundary every Python case must be refused), and the run as a whole must
have left no trace: no canary secret in any output, no ``zf_pwned*`` file in
/tmp, /dev/shm, the project, site-packages, the standard library or the fonts,
the sentinel and the library sources unchanged, the victim alive, no
connection on the port, no sandbox process alive, no System V segment on the
host, and the parent's memory and time bounded.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import resource
import select
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import PIL
import psutil
import pytest
from PIL import Image

from retrieval.render import SandboxLimits, render_python, render_reply, render_svg, sandbox_host
from retrieval.render.redteam import CANARY_GLOB, CANARY_SECRET, HOOK_ONLY_CASES, redteam_corpus
from retrieval.render.sandbox import RUNNER, TOKEN_VAR

REPO = Path(__file__).resolve().parents[2]
SECRET = "zf-secret-3f9c1e7a"
LIMITS = SandboxLimits(wall_seconds=30, cpu_seconds=1, memory_mb=256, max_processes=16)
SHORT_WALL = replace(LIMITS, wall_seconds=2)
CASES = redteam_corpus(REPO, Path("/nonexistent"))
CASE_NAMES = [c.name for c in CASES]
PY_NAMES = [c.name for c in CASES if c.kind == "python"]
SITE = Path(PIL.__file__).resolve().parents[1]
STDLIB = Path(os.__file__).resolve().parent
WATCHED_DIRS = ["/tmp", "/dev/shm", "/var/tmp", str(REPO), str(SITE), str(STDLIB), "/usr/share/fonts"]
WATCHED_FILES = [STDLIB / "os.py", SITE / "PIL" / "__init__.py"]
HOST_SHM_KEY = "2053505025"  # 0x7a660001, the key sysv_shm_segment asks for, as /proc/sysvipc/shm prints it


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.py"))}


def leftovers(sentinel: Path) -> list[str]:
    found = [p for d in WATCHED_DIRS for p in glob.glob(f"{d}/{CANARY_GLOB}")]
    return found + glob.glob(str(sentinel / CANARY_GLOB))


def sandbox_processes() -> list[dict]:
    survivors = []
    for proc in psutil.process_iter(["pid", "cmdline", "status", "uids"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
            if str(RUNNER.name) in cmd or "zf_pwned" in cmd or proc.info["uids"].real >= 0x40000000:
                survivors.append(proc.info)
            elif TOKEN_VAR in proc.environ():
                survivors.append(proc.info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return survivors


def _write_canaries(sentinel: Path) -> None:
    (sentinel / "keep.txt").write_text("keep me")
    for name, mode in (("canary.txt", 0o600), ("canary_public.txt", 0o644)):
        (sentinel / name).write_text(CANARY_SECRET + "\n")
        os.chmod(sentinel / name, mode)
    header = json.dumps({"__metadata__": {"secret": CANARY_SECRET}}).encode()
    (sentinel / "canary.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(sentinel / "private.png")
    os.chmod(sentinel / "private.png", 0o600)


class Listener:
    """A TCP and a UDP socket on one loopback port that count what reaches them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.hits, self.stop = 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            ready, _, _ = select.select([self.tcp, self.udp], [], [], 0.2)
            for s in ready:
                if s is self.tcp:
                    s.accept()[0].close()
                else:
                    s.recv(64)
                self.hits += 1

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.tcp.close()
        self.udp.close()


def _render(case, limits):
    if case.memory_mb:
        limits = replace(limits, memory_mb=case.memory_mb)
    if case.cpu_seconds:
        limits = replace(limits, cpu_seconds=case.cpu_seconds)
    if case.name in ("sleep_forever",):
        limits = replace(limits, wall_seconds=SHORT_WALL.wall_seconds)
    fn = {"svg": render_svg, "python": render_python, "reply": render_reply}[case.kind]
    return fn(case.program, limits=limits)


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    sentinel = tmp_path_factory.mktemp("sentinel")
    _write_canaries(sentinel)
    listener = Listener()
    victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
    package = REPO / "retrieval" / "render"
    before = {"package": tree_digest(package), "leftovers": leftovers(sentinel),
              "watched": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in WATCHED_FILES},
              "tmp": {p.name for p in Path(tempfile.gettempdir()).glob("zf-render-*")},
              "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    cases = redteam_corpus(REPO, sentinel, victim_pid=victim.pid, port=listener.port,
                           hostname=socket.gethostname())
    old = os.environ.get("ZF_SECRET")
    os.environ["ZF_SECRET"] = SECRET
    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            with_hook = dict(zip([c.name for c in cases], pool.map(lambda c: _render(c, LIMITS), cases)))
            py = [c for c in cases if c.kind == "python"]
            no_hook = dict(zip([c.name for c in py],
                               pool.map(lambda c: _render(c, replace(LIMITS, audit_hook=False)), py)))
        elapsed = time.monotonic() - t0
        victim_alive = victim.poll() is None
    finally:
        if old is None:
            os.environ.pop("ZF_SECRET", None)
        else:
            os.environ["ZF_SECRET"] = old
        victim.kill()
        victim.wait()
        listener.close()
    return {"cases": {c.name: c for c in cases}, "results": with_hook, "no_hook": no_hook,
            "sentinel": sentinel, "package": package, "before": before, "victim_alive": victim_alive,
            "hits": listener.hits, "elapsed": elapsed, "python_allowed": sandbox_host(LIMITS).python_allowed,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _expected(run, case) -> frozenset[str]:
    if case.kind == "python" and not run["python_allowed"]:
        return frozenset({"rejected"})  # fail closed: no OS boundary, no Python
    return case.expected


def test_corpus_is_large_enough():
    assert len(CASE_NAMES) >= 100 and len(set(CASE_NAMES)) == len(CASE_NAMES)
    assert {c.kind for c in CASES} == {"python", "svg", "reply"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_is_contained(corpus_run, name):
    case, result = corpus_run["cases"][name], corpus_run["results"][name]
    expected = _expected(corpus_run, case)
    if "ok" not in expected:
        assert not result.ok and result.image is None, f"{name} ({case.attack}) rendered"
    assert result.status in expected, (
        f"{name} ({case.attack}): expected {sorted(expected)}, got {result.status}: {result.reason}")
    assert result.reason or result.ok, f"{name}: a failure must say why"
    for secret in (SECRET, CANARY_SECRET):
        assert secret not in result.stdout_tail and secret not in result.reason, f"{name} leaked {secret}"
    assert result.isolation == sandbox_host(LIMITS).level


@pytest.mark.parametrize("name", PY_NAMES)
def test_case_is_contained_without_the_audit_hook(corpus_run, name):
    """The OS boundary alone: the statuses may differ (nothing refuses early), but an
    attack that worked would render, and none may leak a secret."""
    case, result = corpus_run["cases"][name], corpus_run["no_hook"][name]
    if not corpus_run["python_allowed"]:
        assert result.status == "rejected"
        return
    for secret in (SECRET, CANARY_SECRET):
        assert secret not in result.stdout_tail and secret not in result.reason, f"{name} leaked {secret}"
    if "ok" not in case.expected and name not in HOOK_ONLY_CASES:
        assert not result.ok, f"{name} ({case.attack}) rendered without the audit hook: the OS let it through"


def test_containment_rate_is_total(corpus_run):
    contained = sum(1 for name, r in corpus_run["results"].items()
                    if r.status in _expected(corpus_run, corpus_run["cases"][name]))
    assert contained == len(CASE_NAMES), f"contained {contained}/{len(CASE_NAMES)}"


def test_nothing_outside_the_sandbox_changed(corpus_run):
    before, sentinel = corpus_run["before"], corpus_run["sentinel"]
    assert leftovers(sentinel) == before["leftovers"] == [], "a program created a file outside its work folder"
    assert sorted(p.name for p in sentinel.iterdir()) == sorted(
        ["keep.txt", "canary.txt", "canary_public.txt", "canary.safetensors", "private.png"])
    assert (sentinel / "keep.txt").read_text() == "keep me"
    assert tree_digest(corpus_run["package"]) == before["package"], "a project file changed"
    assert {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in WATCHED_FILES} == before["watched"]
    leftover = {p.name for p in Path(tempfile.gettempdir()).glob("zf-render-*")} - before["tmp"]
    assert not {n for n in leftover if not n.startswith("zf-render-mplcache-")}, leftover
    if os.path.exists("/proc/sysvipc/shm"):
        keys = [line.split()[0] for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
        assert HOST_SHM_KEY not in keys, "a System V segment reached the host's ipc namespace"


def test_processes_and_network_outside_are_untouched(corpus_run):
    assert corpus_run["victim_alive"], "a program killed a process outside the sandbox"
    assert corpus_run["hits"] == 0, "a program reached a port on the host's loopback"
    assert not sandbox_processes(), sandbox_processes()


def test_parent_time_and_memory_are_bounded(corpus_run):
    # The parent never decodes a program's PNG (png_decoded_in_parent would add ~200 MB).
    grew = corpus_run["maxrss_mb"] - corpus_run["before"]["maxrss_mb"]
    assert grew < 150, f"the parent's peak memory grew by {grew:.0f} MB"
    for name in ("svg_width_digit_stall", "svg_height_digit_stall", "svg_url_flood",
                 "reply_backtick_flood", "reply_svg_open_flood"):
        assert corpus_run["results"][name].seconds < 5, name  # refused by linear checks, no sandbox started


def test_secret_never_reaches_the_child(corpus_run):
    result = corpus_run["results"]["print_environ"]
    if not corpus_run["python_allowed"]:
        pytest.skip("no OS boundary here: Python programs are refused")
    assert "PATH" in result.stdout_tail and TOKEN_VAR in result.stdout_tail  # it did print its env
    assert SECRET not in result.stdout_tail and "ZF_SECRET" not in result.stdout_tail


def test_fail_closed_without_the_os_boundary():
    limits = replace(LIMITS, isolation="rlimits")
    host = sandbox_host(limits)
    assert host.level in ("rlimits+seccomp", "rlimits-only") and not host.python_allowed
    r = render_python('from PIL import Image\nImage.new("RGB", (8, 8)).save("out.png")', limits=limits)
    assert r.status == "rejected" and "need the OS-level sandbox" in r.reason and r.isolation == host.level
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>'
    ok = render_svg(svg, size=8, limits=limits)
    assert ok.ok and ok.isolation == host.level and ok.image.getpixel((4, 4))[0] > 200


def test_renders_do_not_fork_the_parent(monkeypatch):
    """The sandbox is started without preexec_fn (vfork semantics), never by os.fork."""
    seen = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    forks = []
    os.register_at_fork(before=lambda: forks.append(1))
    render_svg('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', size=4, limits=LIMITS)
    assert seen and all(k.get("preexec_fn") is None for k in seen)
    assert not forks
    assert getattr(subprocess, "_USE_VFORK", True)
