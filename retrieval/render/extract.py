"""Pull the program out of a Coder model's reply: an SVG document or a Python script.

MM-Zero's Coder answers in free text with one program in it.  ``extract_program``
finds it and says which renderer it needs; it never runs or parses the program.
Rules, first match wins:

1. the first fenced block labelled ``svg``/``xml``/``html`` (if it holds ``<svg``)
   or ``python``/``py``/``python3`` -> that block;
2. a bare ``<svg ...>...</svg>`` in the text -> from the first ``<svg`` (or its
   ``<?xml`` prolog) to the last ``</svg>``;
3. the first unlabelled fenced block: ``<svg`` inside -> svg, otherwise python.

A fence the model did not close (its reply was cut) runs to the end of the text.

Usage::

    kind, program = extract_program(reply)   # ("svg", "<svg ...>...</svg>")
    result = render_svg(program) if kind == "svg" else render_python(program)
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_BARE_SVG = re.compile(r"(?:<\?xml[^>]*\?>\s*)?<svg\b.*</svg\s*>", re.DOTALL | re.IGNORECASE)
_SVG_LABELS = frozenset({"svg", "xml", "html"})
_PY_LABELS = frozenset({"python", "py", "python3"})


def extract_program(model_text: str) -> tuple[str | None, str]:
    """Return ``(kind, program)`` with kind "svg" or "python", or ``(None, "")``."""
    if not isinstance(model_text, str):
        raise TypeError(f"extract_program expects the model's reply as str, got "
                        f"{type(model_text).__name__}")
    fences = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(model_text)]
    for label, body in fences:
        if label in _SVG_LABELS and "<svg" in body.lower():
            return "svg", body.strip()
        if label in _PY_LABELS:
            return "python", body.strip("\n")
    bare = _BARE_SVG.search(model_text)
    if bare:
        return "svg", bare.group(0).strip()
    for label, body in fences:
        if not label and body.strip():
            return ("svg", body.strip()) if "<svg" in body.lower() else ("python", body.strip("\n"))
    return None, ""
