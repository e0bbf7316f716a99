"""`zeroforge ui` / `make ui` stops on SIGTERM and SIGINT within seconds, its whole process group included.

`orchestration.ui.serve_dev` runs the server in its own process group and forwards
signals to it. The stand-in server here is as stubborn as `dagster dev` started
from a script without job control: it ignores SIGINT and SIGTERM and has a child
of its own. The last test runs the real `dagster dev` (slow).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
STUBBORN = ("import signal, subprocess, time, sys\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "open(sys.argv[1], 'w').write(str(child.pid))\n"
            "time.sleep(300)\n")
SERVE = "import sys, json; from orchestration.ui import serve_dev; sys.exit(serve_dev(argv=json.loads(sys.argv[1])))"


def _start(tmp_path, ignore_sigint: bool):
    import json

    marker = tmp_path / "child.pid"
    argv = [sys.executable, "-c", STUBBORN, str(marker)]
    cmd = [sys.executable, "-c", SERVE, json.dumps(argv)]
    if ignore_sigint:  # what a background job of a non-interactive shell inherits
        cmd = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *cmd]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
        time.sleep(0.05)
    return proc, int(marker.read_text())


@pytest.mark.parametrize("sig, ignore_sigint", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGINT, False)])
def test_serve_dev_stops_the_whole_group_on_a_signal(tmp_path, sig, ignore_sigint):
    proc, grandchild = _start(tmp_path, ignore_sigint)
    time.sleep(0.5)  # the handlers are installed before the server starts; let it settle anyway
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    took = time.monotonic() - t0
    assert rc == 128 + sig, proc.stdout.read().decode()
    assert took < 15, f"took {took:.1f} s to stop"  # a 5 s grace period, then SIGKILL
    deadline = time.monotonic() + 5
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the server's own child survived"
        time.sleep(0.1)


@pytest.mark.slow
def test_real_dagster_dev_stops_on_sigterm(tmp_path):
    from orchestration.ui import free_port

    port = free_port()
    env = {**os.environ, "ZEROFORGE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "zeroforge.cli", "--home", str(tmp_path / "home"), "ui",
                             "--port", str(port)], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "dagster dev did not come up"
            time.sleep(1)
    group = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    assert group, "dagster dev runs as a child of zeroforge ui"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - t0 < 20
    time.sleep(1)
    alive = [p for p in group if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
