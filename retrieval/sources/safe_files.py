"""Opening user files without following links or blocking: what every file source uses.

A pool source reads folders and shard files that users point it at, and they
may hold anything: a symlink to a private file (``/etc/shadow``, another
user's 0600 key), a FIFO named ``x.png`` (whose ``open`` never returns), a
device, a socket.  ``classify(path)`` says what an entry is from ``lstat``
without opening it; ``read_regular(path, limit)`` opens with ``O_NOFOLLOW |
O_NONBLOCK`` and re-checks the opened fd with ``fstat`` (so a swap between the
check and the open is caught); ``walk_files(root)`` lists a tree without
entering symlinked directories.  Used by ``retrieval.sources.folder``,
``shards_source`` and ``quarantine``.

    kind = classify(path)            # "file", "symlink", "fifo", "device", "socket", "dir", "missing"
    data = read_regular(path)        # bytes, or raises UnsafeFile with a reason
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path


class UnsafeFile(OSError):
    """The path is not a regular file that may be opened (the message says what it is)."""


def classify(path: str | os.PathLike) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


REASONS = {
    "symlink": "symbolic link: not followed (it could point at a file this source must not read)",
    "fifo": "named pipe (FIFO): skipped, never opened (reading it would block)",
    "device": "device file: skipped, never opened",
    "socket": "socket: skipped, never opened",
    "other": "not a regular file: skipped",
    "missing": "file vanished before it was read",
    "dir": "a directory where a file was expected",
}


def read_regular(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a regular file, opened without following a final symlink and
    without blocking; raises ``UnsafeFile`` for anything else, ``OSError`` for I/O errors."""
    kind = classify(path)
    if kind != "file":
        raise UnsafeFile(REASONS.get(kind, REASONS["other"]))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == 40:  # ELOOP: it became a symlink after the check
            raise UnsafeFile(REASONS["symlink"]) from e
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(REASONS["other"])
        size = st.st_size if limit is None else min(st.st_size, limit)
        chunks, left = [], size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def walk_files(root: str | os.PathLike) -> Iterator[tuple[Path, str]]:
    """(path, kind) of every non-directory entry under ``root``, sorted, never entering
    a symlinked directory (a symlink is reported as "symlink", whatever it points at)."""
    stack = [Path(root)]
    out: list[tuple[Path, str]] = []
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            p = Path(e.path)
            kind = classify(p)
            if kind == "dir":
                stack.append(p)
            elif kind != "missing":
                out.append((p, kind))
    yield from sorted(out)
