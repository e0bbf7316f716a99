"""``render_svg`` / ``render_python``: model program in, ``RenderResult`` out.

These are the entry points the MM-Zero loop calls on each Coder program (see
``retrieval.render`` for the package overview).  Each one checks the program
statically where that is cheap (size; the SVG policy, linear time), runs it in
a fresh sandbox (``retrieval.render.sandbox``), which also decodes ``out.png``
there with its own limits: PNG only, at most ``max_pixels`` pixels, checked
from the header before any pixel is decoded (the decompression-bomb guard).
The image is flattened onto white, fitted inside ``size`` x ``size`` keeping
its aspect ratio and centred; the parent only receives those RGB bytes, so
every successful result is an RGB ``size`` x ``size`` image and the parent's
memory does not depend on what the program wrote.  Each result carries the
isolation level it ran under.

No exception from the program reaches the caller: every outcome is a
``RenderResult``.  Misuse (a non-str program, a bad size) raises ``TypeError`` or
``ValueError``.
"""

from __future__ import annotations

import time

from PIL import Image

from retrieval.render._decode import decode_png_rgb
from retrieval.render.extract import extract_program
from retrieval.render.sandbox import SandboxRun, isolation_level, run_in_sandbox
from retrieval.render.svg_policy import check_svg
from retrieval.render.types import RenderResult, SandboxLimits

MAX_SIZE = 4096


def _check_args(program: object, size: object, what: str) -> None:
    if not isinstance(program, str):
        raise TypeError(f"{what} expects the program as str, got {type(program).__name__}")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"{what} size must be an int in [1, {MAX_SIZE}], got {size!r}")


def _fail(status: str, reason: str, t0: float, tail: str = "", isolation: str | None = None,
          limits: SandboxLimits | None = None) -> RenderResult:
    """A failed render; a static refusal still records the level renders get here."""
    level = isolation if isolation is not None else isolation_level(limits)
    return RenderResult(False, None, status, reason, time.perf_counter() - t0, tail, level)


def decode_png(data: bytes, size: int, limits: SandboxLimits) -> tuple[Image.Image | None, str, str]:
    """(image, status, reason): PNG ``data`` as an RGB size x size image, or why not.

    The pixel count is read from the IHDR header before anything is decoded.  Renders
    do not call this in the parent: the sandbox decodes ``out.png`` with the same code
    (``retrieval.render._decode``) and hands back RGB bytes of the requested size."""
    return decode_png_rgb(data, size, limits.max_pixels)


def _finish(run: SandboxRun, size: int, t0: float) -> RenderResult:
    if run.status is not None:
        return _fail(run.status, run.reason, t0, run.stdout_tail, run.isolation)
    image = Image.frombytes("RGB", (size, size), run.rgb)
    return RenderResult(True, image, "ok", "", time.perf_counter() - t0, run.stdout_tail, run.isolation)


def render_svg(text: str, size: int = 64, limits: SandboxLimits | None = None) -> RenderResult:
    """Rasterize an SVG document to an RGB ``size`` x ``size`` image in the sandbox."""
    t0 = time.perf_counter()
    limits = limits or SandboxLimits()
    _check_args(text, size, "render_svg")
    verdict = check_svg(text, limits)
    if verdict.status is not None:
        return _fail(verdict.status, verdict.reason, t0, limits=limits)
    run = run_in_sandbox("svg", ("input.svg", verdict.text.encode("utf-8")), size, limits)
    return _finish(run, size, t0)


def render_python(code: str, size: int = 64, limits: SandboxLimits | None = None) -> RenderResult:
    """Run a Python drawing program in the sandbox; it must save ``out.png`` in its
    working directory (PIL or matplotlib).  It sees ``SIZE`` (the requested size)
    and ``OUT`` ("out.png") as globals."""
    t0 = time.perf_counter()
    limits = limits or SandboxLimits()
    _check_args(code, size, "render_python")
    data = code.encode("utf-8", "surrogatepass")
    if len(data) > limits.max_program_bytes:
        return _fail("too_large", f"program is {len(data)} bytes, over the "
                                  f"{limits.max_program_bytes}-byte limit", t0, limits=limits)
    run = run_in_sandbox("python", ("program.py", data), size, limits)
    return _finish(run, size, t0)


def render_reply(model_text: str, size: int = 64, limits: SandboxLimits | None = None) -> RenderResult:
    """Extract the program from a model's reply and render it with the right renderer."""
    t0 = time.perf_counter()
    kind, program = extract_program(model_text)
    if kind == "svg":
        return render_svg(program, size, limits)
    if kind == "python":
        return render_python(program, size, limits)
    return _fail("no_image", "the reply holds no ```svg block, <svg> document or ```python block", t0,
                 limits=limits)
