"""Benchmark for the render sandbox: renders/s, per-render overhead, containment rate.

Prints figures for docs/benchmarks.md ("Sandboxed rendering"); asserts nothing.
For each workload (a small SVG, a small PIL program, a small matplotlib program)
it times sequential renders through the sandbox and the same work without it:

* SVG: resvg in this process (trusted, fixed document) vs ``render_svg``;
* Python: the same interpreter command in a temp dir but with no rlimits,
  namespace, audit hook, marker sweep or image check vs ``render_python`` (the
  program is ours and fixed, never model text);
* ``bare_interpreter``: ``python -I -S -B -c pass``, the floor of any
  process-per-render design;

overhead = sandboxed - unsandboxed, per render.  ``--redteam`` also runs the
red-team corpus (``retrieval.render.redteam``) and prints its containment rate.

    nice -n 19 .venv/bin/python bench/render.py --n 40 --redteam --json out.json
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
from retrieval.render.redteam import redteam_corpus  # noqa: E402
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


def run_redteam(limits: SandboxLimits) -> dict:
    with tempfile.TemporaryDirectory() as d:
        sentinel = Path(d)
        (sentinel / "keep.txt").write_text("keep")
        cases = redteam_corpus(Path(__file__).resolve().parents[1], sentinel)
        contained, failures, t0 = 0, [], time.perf_counter()
        for case in cases:
            short = SandboxLimits(wall_seconds=2, cpu_seconds=1, memory_mb=256)
            lim = short if case.name == "sleep_forever" else limits
            r = (render_svg if case.kind == "svg" else render_python)(case.program, limits=lim)
            if not r.ok and r.status in case.expected:
                contained += 1
            else:
                failures.append(f"{case.name}: {r.status} {r.reason}")
        intact = (sentinel / "keep.txt").read_text() == "keep"
        return {"cases": len(cases), "contained": contained, "rate": contained / len(cases),
                "sentinel_intact": intact, "failures": failures,
                "python_cases": sum(c.kind == "python" for c in cases),
                "svg_cases": sum(c.kind == "svg" for c in cases),
                "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30, help="renders per SVG/PIL workload")
    ap.add_argument("--n-mpl", type=int, default=8, help="renders for the matplotlib workload")
    ap.add_argument("--redteam", action="store_true", help="also run the red-team corpus")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    limits = SandboxLimits(wall_seconds=60, cpu_seconds=30)
    no_netns = SandboxLimits(wall_seconds=60, cpu_seconds=30, network_namespace=False)
    host = sandbox_host(limits)
    site = host.sys_path
    # Warm-up: probes, matplotlib font cache, page cache.
    for _ in range(2):
        assert render_svg(SVG, limits=limits).ok and render_python(PIL_PROGRAM, limits=limits).ok
    assert render_python(MPL_PROGRAM, limits=limits).ok
    sandbox_host(no_netns)

    res = {
        "machine": f"{os.cpu_count()}-core {os.uname().machine}, load {os.getloadavg()[0]:.2f}",
        "layers": {"run_as": host.run_as, "network_namespace": host.network_namespace,
                   "python": host.python},
        "svg_sandboxed": summary(timings(lambda: render_svg(SVG, limits=limits), args.n)),
        "svg_sandboxed_no_netns": summary(timings(lambda: render_svg(SVG, limits=no_netns), args.n)),
        "svg_in_process": summary(timings(lambda: resvg_in_process(SVG), args.n)),
        "pil_sandboxed": summary(timings(lambda: render_python(PIL_PROGRAM, limits=limits), args.n)),
        "pil_plain_subprocess": summary(timings(lambda: plain_python(PIL_PROGRAM, site), args.n)),
        "bare_interpreter": summary(timings(bare_interpreter, args.n)),
        "mpl_sandboxed": summary(timings(lambda: render_python(MPL_PROGRAM, limits=limits), args.n_mpl)),
        "mpl_plain_subprocess": summary(timings(lambda: plain_python(MPL_PROGRAM, site), args.n_mpl)),
    }
    res["overhead_ms"] = {
        "svg_vs_in_process": 1000 * (res["svg_sandboxed"]["median_s"] - res["svg_in_process"]["median_s"]),
        "pil_vs_plain_subprocess": 1000 * (res["pil_sandboxed"]["median_s"]
                                           - res["pil_plain_subprocess"]["median_s"]),
        "mpl_vs_plain_subprocess": 1000 * (res["mpl_sandboxed"]["median_s"]
                                           - res["mpl_plain_subprocess"]["median_s"]),
        "network_namespace": 1000 * (res["svg_sandboxed"]["median_s"]
                                     - res["svg_sandboxed_no_netns"]["median_s"]),
    }
    if args.redteam:
        res["redteam"] = run_redteam(SandboxLimits(wall_seconds=30, cpu_seconds=1, memory_mb=256))
    res["load_after"] = os.getloadavg()[0]

    print(f"machine: {res['machine']} (after: {res['load_after']:.2f}); layers: {res['layers']}")
    print(f"{'workload':28s} {'median ms':>10s} {'best ms':>9s} {'renders/s':>10s}")
    for key, val in res.items():
        if isinstance(val, dict) and "median_s" in val:
            print(f"{key:28s} {1000 * val['median_s']:10.1f} {1000 * val['best_s']:9.1f} {val['per_s']:10.1f}")
    for key, val in res["overhead_ms"].items():
        print(f"overhead {key:34s} {val:8.1f} ms/render")
    if args.redteam:
        rt = res["redteam"]
        print(f"red team: {rt['contained']}/{rt['cases']} contained ({100 * rt['rate']:.0f}%; "
              f"{rt['python_cases']} Python, {rt['svg_cases']} SVG) in {rt['seconds']:.1f} s; "
              f"sentinel intact: {rt['sentinel_intact']}")
        for f in rt["failures"]:
            print("  NOT CONTAINED", f)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
