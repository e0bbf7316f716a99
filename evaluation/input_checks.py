"""What a benchmark file's content must be: the readers' errors, image and text decoding, bad rows.

`evaluation.readers` turns benchmark files into samples; this module holds
what it checks along the way, so that every problem is a one-line message
naming the file and the row. Images are decoded in full while reading
(`decode_image`), so a truncated picture fails before any model is loaded
instead of as a traceback in the middle of generation; a row whose image
cannot be used either stops the read (`on_bad_image="error"`) or is left
out and listed (`"skip"`, through `RowGuard`).

    with RowGuard("skip", skipped) as row:
        images = [decode_image(cell, "MMStar.tsv row index=12")]
    if row.skipped_it: ...      # skipped[-1] says which row and why
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError


class BenchmarkFileError(FileNotFoundError):
    """A benchmark file (or an image it names) is not where it was expected."""


class BenchmarkFormatError(ValueError):
    """A benchmark file exists but its content is not what the format promises."""


class ImageProblem(Exception):
    """Marks the errors that concern one row's image only: `on_bad_image="skip"` skips such rows."""


class BadImageError(BenchmarkFormatError, ImageProblem):
    """A row's image data cannot be decoded, or names no row holding image data."""


class MissingImageError(BenchmarkFileError, ImageProblem):
    """A row names an image file that is not there."""


ON_BAD_IMAGE = ("error", "skip")
ON_BAD_IMAGE_HELP = (
    "what to do with a row whose image is missing, truncated or not an image: "
    "error (default: stop before the model is loaded, naming the file and row) or "
    "skip (leave the row out; the count and the rows are printed and written to report.json)"
)
SKIP_HINT = "fix the row, or leave such rows out with on_bad_image='skip' (zeroforge eval --on-bad-image skip)"


def check_on_bad_image(on_bad_image: str) -> str:
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE}, found {on_bad_image!r}")
    return on_bad_image


class RowGuard:
    """Applies the on_bad_image policy to one row: `with guard: ...`, then `guard.skipped_it`.

    Only `ImageProblem`s are skippable; any other error (a missing column, a
    gold answer that is no option) still stops the read, since it concerns
    the file rather than one picture. Skipped rows' messages go to `skipped`.
    """

    def __init__(self, on_bad_image: str = "error", skipped: list[str] | None = None):
        self.policy, self.skipped, self.skipped_it = check_on_bad_image(on_bad_image), skipped, False

    def __enter__(self) -> "RowGuard":
        self.skipped_it = False
        return self

    def __exit__(self, kind, err, tb) -> bool:
        if err is None or not isinstance(err, ImageProblem) or self.policy == "error":
            return False
        self.skipped_it = True
        if self.skipped is not None:
            self.skipped.append(str(err).split("; " + SKIP_HINT)[0])
        return True  # swallowed: the row is left out


def decode_image(data: bytes | str, where: str) -> Image.Image:
    """A lazily opened image from base64 text or bytes, after checking that all of it decodes.

    `verify()` checks the file's structure (PNG chunk checksums) and `load()`
    decodes every pixel, which is what catches a truncated file; both run on
    throw-away copies, so the returned image holds no pixels until used and a
    large benchmark does not sit in memory decoded.
    """
    try:
        raw = base64.b64decode(data) if isinstance(data, str) else data
        with Image.open(io.BytesIO(raw)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(raw)) as probe:
            probe.load()
        img = Image.open(io.BytesIO(raw))
        img.size  # noqa: B018  (header parsed)
        return img
    except Exception as e:  # noqa: BLE001  (PIL raises OSError, SyntaxError, ValueError, struct.error, ...)
        if isinstance(e, UnidentifiedImageError):  # its message names a BytesIO object's address
            reason = "no image format PIL reads starts this data"
        else:
            reason = (str(e).splitlines() or [""])[0] or type(e).__name__
        kind = "base64 text" if isinstance(data, str) else "bytes"
        raise BadImageError(f"{where}: image ({kind}) is not a readable JPEG/PNG image: {reason}; {SKIP_HINT}") from e


def open_relative(folder: Path, rel: str, where: str) -> Image.Image:
    """An image file named relative to the benchmark file, decoded as `decode_image` does."""
    p = folder / rel
    if not p.is_file():
        raise MissingImageError(f"{where}: expected image file {p}, found nothing; {SKIP_HINT}")
    return decode_image(p.read_bytes(), f"{where} ({p})")


def utf8_text(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 is a clear error naming the line, not a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BenchmarkFormatError(
            f"{path.name} line {line}: byte 0x{data[e.start]:02x} is not UTF-8; benchmark files must be UTF-8 "
            f"(re-encode it, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed`)"
        ) from e
