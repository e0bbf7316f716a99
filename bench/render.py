"""Benchmark for the render sandbox: renders/s, latency, containment rate.

Prints figures for docs/benchmarks.md; asserts nothing.  For each workload (a
small SVG, a small PIL program, a small matplotlib program) it times sequential
renders through the sandbox, with reference points: resvg in this process, the
same interpreter command without any sandbox, and a bare ``python -I -S -B -c
pass`` (the floor of any process-per-render design).

``--compare REF`` also times the sandbox of git ``REF`` (``main``: the audit-hook
design this branch replaces) in a worker process, alternating batches of five
renders between the two so that load changes hit both alike.  ``--redteam``
runs the red-team corpus (``retrieval.render.redteam``) with and without the
audit hook and prints its containment rate.  The machine's /proc/loadavg is
printed before and after.

    nice -n 19 .venv/bin/python bench/render.py --n 40 --compare main --redteam --json out.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.render import SandboxLimits, render_python, render_svg, sandbox_host  # noqa: E402
from retrieval.render.redteam import HOOK_ONLY_CASES, redteam_corpus  # noqa: E402
from retrieval.render.sandbox import _mpl_font_cache  # noqa: E402

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
       '<rect width="64" height="64" fill="#eee"/><circle cx="32" cy="32" r="20" fill="red"/>'
       '<text x="4" y="60" font-size="12">A1</text></svg>')
PIL_PROGRAM = """
from PIL import Image, ImageDraw
im = Image.new("RGB", (64, 64), "white")
d = ImageDraw.Draw(im)
d.rectangle((8, 8, 30, 30), fill="blue")
d.ellipse((34, 34, 60, 60), fill="red")
im.save("out.png")
"""
MPL_PROGRAM = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2), dpi=32)
ax.bar(["a", "b", "c"], [3, 1, 2], color="red")
fig.savefig("out.png")
"""


def timings(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(ts: list[float]) -> dict:
    return {"n": len(ts), "median_s": statistics.median(ts), "best_s": min(ts),
            "per_s": 1.0 / statistics.median(ts)}


def plain_python(program: str, site: tuple[str, ...]) -> None:
    """The same program the way the sandbox starts it (same interpreter flags, temp
    dir, matplotlib font cache) but with no rlimits, namespace, audit hook, marker
    sweep or image check: the difference is what the sandbox costs."""
    cache = _mpl_font_cache(sys.executable, site)
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(f"{d}/.mpl")
        if cache is not None:
            shutil.copyfile(cache, f"{d}/.mpl/{cache.name}")
        env = {"PATH": "/usr/bin:/bin", "HOME": d, "MPLCONFIGDIR": f"{d}/.mpl", "MPLBACKEND": "Agg",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
        code = f"import sys; sys.path += {list(site)!r}\n{program}"
        subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], cwd=d, env=env, check=True,
                       capture_output=True)


def bare_interpreter() -> None:
    subprocess.run([sys.executable, "-I", "-S", "-B", "-c", "pass"], check=True)


def resvg_in_process(text: str) -> None:
    import resvg_py
    from PIL import Image

    Image.open(io.BytesIO(resvg_py.svg_to_bytes(svg_string=text, width=64, height=64))).load()


OLD_WORKER = r"""
import json, sys, time
from retrieval.render import SandboxLimits, render_python, render_svg, sandbox_host
limits = SandboxLimits(wall_seconds=60, cpu_seconds=30)
work = {"svg": lambda: render_svg(SVG, limits=limits), "pil": lambda: render_python(PIL_PROGRAM, limits=limits),
        "mpl": lambda: render_python(MPL_PROGRAM, limits=limits)}
h = sandbox_host(limits)
print(json.dumps({"layers": {"run_as": h.run_as, "network_namespace": h.network_namespace}}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    ts = []
    for _ in range(cmd["n"]):
        t0 = time.perf_counter(); r = work[cmd["kind"]](); ts.append(time.perf_counter() - t0)
        assert r.ok, (r.status, r.reason)
    print(json.dumps(ts), flush=True)
"""


class CurrentSandbox:
    """The sandbox as it is on ``ref`` (default main: the audit-hook design), in a worker
    process of its own, so both are timed side by side in one run."""

    def __init__(self, ref: str):
        repo = Path(__file__).resolve().parents[1]
        self.dir = tempfile.mkdtemp(prefix="zf-bench-current-")
        names = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:retrieval/render"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.split()
        os.makedirs(f"{self.dir}/retrieval/render")
        for rel in ["retrieval/__init__.py"] + [f"retrieval/render/{n}" for n in names]:
            data = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=repo, capture_output=True, check=True).stdout
            Path(self.dir, rel).write_bytes(data)
        prelude = f"SVG = {SVG!r}\nPIL_PROGRAM = {PIL_PROGRAM!r}\nMPL_PROGRAM = {MPL_PROGRAM!r}\n"
        env = {**os.environ, "PYTHONPATH": self.dir}
        self.proc = subprocess.Popen([sys.executable, "-c", prelude + OLD_WORKER], cwd=self.dir, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.layers = json.loads(self.proc.stdout.readline())["layers"]

    def timings(self, kind: str, n: int) -> list[float]:
        self.proc.stdin.write(json.dumps({"kind": kind, "n": n}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)
        shutil.rmtree(self.dir, ignore_errors=True)


def side_by_side(current: CurrentSandbox, kind: str, fn, n: int, batch: int = 5) -> tuple[list, list]:
    """Alternate batches of the new boundary and the current sandbox, so load changes hit both."""
    new, old = [], []
    while len(new) < n:
        k = min(batch, n - len(new))
        new += timings(fn, k)
        old += current.timings(kind, k)
    return new, old


def run_redteam(limits: SandboxLimits) -> dict:
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from retrieval.render import render_reply

    with tempfile.TemporaryDirectory() as d:
        sentinel = Path(d)
        (sentinel / "keep.txt").write_text("keep")
        victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
        cases = redteam_corpus(Path(__file__).resolve().parents[1], sentinel, victim_pid=victim.pid)
        fns = {"svg": render_svg, "python": render_python, "reply": render_reply}

        def one(case, hook=True):
            lim = replace(limits, wall_seconds=2) if case.name == "sleep_forever" else limits
            lim = replace(lim, memory_mb=case.memory_mb or lim.memory_mb,
                          cpu_seconds=case.cpu_seconds or lim.cpu_seconds, audit_hook=hook)
            return fns[case.kind](case.program, limits=lim)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(one, cases))
            py = [c for c in cases if c.kind == "python"]
            no_hook = list(pool.map(lambda c: one(c, hook=False), py))
        seconds = time.perf_counter() - t0
        victim_alive = victim.poll() is None
        victim.kill()
        victim.wait()
        contained = [r.status in c.expected for c, r in zip(cases, results)]
        failures = [f"{c.name}: {r.status} {r.reason}" for c, r, ok in zip(cases, results, contained) if not ok]
        return {"cases": len(cases), "contained": sum(contained), "rate": sum(contained) / len(cases),
                "sentinel_intact": (sentinel / "keep.txt").read_text() == "keep", "failures": failures,
                "victim_alive": victim_alive,
                "python_cases": len(py), "svg_cases": sum(c.kind == "svg" for c in cases),
                "reply_cases": sum(c.kind == "reply" for c in cases),
                "no_hook_rendered": [c.name for c, r in zip(py, no_hook)
                                     if r.ok and "ok" not in c.expected and c.name not in HOOK_ONLY_CASES],
                "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30, help="renders per SVG/PIL workload")
    ap.add_argument("--n-mpl", type=int, default=8, help="renders for the matplotlib workload")
    ap.add_argument("--redteam", action="store_true", help="also run the red-team corpus")
    ap.add_argument("--compare", metavar="REF", help="also time the sandbox of git REF (e.g. main) side by side")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    limits = SandboxLimits(wall_seconds=60, cpu_seconds=30)
    host = sandbox_host(limits)
    site = host.sys_path
    # Warm-up: probes, matplotlib font cache, page cache.
    for _ in range(2):
        assert render_svg(SVG, limits=limits).ok
        assert not host.python_allowed or render_python(PIL_PROGRAM, limits=limits).ok
    load_before = open("/proc/loadavg").read().strip()
    res = {
        "machine": f"{os.cpu_count()}-core {os.uname().machine}",
        "loadavg_before": load_before,
        "isolation_level": host.level, "isolation_reason": host.reason,
        "svg_in_process": summary(timings(lambda: resvg_in_process(SVG), args.n)),
        "bare_interpreter": summary(timings(bare_interpreter, args.n)),
        "pil_plain_subprocess": summary(timings(lambda: plain_python(PIL_PROGRAM, site), args.n)),
    }
    workloads = [("svg", lambda: render_svg(SVG, limits=limits), args.n)]
    if host.python_allowed:
        workloads += [("pil", lambda: render_python(PIL_PROGRAM, limits=limits), args.n),
                      ("mpl", lambda: render_python(MPL_PROGRAM, limits=limits), args.n_mpl)]
    current = CurrentSandbox(args.compare) if args.compare else None
    try:
        if current is not None:
            current.timings("svg", 2)  # its own warm-up
            current.timings("pil", 2)
            res["current_layers"] = current.layers
        for kind, fn, n in workloads:
            if current is not None:
                new, old = side_by_side(current, kind, fn, n)
                res[f"{kind}_current_sandbox"] = summary(old)
            else:
                new = timings(fn, n)
            res[f"{kind}_{host.level}"] = summary(new)
    finally:
        if current is not None:
            current.close()
    if args.redteam:
        res["redteam"] = run_redteam(SandboxLimits(wall_seconds=30, cpu_seconds=1, memory_mb=256,
                                                   max_processes=16))
    res["loadavg_after"] = open("/proc/loadavg").read().strip()

    print(f"machine: {res['machine']}; /proc/loadavg before: {load_before}; after: {res['loadavg_after']}")
    print(f"isolation level: {host.level} {('(' + host.reason + ')') if host.reason else ''}")
    print(f"{'workload':32s} {'median ms':>10s} {'best ms':>9s} {'renders/s':>10s}")
    for key, val in res.items():
        if isinstance(val, dict) and "median_s" in val:
            print(f"{key:32s} {1000 * val['median_s']:10.1f} {1000 * val['best_s']:9.1f} {val['per_s']:10.1f}")
    if args.redteam:
        rt = res["redteam"]
        print(f"red team: {rt['contained']}/{rt['cases']} contained ({100 * rt['rate']:.0f}%; "
              f"{rt['python_cases']} Python, {rt['svg_cases']} SVG, {rt['reply_cases']} replies) in "
              f"{rt['seconds']:.1f} s; sentinel intact: {rt['sentinel_intact']}; victim alive: {rt['victim_alive']}; "
              f"rendered without the audit hook although they should not: {len(rt['no_hook_rendered'])} "
              f"{rt['no_hook_rendered']}")
        for f in rt["failures"]:
            print("  NOT CONTAINED", f)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
