"""PNG checks and decoding for renders: header first, pixels only within the limits.

One implementation for both sides of the sandbox: the supervisor inside the
sandbox (``_runner.py`` loads this file by path, so it needs only the standard
library and PIL) decodes the program's ``out.png`` in a confined child, and
``retrieval.render.renderers.decode_png`` uses the same function in-process.
The parent of a render never decodes the program's PNG itself: it receives the
``size`` x ``size`` RGB bytes that the sandbox produced.

``png_dimensions(data)`` reads width and height from the IHDR chunk (the first
24 bytes) without PIL; ``decode_png_rgb(data, size, max_pixels)`` refuses a file
whose header claims more than ``max_pixels`` pixels before any pixel is
decoded, then flattens transparency onto white and fits the image inside
``size`` x ``size`` (aspect ratio kept, centred).
"""

from __future__ import annotations

import io
import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when ``data`` does not start like a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def decode_png_rgb(data: bytes, size: int, max_pixels: int):
    """(image, status, reason): ``data`` as an RGB ``size`` x ``size`` PIL image, or why not."""
    from PIL import Image

    dims = png_dimensions(data)
    if dims is None:
        kind = "empty" if not data else "not a PNG file"
        return None, "no_image", f"out.png is {kind} (no PNG signature and IHDR header)"
    w, h = dims
    if w * h > max_pixels:
        return None, "too_large", f"out.png is {w}x{h}, over the {max_pixels}-pixel limit"
    if w == 0 or h == 0:
        return None, "no_image", f"out.png is empty ({w}x{h})"
    try:
        im = Image.open(io.BytesIO(data), formats=["PNG"])
        if im.size != (w, h):
            return None, "no_image", "out.png has an inconsistent header"
        im.load()
    except Exception as e:  # PIL raises many types on hostile input
        return None, "no_image", f"out.png could not be decoded: {type(e).__name__}: {e}"
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        im = flat
    else:
        im = im.convert("RGB")
    if im.size != (size, size):
        scale = min(size / w, size / h)
        fitted = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
        im = canvas
    return im, "ok", ""
