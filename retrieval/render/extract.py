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
Every rule is a linear scan (no regular expression), so the parent's time on a
reply grows with its length only.

Usage::

    kind, program = extract_program(reply)   # ("svg", "<svg ...>...</svg>")
    result = render_svg(program) if kind == "svg" else render_python(program)
"""

from __future__ import annotations

# Every scan below is a plain left-to-right (or right-to-left) search: replies are
# hostile text, and a backtracking expression over them could stall the parent.
_SVG_LABELS = frozenset({"svg", "xml", "html"})
_PY_LABELS = frozenset({"python", "py", "python3"})
_LABEL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SPACE = " \t\n\r\f\v"


def _fences(text: str) -> list[tuple[str, str]]:
    """(label, body) of each fenced block: a fence is three backticks, an optional
    label, the rest of its line; the body runs to the next fence or the end."""
    out, i = [], 0
    while True:
        p = text.find("```", i)
        if p < 0:
            return out
        nl = text.find("\n", p + 3)
        if nl < 0:  # a fence needs its own line; nothing after it can be one either
            return out
        header = text[p + 3:nl].lstrip(" \t")
        n = 0
        while n < len(header) and header[n] in _LABEL_CHARS:
            n += 1
        end = text.find("```", nl + 1)
        out.append((header[:n].lower(), text[nl + 1:end if end >= 0 else len(text)]))
        if end < 0:
            return out
        i = end + 3


def _bare_svg(text: str) -> str | None:
    """From the first ``<svg`` (or an ``<?xml ...?>`` prolog right before it) to the
    last ``</svg>``, case-insensitively; None when there is no such span."""
    low = text.lower()
    start = low.find("<svg")
    while start >= 0 and start + 4 < len(low) and low[start + 4] in _WORD_CHARS:
        start = low.find("<svg", start + 4)
    if start < 0:
        return None
    end, j = -1, low.rfind("</svg")
    while j > start:
        k = j + 5
        while k < len(low) and low[k] in _SPACE:
            k += 1
        if k < len(low) and low[k] == ">":
            end = k + 1
            break
        j = low.rfind("</svg", 0, j)
    if end < 0:
        return None
    head = text[:start].rstrip(_SPACE)
    if head.endswith("?>"):
        gt = len(head) - 1
        prev = low.rfind(">", 0, gt)
        p = low.find("<?xml", prev + 1, gt)
        if p >= 0:
            start = p
    return text[start:end]


def extract_program(model_text: str) -> tuple[str | None, str]:
    """Return ``(kind, program)`` with kind "svg" or "python", or ``(None, "")``."""
    if not isinstance(model_text, str):
        raise TypeError(f"extract_program expects the model's reply as str, got "
                        f"{type(model_text).__name__}")
    fences = _fences(model_text)
    for label, body in fences:
        if label in _SVG_LABELS and "<svg" in body.lower():
            return "svg", body.strip()
        if label in _PY_LABELS:
            return "python", body.strip("\n")
    bare = _bare_svg(model_text)
    if bare:
        return "svg", bare.strip()
    for label, body in fences:
        if not label and body.strip():
            return ("svg", body.strip()) if "<svg" in body.lower() else ("python", body.strip("\n"))
    return None, ""
