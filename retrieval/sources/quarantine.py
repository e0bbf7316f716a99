"""Quarantine for rejected inputs: keep the offending file and the reason side by side.

Used by ``retrieval.pool.ImagePool.add`` (or any caller) on every ``Rejected`` a source
yields, so a human can inspect what was refused and why.  ``quarantine(rejected, dir)``
copies the file when the rejection has a ``path`` (the original is left untouched) and
always writes ``<name>.reason.json``; it returns the path of that JSON file.  The copy
is made only from a regular file opened without following links, and both files
are created 0600: a rejected input may be private.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from retrieval.sources.base import Rejected
from retrieval.sources.safe_files import read_regular


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a fresh 0600 file (never through a link already at ``path``)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _safe_name(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[-80:] or "item"
    # The hash keeps names distinct when two refs sanitise to the same string.
    return f"{stem}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def quarantine(rejected: Rejected, quarantine_dir: str | os.PathLike) -> Path:
    """Copy the rejected file (if any) into ``quarantine_dir`` and write a reason JSON."""
    if not isinstance(rejected, Rejected):
        raise TypeError(f"quarantine expects a Rejected, got {type(rejected).__name__}")
    qdir = Path(quarantine_dir)
    qdir.mkdir(parents=True, exist_ok=True)
    name = _safe_name(f"{rejected.source}_{rejected.path or rejected.ref}")
    copied: str | None = None
    copy_error: str | None = None
    if rejected.path is not None:
        src = Path(rejected.path)
        dst = qdir / name
        try:
            # A regular file only, opened without following links: the copy must not
            # become a readable duplicate of a file the pool was never meant to see.
            _write_private(dst, read_regular(src))
            copied = str(dst)
        except OSError as exc:  # unreadable file: still record why it was rejected
            copy_error = f"{type(exc).__name__}: {exc}"
    info = {
        "source": rejected.source,
        "ref": rejected.ref,
        "reason": rejected.reason,
        "original_path": rejected.path,
        "quarantined_copy": copied,
        "copy_error": copy_error,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    reason_path = qdir / f"{name}.reason.json"
    _write_private(reason_path, (json.dumps(info, indent=2) + "\n").encode())
    return reason_path
