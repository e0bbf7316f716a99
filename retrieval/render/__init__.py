"""Sandboxed rendering of model-written programs (MM-Zero's Coder -> image).

In MM-Zero the Coder model writes a program that draws an image (SVG first,
Python with PIL or matplotlib second); the image then feeds the Solver.  The
program is hostile input, so it only ever runs in a throw-away bubblewrap
sandbox: new user, mount, pid, ipc, uts and network namespaces, read-only
system and interpreter mounts, private tmpfs work folder, an unprivileged uid,
seccomp and rlimits; see ``retrieval.render.sandbox`` for the levels (where the
boundary cannot be built, Python is refused: ``isolation_level()``),
``retrieval.render.bwrap`` for the mounts and ``retrieval.render._runner`` for
the inside.

Usage::

    from retrieval.render import extract_program, render_svg, render_python, SandboxLimits

    kind, program = extract_program(reply)
    result = render_svg(program, size=64) if kind == "svg" else render_python(program, size=64)
    if result.ok:
        result.image          # PIL RGB 64x64
    else:
        result.status, result.reason, result.stdout_tail

The Python contract: the program must write ``out.png`` in its working
directory (e.g. ``img.save("out.png")`` or ``plt.savefig("out.png")``); it may
read ``SIZE`` and ``OUT`` globals.  The SVG contract: one ``<svg>`` document,
references only to ``#fragments`` or ``data:image/png;base64,`` (see
``retrieval.render.svg_policy``).  Rasterizer: resvg via the ``resvg-py`` wheel
(a pinned dependency: a self-contained wheel, no system cairo).
"""

from retrieval.render.extract import extract_program
from retrieval.render.renderers import decode_png, render_python, render_reply, render_svg
from retrieval.render.sandbox import LEVELS, SandboxHost, isolation_level, sandbox_host
from retrieval.render.svg_policy import SvgVerdict, check_svg
from retrieval.render.types import STATUSES, RenderResult, SandboxLimits

__all__ = [
    "LEVELS", "isolation_level", "STATUSES", "RenderResult", "SandboxHost", "SandboxLimits", "SvgVerdict", "check_svg",
    "decode_png", "extract_program", "render_python", "render_reply", "render_svg", "sandbox_host",
]
