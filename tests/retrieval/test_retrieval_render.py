"""Tests for retrieval.render: rendering valid programs, statuses, SVG policy, extraction.

The hostile programs live in test_retrieval_render_redteam.py; this file checks
that ordinary Coder output renders and that each failure kind gets its status.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.render import (
    LEVELS,
    STATUSES,
    RenderResult,
    SandboxLimits,
    _seccomp,
    check_svg,
    decode_png,
    extract_program,
    isolation_level,
    render_python,
    render_reply,
    render_svg,
    sandbox_host,
)
from retrieval.render import sandbox as sandbox_mod
from retrieval.render.bwrap import bwrap_argv

NS = 'xmlns="http://www.w3.org/2000/svg"'
RED_CIRCLE = f'<svg {NS} width="64" height="64"><circle cx="32" cy="32" r="28" fill="red"/></svg>'
PIL_PROGRAM = """
from PIL import Image, ImageDraw
im = Image.new("RGB", (SIZE, SIZE), "white")
ImageDraw.Draw(im).ellipse((8, 8, SIZE - 8, SIZE - 8), fill=(0, 0, 255))
im.save("out.png")
print("drew a circle")
"""
# Generous wall time: the machine is shared, and these programs are expected to succeed.
LIMITS = SandboxLimits(wall_seconds=60, cpu_seconds=20)


def is_red(px) -> bool:
    return px[0] > 200 and px[1] < 60 and px[2] < 60


# --- rendering ---------------------------------------------------------------------------

def test_svg_red_circle_renders_red_centre():
    r = render_svg(RED_CIRCLE, size=64, limits=LIMITS)
    assert r.ok, (r.status, r.reason)
    assert r.status == "ok" and r.reason == ""
    assert r.image.size == (64, 64) and r.image.mode == "RGB"
    assert is_red(r.image.getpixel((32, 32)))
    assert r.image.getpixel((1, 1)) == (255, 255, 255)  # transparent corner flattened on white
    assert r.seconds > 0


def test_svg_without_namespace_text_and_embedded_png_render():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 255, 0)).save(buf, "PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    svg = (f'<svg width="64" height="64"><image href="data:image/png;base64,{data}" '
           'width="32" height="64"/><text x="34" y="40" font-size="30" font-family="Arial">A</text></svg>')
    r = render_svg(svg, size=64, limits=LIMITS)
    assert r.ok, (r.status, r.reason)
    assert r.image.getpixel((10, 32))[1] > 200 and r.image.getpixel((10, 32))[0] < 60
    right = r.image.crop((32, 0, 64, 64))
    assert np.asarray(right)[..., 0].min() < 100, "the text glyph should leave dark pixels"


def test_svg_aspect_ratio_is_kept_and_padded_white():
    svg = f'<svg {NS} width="100" height="50"><rect width="100" height="50" fill="red"/></svg>'
    r = render_svg(svg, size=64, limits=LIMITS)
    assert r.ok, (r.status, r.reason)
    assert is_red(r.image.getpixel((32, 32)))
    assert r.image.getpixel((32, 2)) == (255, 255, 255)
    assert r.image.getpixel((32, 61)) == (255, 255, 255)


def test_pil_program_renders_and_keeps_stdout():
    r = render_python(PIL_PROGRAM, size=48, limits=LIMITS)
    assert r.ok, (r.status, r.reason, r.stdout_tail)
    assert r.image.size == (48, 48)
    assert r.image.getpixel((24, 24)) == (0, 0, 255)
    assert "drew a circle" in r.stdout_tail


def test_matplotlib_program_renders():
    code = """
import matplotlib.pyplot as plt
import numpy as np
fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
ax.bar(["a", "b"], [3, 5], color="red")
ax.set_title("counts")
fig.savefig("out.png")
"""
    r = render_python(code, size=64, limits=LIMITS)
    assert r.ok, (r.status, r.reason, r.stdout_tail)
    assert r.image.size == (64, 64)
    px = np.asarray(r.image).astype(int)
    red = (px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] < 60)
    assert red.any(), "the red bars should be visible"


def test_program_output_is_fitted_into_size():
    code = 'from PIL import Image\nImage.new("RGB", (200, 100), (255, 0, 0)).save("out.png")'
    r = render_python(code, size=32, limits=LIMITS)
    assert r.ok, (r.status, r.reason)
    assert r.image.size == (32, 32)
    assert is_red(r.image.getpixel((16, 16))) and r.image.getpixel((16, 1)) == (255, 255, 255)


# --- failure statuses ----------------------------------------------------------------------

def test_python_syntax_error():
    r = render_python("def broken(:\n    pass", limits=LIMITS)
    assert (r.ok, r.status) == (False, "syntax_error")
    assert "SyntaxError" in r.reason and r.image is None


def test_python_exception_is_crashed_with_traceback():
    r = render_python("x = 1\nraise ValueError('bad colour')", limits=LIMITS)
    assert r.status == "crashed"
    assert "ValueError: bad colour" in r.reason
    assert "program.py" in r.stdout_tail and "line 2" in r.stdout_tail


def test_python_without_out_png_is_no_image():
    r = render_python("print('forgot to save')", limits=LIMITS)
    assert r.status == "no_image" and "out.png" in r.reason
    assert "forgot to save" in r.stdout_tail


def test_program_too_large_is_refused_before_running():
    r = render_python("x = 1\n" * 100, limits=SandboxLimits(max_program_bytes=100))
    assert r.status == "too_large" and "100-byte limit" in r.reason


def test_caller_carries_on_after_failures():
    assert render_python("while True: pass", limits=SandboxLimits(cpu_seconds=1, wall_seconds=30)).status == "timeout"
    assert render_svg("<svg><g></svg>", limits=LIMITS).status == "syntax_error"
    assert render_svg(RED_CIRCLE, limits=LIMITS).ok


def test_temp_dirs_are_removed():
    tmp = Path(tempfile.gettempdir())
    before = {p.name for p in tmp.glob("zf-render-*")}
    render_python(PIL_PROGRAM, limits=LIMITS)
    render_python("raise SystemExit(3)", limits=LIMITS)
    after = {p.name for p in tmp.glob("zf-render-*")}
    leaked = {n for n in after - before if not n.startswith("zf-render-mplcache-")}
    assert not leaked, f"temp dirs left behind: {leaked}"


# --- SVG policy (parent side, no subprocess) ----------------------------------------------

@pytest.mark.parametrize("text, status, words", [
    ("just words", "not_svg", "no <svg>"),
    ("<html><svg/></html>", "not_svg", "<html>"),
    ("<svg><g></svg>", "syntax_error", "XML parse error"),
    (f'<svg {NS}><a href="https://example.com"><rect/></a></svg>', "rejected", "external reference"),
    (f'<svg {NS}><rect style="fill: url(file:///etc/passwd)"/></svg>', "rejected", "url("),
    (f'<svg {NS} width="5000mm" height="5000mm"/>', "too_large", "pixel limit"),
])
def test_check_svg_refusals(text, status, words):
    verdict = check_svg(text, SandboxLimits())
    assert verdict.status == status
    assert words in verdict.reason


def test_check_svg_reserializes_what_it_checked():
    text = (f'<?xml version="1.0"?><?xml-stylesheet href="http://evil.example/s.css"?>'
            f'<!-- comment --><svg {NS}><rect width="1" height="1" fill="url(#g)"/></svg>')
    verdict = check_svg(text, SandboxLimits())
    assert verdict.status is None, verdict.reason
    assert "xml-stylesheet" not in verdict.text and "comment" not in verdict.text
    assert "rect" in verdict.text and verdict.elements == 2 and verdict.depth == 2


def test_check_svg_depth_and_element_limits():
    deep = f"<svg {NS}>" + "<g>" * 10 + "</g>" * 10 + "</svg>"
    assert check_svg(deep, SandboxLimits(max_svg_depth=11)).status is None
    assert check_svg(deep, SandboxLimits(max_svg_depth=10)).status == "rejected"
    assert check_svg(deep, SandboxLimits(max_svg_elements=5)).reason == "more than 5 elements"


def test_check_svg_rejects_non_str():
    with pytest.raises(TypeError, match="as str, got bytes"):
        check_svg(b"<svg/>", SandboxLimits())


# --- image decoding in the parent ------------------------------------------------------------

def test_decode_png_rejects_other_formats_and_flattens_alpha():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    assert decode_png(buf.getvalue(), 8, SandboxLimits())[1:] == (
        "no_image", "out.png is not a PNG file (no PNG signature and IHDR header)")
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buf, "PNG")
    im, status, _ = decode_png(buf.getvalue(), 8, SandboxLimits())
    assert status == "ok" and im.mode == "RGB" and im.getpixel((4, 4)) == (255, 255, 255)
    buf = io.BytesIO()
    Image.new("L", (300, 300)).save(buf, "PNG")
    assert decode_png(buf.getvalue(), 8, SandboxLimits(max_pixels=1000))[1] == "too_large"


# --- extraction ----------------------------------------------------------------------------

@pytest.mark.parametrize("reply, kind, start", [
    ("Here:\n```svg\n<svg width='8'/>\n```\nDone.", "svg", "<svg width='8'/>"),
    ("```python\nimport PIL\nprint(1)\n```", "python", "import PIL"),
    ("I drew <svg xmlns='x'><rect/></svg> for you", "svg", "<svg xmlns='x'>"),
    ("```\n<svg><rect/></svg>\n```", "svg", "<svg>"),
    ("```\nfrom PIL import Image\n```", "python", "from PIL"),
    ("```py\nx = 1", "python", "x = 1"),  # cut-off reply: fence never closed
    ("```python\nA = 1\n```\n```svg\n<svg/>\n```", "python", "A = 1"),
    ("no program here", None, ""),
])
def test_extract_program(reply, kind, start):
    got_kind, program = extract_program(reply)
    assert got_kind == kind
    assert program.startswith(start)
    assert "```" not in program


def test_render_reply_dispatches():
    r = render_reply(f"```python\n{PIL_PROGRAM}\n```", size=16, limits=LIMITS)
    assert r.ok and r.image.size == (16, 16)
    none = render_reply("I cannot draw that.")
    assert none.status == "no_image" and "no ```svg" in none.reason


# --- types ---------------------------------------------------------------------------------

def test_limits_and_result_validate():
    with pytest.raises(ValueError, match="cpu_seconds must be a positive number, got 0"):
        SandboxLimits(cpu_seconds=0)
    with pytest.raises(ValueError, match="memory_mb must be at least 64"):
        SandboxLimits(memory_mb=32)
    with pytest.raises(ValueError, match="status must be one of"):
        RenderResult(False, None, "exploded", "", 0.0)
    with pytest.raises(ValueError, match="contradicts"):
        RenderResult(True, Image.new("RGB", (1, 1)), "crashed", "", 0.0)
    assert len(STATUSES) == 9
    with pytest.raises(ValueError, match="size must be an int"):
        render_python("pass", size=0)


# --- sandbox layers ------------------------------------------------------------------------

def full_boundary() -> bool:
    return sandbox_host(LIMITS).python_allowed


def test_isolation_level_is_reported_and_carried_by_every_result():
    level = isolation_level(LIMITS)
    assert level in LEVELS
    assert render_svg(RED_CIRCLE, limits=LIMITS).isolation == level
    assert render_svg("<svg><g></svg>", limits=LIMITS).isolation == level  # refused statically, still stated
    if shutil.which("bwrap"):
        assert level.startswith("bwrap"), sandbox_host(LIMITS).reason


def test_check_svg_is_linear_in_the_document():
    """The parent's check of ~250 KB pathological documents (typically ~10-50 ms each)."""
    docs = [f'<svg {NS} width="{"1" * 20000}" height="1"/>',
            f'<svg {NS} width="10" height="{"9" * 200000}e"/>',
            f'<svg {NS}><rect style="{"url( " * 50000}"/></svg>',
            f'<svg {NS}><rect fill="url(' + " " * 240000 + '"/></svg>']
    for doc in docs:
        t0 = time.perf_counter()
        verdict = check_svg(doc, SandboxLimits())
        assert verdict.status == "rejected", verdict
        assert time.perf_counter() - t0 < 2.0
    t0 = time.perf_counter()
    for reply in ("```" * 90000, "<svg" * 60000, "```x" + " " * 250000, "<svg>" + "</svg" * 50000):
        extract_program(reply)
    assert time.perf_counter() - t0 < 2.0


def test_seccomp_tables_match_libseccomp():
    lib = ctypes.util.find_library("seccomp")
    if not lib:
        pytest.skip("libseccomp is not installed: nothing to compare the tables with")
    seccomp = ctypes.CDLL(lib)
    seccomp.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for arch, token in _seccomp.ARCHES.items():
        for name, nr in _seccomp.SYSCALLS[arch].items():
            assert seccomp.seccomp_syscall_resolve_name_arch(token, name.encode()) == nr, (arch, name)


def test_seccomp_filters_are_well_formed():
    for build in (_seccomp.baseline_filter, lambda arch: _seccomp.program_filter(1234, arch)):
        for arch in _seccomp.ARCHES:
            prog = build(arch)
            assert len(prog) % 8 == 0 and 8 < len(prog) // 8 < 4096


def _run_in_boundary(code: str, **extra) -> subprocess.CompletedProcess:
    """A trusted snippet under the bubblewrap layer alone (no runner, hook or seccomp)."""
    host = sandbox_host(LIMITS)
    argv = bwrap_argv(host.bwrap, host.layout, as_root=False, sandbox_uid=65534, sandbox_gid=65534,
                      tmpfs_bytes=8 << 20, seccomp_fd=None, mpl_cache=None, runner_cfg="{}")
    cut = argv.index("--")
    argv = argv[:cut + 1] + [host.python, "-I", "-S", "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **extra)


def test_bwrap_layer_alone_cuts_network_files_and_processes(tmp_path):
    if not full_boundary():
        pytest.skip("no OS boundary on this machine (see isolation_level())")
    canary = tmp_path / "canary.txt"
    canary.write_text("secret")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = f"""
import os, socket
out = []
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2); out.append('connected')
except OSError:
    out.append('no-network')
out.append('canary-visible' if os.path.exists({str(canary)!r}) else 'canary-hidden')
out.append('pid-visible' if os.path.exists('/proc/{os.getpid()}') else 'pid-hidden')
try:
    open('/usr/zf_pwned', 'w')
except OSError:
    out.append('usr-readonly')
out.append('uid=%d' % os.getuid())
print(' '.join(out))
"""
    try:
        out = _run_in_boundary(code)
    finally:
        server.close()
    assert out.stdout.split() == ["no-network", "canary-hidden", "pid-hidden", "usr-readonly", "uid=65534"], \
        out.stdout + out.stderr


def test_sweep_kills_marked_processes_that_left_the_group():
    token = "test" + os.urandom(6).hex()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), sandbox_mod.TOKEN_VAR: token}
    proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        assert sandbox_mod.sweep_marked(token) == 1
        assert proc.wait(timeout=10) == -9
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_interpreter_under_tmp_stays_visible_over_the_private_tmp():
    """The private tmpfs is mounted before the interpreter's trees: a checkout (and its .venv) under /tmp works."""
    from retrieval.render.bwrap import Layout

    lay = Layout("/tmp/checkout/.venv/bin/python", ("/tmp/checkout/.venv", "/opt/python"), ("/tmp/checkout/.venv/lib",))
    argv = bwrap_argv("bwrap", lay, as_root=False, sandbox_uid=65534, sandbox_gid=65534, tmpfs_bytes=8 << 20,
                      seccomp_fd=None, mpl_cache=None, runner_cfg="{}")
    tmpfs = argv.index("--tmpfs", argv.index("/tmp") - 1)
    assert argv[tmpfs + 1] == "/tmp"
    venv_bind = max(i for i, a in enumerate(argv[:-1]) if a == "--ro-bind" and argv[i + 1] == "/tmp/checkout/.venv")
    assert tmpfs < venv_bind
