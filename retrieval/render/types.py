"""Value types of the render sandbox: the limits a render runs under and its result.

``SandboxLimits`` is what a caller tunes (time, memory, file size, process count,
image size, SVG complexity); ``RenderResult`` is what every render returns, success
or not, so the MM-Zero loop can score a Coder's program without ever handling an
exception from it.  Both are plain frozen dataclasses; see ``retrieval.render`` for
the functions that use them.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

STATUSES = (
    "ok",              # out.png was written and is a valid image within the limits
    "syntax_error",    # the program (Python) or the document (SVG XML) does not parse
    "not_svg",         # the SVG path was given text that is not an SVG document
    "timeout",         # the wall-clock or CPU-time limit was reached
    "resource_limit",  # memory, file-size or process limit reached
    "crashed",         # the program raised or the process died for another reason
    "no_image",        # the program ended without a usable out.png
    "rejected",        # policy: refused before running (static) or blocked at run time
    "too_large",       # program text, declared SVG size or output image beyond the limits
)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one render.  Defaults suit small MM-Zero images on a shared CPU.

    ``max_processes`` is the number of threads (Linux counts them under
    RLIMIT_NPROC with processes) the program may start; it may start no process
    at all under the full boundary (seccomp).  ``wall_seconds`` bounds the
    program's run inside the sandbox; the parent adds a start-up margin on top.
    """

    wall_seconds: float = 5.0
    cpu_seconds: int = 3
    # The decoder's own CPU budget for out.png, apart from the program's: its cost is
    # bounded by max_pixels, not by the program, and a PNG within every limit must
    # decode on a slow or busy machine too (a 4096x4096 one takes ~0.7 s of CPU).
    decode_cpu_seconds: int = 10
    memory_mb: int = 512
    file_size_mb: int = 8
    max_processes: int = 32
    max_pixels: int = 4096 * 4096
    max_open_files: int = 64
    max_program_bytes: int = 256 * 1024
    max_svg_elements: int = 10_000
    max_svg_depth: int = 64
    stdout_tail_chars: int = 2000
    # Inside the sandbox's user namespace the program runs as this uid/gid (65534 = nobody).
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    # Size of each private tmpfs (work folder, /tmp, /dev/shm); they live in memory.
    tmpfs_mb: int = 32
    # "auto": the strongest boundary this machine allows (see retrieval.render.sandbox);
    # "rlimits": skip bubblewrap (for comparisons and tests of the fail-closed path).
    isolation: str = "auto"
    # The audit hook in the program's process: an early, readable refusal only (the
    # red-team tests run the corpus without it too, to show nothing depends on it).
    audit_hook: bool = True

    def __post_init__(self) -> None:
        positive = ("wall_seconds", "cpu_seconds", "decode_cpu_seconds", "memory_mb", "file_size_mb", "max_processes",
                    "max_pixels", "max_open_files", "max_program_bytes", "max_svg_elements",
                    "max_svg_depth", "tmpfs_mb")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}")
        if self.memory_mb < 64:
            raise ValueError(f"SandboxLimits.memory_mb must be at least 64 (an interpreter needs "
                             f"that much address space), got {self.memory_mb}")
        if self.max_open_files < 16:
            raise ValueError(f"SandboxLimits.max_open_files must be at least 16, got {self.max_open_files}")
        if self.isolation not in ("auto", "rlimits"):
            raise ValueError(f"SandboxLimits.isolation must be 'auto' or 'rlimits', got {self.isolation!r}")


@dataclass
class RenderResult:
    """Outcome of one render.  ``image`` is an RGB ``size`` x ``size`` image when
    ``ok``; otherwise ``None`` and ``status``/``reason`` say what went wrong.
    ``stdout_tail`` is the end of what the program printed (stdout and stderr
    together), useful as feedback to the model; ``seconds`` is the wall time of
    the whole render, sandbox set-up and clean-up included; ``isolation`` is the
    boundary it ran under (``retrieval.render.sandbox.isolation_level``), empty
    when nothing ran (refused by a static check)."""

    ok: bool
    image: Image.Image | None
    status: str
    reason: str
    seconds: float
    stdout_tail: str = ""
    isolation: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"RenderResult.status must be one of {STATUSES}, got {self.status!r}")
        if self.ok != (self.status == "ok"):
            raise ValueError(f"RenderResult.ok={self.ok} contradicts status={self.status!r}")
        if self.ok and self.image is None:
            raise ValueError("RenderResult with status 'ok' must carry an image")
