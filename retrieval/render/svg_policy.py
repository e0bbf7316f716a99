"""Static policy for model-written SVG, applied in the parent before rasterizing.

``render_svg`` calls ``check_svg(text, limits)`` first; only a document it accepts
goes to the sandboxed rasterizer, and what goes there is the document
*re-serialised from the checked tree*, not the model's text, so the rasterizer's
XML parser (resvg's roxmltree) never sees anything the checks did not (comments,
processing instructions such as ``<?xml-stylesheet href=...?>`` and any parser
disagreement are gone).

The checks, each failing with a status and a reason that names what was found:

* size: more than ``limits.max_program_bytes`` of text -> ``too_large``;
* parsing with ``defusedxml`` (expat) and DTDs, entity declarations and external
  references forbidden: no XXE, no billion laughs, no DTD fetch -> ``rejected``;
  malformed XML -> ``syntax_error``; no ``<svg>`` root -> ``not_svg``;
* structure: nesting deeper than ``max_svg_depth`` or more than
  ``max_svg_elements`` elements -> ``rejected``;
* content: ``<script>``, ``<foreignObject>`` and other active elements, ``on*``
  event handlers, ``javascript:``, any ``href``/``src`` other than ``#fragment`` or
  ``data:image/png;base64,``, any CSS ``url(...)`` not to ``#fragment``, ``@import``
  -> ``rejected``;
* sizes: a root ``width``x``height`` or an embedded PNG over ``max_pixels`` ->
  ``too_large``; a root ``width``/``height`` over 64 characters -> ``rejected``.

Every check is linear in the document's length (expat's parse, hand-written
scans for lengths and ``url(...)``; no backtracking regular expression), so the
size limit bounds the parent's time too: a 250 KB document is checked in tens of
milliseconds.

Usage::

    verdict = check_svg(text, SandboxLimits())
    if verdict.status is None:
        rasterize(verdict.text)
"""

from __future__ import annotations

import base64
import binascii
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml import ElementTree as DET

from retrieval.render.types import SandboxLimits

SVG_NS = "http://www.w3.org/2000/svg"
PNG_DATA_PREFIX = "data:image/png;base64,"
# Elements that run code, embed other documents or media: never rendered here.
FORBIDDEN_ELEMENTS = frozenset({
    "script", "foreignobject", "iframe", "object", "embed", "audio", "video", "canvas",
    "handler", "listener", "include",  # the last: XInclude
})
# A root width/height longer than this is refused unread: no real length needs it.
MAX_LENGTH_CHARS = 64
_DIGITS = frozenset("0123456789")
_UNIT_PX = {None: 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54,
            "in": 96.0, "em": 16.0, "ex": 8.0, "%": 0.0}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class SvgVerdict:
    """``status`` None means accepted and ``text`` is the document to rasterize."""

    status: str | None
    reason: str
    text: str = ""
    elements: int = 0
    depth: int = 0


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _length_px(value: str | None) -> float | None:
    """An SVG length in pixels (number, optional exponent, optional unit), parsed by
    hand in one pass; None when absent or not a plain length (resvg then decides)."""
    if value is None:
        return None
    v = value.strip()
    if len(v) > MAX_LENGTH_CHARS:
        return None  # the caller refuses over-long values before asking
    i, n = 0, len(v)
    digits = 0
    while i < n and v[i] in _DIGITS:
        i, digits = i + 1, digits + 1
    if i < n and v[i] == ".":
        i += 1
        while i < n and v[i] in _DIGITS:
            i, digits = i + 1, digits + 1
    if digits == 0:
        return None
    if i < n and v[i] in "eE":
        j = i + 1
        if j < n and v[j] in "+-":
            j += 1
        if j < n and v[j] in _DIGITS:
            while j < n and v[j] in _DIGITS:
                j += 1
            i = j
    unit = v[i:].strip() or None
    if unit not in _UNIT_PX:
        return None
    try:
        return float(v[:i]) * _UNIT_PX[unit]
    except (OverflowError, ValueError):
        return None


def _url_targets(text: str) -> list[str]:
    """The targets of every ``url(...)`` in ``text`` (quotes and spaces stripped), by a
    linear scan up to each closing parenthesis."""
    out, low, i = [], text.lower(), 0
    while True:
        p = low.find("url(", i)
        if p < 0:
            return out
        q = text.find(")", p + 4)
        inner = text[p + 4:q if q >= 0 else len(text)]
        out.append(inner.strip().strip("'\"").strip())
        if q < 0:
            return out
        i = q + 1


def _png_pixels(data_uri: str) -> tuple[int, int] | None:
    """(width, height) from the IHDR of a base64 PNG data URI, None if not a PNG."""
    head = data_uri[len(PNG_DATA_PREFIX):len(PNG_DATA_PREFIX) + 64].strip()
    head = head[: len(head) // 4 * 4]
    try:
        raw = base64.b64decode(head, validate=False)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 24 or not raw.startswith(_PNG_SIGNATURE) or raw[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", raw[16:24])


def _check_css(text: str, where: str) -> str | None:
    low = text.lower()
    if "\\" in text:
        return f"backslash escape in {where}: CSS escapes could hide a url(...)"
    if "@import" in low:
        return f"CSS @import in {where}: external style sheets are not allowed"
    if "javascript:" in low or "expression(" in low:
        return f"script in CSS in {where}"
    for target in _url_targets(text):
        if not target.startswith("#"):
            return f"url({target[:80]!r}) in {where}: only url(#fragment) references are allowed"
    return None


def _check_reference(value: str, where: str, limits: SandboxLimits) -> tuple[str, str] | None:
    v = value.strip()
    if v.startswith("#"):
        return None
    if v.startswith(PNG_DATA_PREFIX):
        dims = _png_pixels(v)
        if dims is None:
            return "rejected", f"{where} holds a data URI that is not a base64 PNG"
        if dims[0] * dims[1] > limits.max_pixels:
            return "too_large", (f"{where} embeds a {dims[0]}x{dims[1]} PNG, over the "
                                 f"{limits.max_pixels}-pixel limit")
        return None
    return "rejected", (f"external reference {where}={v[:100]!r}: only '#fragment' and "
                        f"'{PNG_DATA_PREFIX}' references are allowed")


def _check_element(elem: ET.Element, limits: SandboxLimits) -> tuple[str, str] | None:
    name = _local(elem.tag) if isinstance(elem.tag, str) else "?"
    if name.lower() in FORBIDDEN_ELEMENTS:
        return "rejected", f"<{name}> elements are not allowed"
    for attr, value in elem.attrib.items():
        local = _local(attr).lower()
        where = f"<{name} {_local(attr)}>"
        if local.startswith("on"):
            return "rejected", f"event handler attribute {where}"
        if local in ("href", "src"):
            verdict = _check_reference(value, where, limits)
            if verdict is not None:
                return verdict
        elif ("url(" in value.lower() or "javascript:" in value.lower() or "\\" in value
              or local == "style"):
            problem = _check_css(value, where)
            if problem:
                return "rejected", problem
    if name.lower() == "style" and elem.text:
        problem = _check_css(elem.text, "<style>")
        if problem:
            return "rejected", problem
    return None


def check_svg(text: str, limits: SandboxLimits) -> SvgVerdict:
    """Vet ``text`` as an SVG document; see the module docstring for the rules."""
    if not isinstance(text, str):
        raise TypeError(f"check_svg expects the SVG document as str, got {type(text).__name__}")
    size = len(text.encode("utf-8", "replace"))
    if size > limits.max_program_bytes:
        return SvgVerdict("too_large", f"SVG text is {size} bytes, over the "
                                       f"{limits.max_program_bytes}-byte limit")
    if "<svg" not in text.lower():
        return SvgVerdict("not_svg", "no <svg> element in the text")
    try:
        root = DET.fromstring(text.strip(), forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    except DTDForbidden:
        return SvgVerdict("rejected", "DOCTYPE declaration: DTDs and entities are not allowed "
                                      "(XXE / entity expansion)")
    except EntitiesForbidden as e:
        return SvgVerdict("rejected", f"entity declaration {e.name!r}: entities are not allowed")
    except ExternalReferenceForbidden as e:
        return SvgVerdict("rejected", f"external reference {e.sysid!r}: not allowed")
    except DefusedXmlException as e:
        return SvgVerdict("rejected", f"unsafe XML construct: {e}")
    except ET.ParseError as e:
        return SvgVerdict("syntax_error", f"XML parse error: {e}")
    if _local(root.tag) != "svg":
        return SvgVerdict("not_svg", f"the root element is <{_local(root.tag)}>, expected <svg>")

    for attr in ("width", "height"):
        if len(root.get(attr) or "") > MAX_LENGTH_CHARS:
            return SvgVerdict("rejected", f"the root's {attr} attribute is {len(root.get(attr))} characters long "
                                          f"(at most {MAX_LENGTH_CHARS})")
    width, height = _length_px(root.get("width")), _length_px(root.get("height"))
    if width is not None and height is not None and width * height > limits.max_pixels:
        return SvgVerdict("too_large", f"declared size {root.get('width')}x{root.get('height')} is "
                                       f"over the {limits.max_pixels}-pixel limit")

    # Iterative walk: a recursive one would itself be a stack bomb target.
    count, deepest = 0, 0
    stack = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if depth > limits.max_svg_depth:
            return SvgVerdict("rejected", f"elements nested deeper than {limits.max_svg_depth} levels")
        if count > limits.max_svg_elements:
            return SvgVerdict("rejected", f"more than {limits.max_svg_elements} elements")
        problem = _check_element(elem, limits)
        if problem is not None:
            return SvgVerdict(problem[0], problem[1], elements=count, depth=deepest)
        stack.extend((child, depth + 1) for child in elem)
    return SvgVerdict(None, "", _serialize(root), count, deepest)


def _serialize(root: ET.Element) -> str:
    """The checked tree as text, with SVG elements in the SVG namespace: models often
    omit ``xmlns``, and resvg then skips some elements (text, for one)."""
    if not root.tag.startswith("{"):
        for elem in root.iter():
            if not elem.tag.startswith("{"):
                elem.tag = f"{{{SVG_NS}}}{elem.tag}"
    # Namespaced tags come out with ns0:-style prefixes (ElementTree cannot write a
    # default namespace next to plain attributes); resvg reads them correctly.
    return ET.tostring(root, encoding="unicode")
