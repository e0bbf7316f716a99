"""Process sandbox for model-written programs: one throw-away sandbox per render.

This is the containment layer under ``render_svg``/``render_python`` in the MM-Zero
loop (the Coder writes a program, the sandbox runs it, the image goes to the
Solver).  ``run_in_sandbox(mode, payload, size, limits)`` starts the runner
(``_runner.py``) under bubblewrap (``retrieval.render.bwrap``: namespaces,
read-only mounts, private tmpfs, an unprivileged uid, seccomp), feeds it the
payload on stdin and returns a ``SandboxRun`` with the verdict and the
``size`` x ``size`` RGB bytes the sandbox decoded; nothing of the render is left
when it returns.

Isolation levels (``isolation_level()``; every ``RenderResult`` carries it):

* ``"bwrap+seccomp"``: the full boundary;
* ``"bwrap"``: the same without seccomp (an architecture ``_seccomp`` has no
  table for, or a kernel without seccomp filters);
* ``"rlimits+seccomp"`` / ``"rlimits-only"``: no bubblewrap or no user/mount
  namespaces here.  The sandbox fails closed: Python programs are refused
  (status ``rejected``, the reason names what is missing) and SVG, which the
  parent has already vetted and re-serialised (``svg_policy``), is rasterised in
  a child with rlimits (and seccomp where available) only.

The parent never forks itself for a render: ``subprocess.Popen`` without
``preexec_fn`` lets CPython start bubblewrap with vfork semantics, so the
trainer's threads and LanceDB's runtime are never duplicated.  Rlimits are set
by the runner on the program's process, the wall-clock bound is enforced twice
(by the supervisor inside, and here with a margin: the sandbox's process group
is SIGKILLed, bubblewrap's ``--die-with-parent`` and the pid namespace take the
rest), and a final sweep kills any process of the render's uid or carrying its
marker.  The parent decodes nothing the program wrote: only the RGB bytes of the
requested size.  Linux only.

    run = run_in_sandbox("svg", ("input.svg", data), 64, SandboxLimits())
    run.status, run.reason, run.rgb, run.isolation
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from retrieval.render import _seccomp
from retrieval.render._decode import decode_png_rgb, png_dimensions
from retrieval.render.bwrap import INSIDE_MPL_CACHE, INSIDE_RUNNER_DIR, INSIDE_WORK, Layout, bwrap_argv, find_bwrap, layout
from retrieval.render.types import STATUSES, SandboxLimits

RUNNER = Path(__file__).with_name("_runner.py")
TOKEN_VAR = "ZF_SANDBOX_TOKEN"
_MB = 1024 * 1024
_EXTRA_READ_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/zoneinfo",
                     "/etc/localtime", "/dev/null", "/dev/urandom", "/dev/zero")
_FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
               "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
_MEMORY_HINTS = ("MemoryError", "memory allocation of", "Cannot allocate memory", "std::bad_alloc",
                 "out of memory")
# The parent's own wall-clock bound: the supervisor's and the decoder's, plus start-up.
_PARENT_MARGIN_S = 15.0
# Fresh uids for renders as root: far above any real account, never reused within a process.
_UID_RANGE = (0x40000000, 0x7FFF0000)
LEVELS = ("bwrap+seccomp", "bwrap", "rlimits+seccomp", "rlimits-only")


@dataclass(frozen=True)
class SandboxHost:
    """What the sandbox found on this machine (probed once per process and settings)."""

    level: str                     # one of LEVELS
    reason: str                    # why the level is not stronger ("" for bwrap+seccomp)
    python: str
    sys_path: tuple[str, ...]
    read_roots: tuple[str, ...]    # the audit hook's read allowlist (an early refusal only)
    font_files: tuple[str, ...]
    bwrap: str | None              # the bubblewrap binary, when the level uses it
    seccomp: bool
    as_root: bool                  # renders drop from root to a fresh uid of their own
    layout: Layout | None = None

    @property
    def python_allowed(self) -> bool:
        return self.bwrap is not None


@dataclass
class SandboxRun:
    """Raw outcome of one sandbox run.

    ``status`` is None on success, and ``rgb`` then holds ``size*size*3`` bytes.
    ``blocked`` lists the actions the audit hook refused."""

    status: str | None
    reason: str
    returncode: int | None
    stdout_tail: str
    rgb: bytes | None
    seconds: float
    isolation: str
    blocked: list[str] = field(default_factory=list)


def _require_linux() -> None:
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        raise RuntimeError(f"the render sandbox needs Linux (namespaces, rlimits, /proc); this is {sys.platform}")


def _font_files() -> tuple[str, ...]:
    spec = find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return ()
    ttf = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    return tuple(str(ttf / f) for f in _FONT_FILES if (ttf / f).is_file())


def _read_roots(lay: Layout, inside_runner: str) -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    roots = [os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    roots += [os.path.realpath(p) for p in sys.path if p.endswith(".zip")]
    roots += list(_EXTRA_READ_ROOTS) + [inside_runner]
    return tuple(dict.fromkeys(roots))


def _probe(host: SandboxHost) -> str | None:
    """None when a trivial render starts and ends cleanly under ``host``; else why not."""
    try:
        run = _launch(host, "probe", None, 8, SandboxLimits(wall_seconds=60, cpu_seconds=30))
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"
    if run.status is None:
        return None
    return f"{run.status}: {run.reason} {run.stdout_tail[-300:].strip()}".strip()


@functools.lru_cache(maxsize=8)
def _host(sandbox_uid: int, sandbox_gid: int, force: str) -> SandboxHost:
    """Probe once which boundary works here, strongest first, and fall back one layer at a time."""
    _require_linux()
    lay = layout()
    fonts = _font_files()
    as_root = os.geteuid() == 0
    has_seccomp = _seccomp.supported()
    bwrap = find_bwrap()
    failures: list[str] = []
    tries: list[tuple[str, str | None, bool]] = []
    if force not in ("auto", "rlimits"):
        raise ValueError(f"SandboxLimits.isolation must be 'auto' or 'rlimits', got {force!r}")
    if force == "rlimits":
        failures.append("bubblewrap not used (SandboxLimits.isolation='rlimits')")
    elif bwrap is None:
        failures.append("bubblewrap (bwrap) is not installed: scripts/system_deps.sh installs it")
    else:
        if has_seccomp:
            tries.append(("bwrap+seccomp", bwrap, True))
        else:
            failures.append(f"no seccomp syscall table for {_seccomp.machine()}")
        tries.append(("bwrap", bwrap, False))
    if has_seccomp:
        tries.append(("rlimits+seccomp", None, True))
    tries.append(("rlimits-only", None, False))
    for level, bw, sec in tries:
        inside = INSIDE_RUNNER_DIR if bw else str(RUNNER.parent)
        host = SandboxHost(level, "; ".join(failures), lay.python, lay.sys_path, _read_roots(lay, inside),
                           fonts, bw, sec, as_root and bw is not None, lay)
        why = _probe(host)
        if why is None:
            return host
        failures.append(f"{level} failed: {why}")
    raise RuntimeError(f"the render sandbox cannot start {lay.python}; tried: " + "; ".join(failures))


def sandbox_host(limits: SandboxLimits | None = None) -> SandboxHost:
    """The boundary a render with these limits gets on this machine (probed once)."""
    limits = limits or SandboxLimits()
    return _host(limits.sandbox_uid, limits.sandbox_gid, limits.isolation)


def isolation_level(limits: SandboxLimits | None = None) -> str:
    """This machine's isolation level for renders: "bwrap+seccomp", "bwrap",
    "rlimits+seccomp" or "rlimits-only" (see the module docstring).  For task-set
    metadata: a set rendered at a weaker level says so."""
    return sandbox_host(limits).level


_MPL_LOCK = threading.Lock()
_MPL_CACHE: dict[str, Path | None] = {}


def _mpl_font_cache(python: str, site: tuple[str, ...]) -> Path | None:
    """A matplotlib font list built once per process by a trusted child (no model
    text), copied into each sandbox so matplotlib neither rescans the system fonts
    nor calls fc-list."""
    with _MPL_LOCK:
        if python in _MPL_CACHE:
            return _MPL_CACHE[python]
        found: Path | None = None
        if find_spec("matplotlib") is not None:
            d = Path(tempfile.mkdtemp(prefix="zf-render-mplcache-"))
            atexit.register(shutil.rmtree, d, True)
            code = f"import sys; sys.path += {list(site)!r}; import matplotlib.font_manager"
            env = {"PATH": "/usr/bin:/bin", "HOME": str(d), "MPLCONFIGDIR": str(d), "MPLBACKEND": "Agg"}
            subprocess.run([python, "-I", "-S", "-B", "-c", code], env=env, cwd=d, timeout=300,
                           stdin=subprocess.DEVNULL, capture_output=True, check=False)
            found = next(iter(sorted(d.glob("fontlist-*.json"))), None)
            if found is not None:
                os.chmod(d, 0o755)  # a render's own uid reads it (root renders drop to one)
                os.chmod(found, 0o644)
        _MPL_CACHE[python] = found
        return found


@functools.lru_cache(maxsize=1)
def _baseline_filter() -> bytes:
    return _seccomp.baseline_filter()


def _wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child to exit; False on timeout (a pidfd wakes us at once)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def sweep_marked(token: str, uid: int | None = None) -> int:
    """SIGKILL every process whose environment holds this run's marker, or (as root)
    whose real uid is the render's own; returns how many were found."""
    needle = f"{TOKEN_VAR}={token}".encode()
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            hit = uid is not None and os.stat(f"/proc/{name}").st_uid == uid
            if not hit:
                with open(f"/proc/{name}/environ", "rb") as f:
                    hit = needle in f.read()
            if hit:
                os.kill(int(name), signal.SIGKILL)
                killed += 1
        except OSError:
            continue
    return killed


def _read_tail(path: Path, chars: int) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 4 * chars))
        return f.read().decode("utf-8", "replace")[-chars:]


def _read_report(path: Path) -> tuple[dict | None, list[str]]:
    final, blocked = None, []
    with open(path, "rb") as f:
        for line in f.read(2 * _MB).splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if obj.get("event") == "blocked":
                blocked.append(str(obj.get("what", "?")))
            elif "status" in obj:
                final = obj
    return final, blocked


def _classify(timed_out: bool, rc: int, final: dict | None, limits: SandboxLimits,
              tail: str) -> tuple[str | None, str]:
    if timed_out:
        return "timeout", (f"wall-clock limit of {limits.wall_seconds:g} s (+{_PARENT_MARGIN_S:g} s "
                           "start-up margin) reached; the sandbox was killed")
    if final is None:
        if any(h in tail for h in _MEMORY_HINTS):
            return "resource_limit", f"the sandbox ran out of memory ({limits.memory_mb} MB) before reporting"
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        return "crashed", f"sandbox exited with status {rc} without a report: {last[:300]}"
    status, reason = str(final.get("status")), str(final.get("reason", ""))
    if status not in STATUSES:
        return "crashed", f"sandbox reported an unknown status {status!r}: {reason}"
    if status == "ok":
        return None, ""
    if status == "crashed" and reason.startswith("killed by") and any(h in tail for h in _MEMORY_HINTS):
        return "resource_limit", f"{reason} after running out of memory ({limits.memory_mb} MB)"
    return status, reason


def _image_bytes(path: Path, final: dict, size: int) -> tuple[bytes | None, str]:
    """The render's size x size RGB bytes.  The sandbox sends raw RGB (Python mode: it
    decoded the program's PNG itself) or, for SVG, resvg's PNG of exactly size x size,
    whose header is checked before the parent decodes those pixels and no more."""
    data = path.read_bytes()
    if final.get("image_format") == "png":
        dims = png_dimensions(data)
        if dims is None or not (0 < dims[0] <= size and 0 < dims[1] <= size):
            return None, "the sandbox returned a PNG larger than the requested size"
        image, status, reason = decode_png_rgb(data, size, size * size)
        return (image.tobytes(), "") if image is not None else (None, reason)
    if len(data) != size * size * 3:
        return None, "the sandbox returned no image of the requested size"
    return data, ""


def _child_env(token: str, work: str, tmp: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": tmp, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "MPLCONFIGDIR": f"{work}/.mpl", "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", TOKEN_VAR: token}


def _rmtree(path: Path) -> None:
    def retry(func, p, _exc):
        try:  # the child may have left directories without permissions
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def _launch(host: SandboxHost, mode: str, payload: tuple[str, bytes] | None, size: int,
            limits: SandboxLimits) -> SandboxRun:
    t0 = time.perf_counter()
    private = Path(tempfile.mkdtemp(prefix="zf-render-log-"))  # parent-only (0700)
    work = None if host.bwrap else Path(tempfile.mkdtemp(prefix="zf-render-"))
    token = secrets.token_hex(12)
    uid = random.SystemRandom().randrange(*_UID_RANGE) if host.as_root else None
    proc: subprocess.Popen | None = None
    files = []
    try:
        (private / "payload").write_bytes(payload[1] if payload else b"")
        mpl = _mpl_font_cache(host.python, host.sys_path) if mode == "python" else None
        opened = {name: open(private / name, flags) for name, flags in
                  (("payload", "rb"), ("output.log", "wb"), ("report.jsonl", "ab"), ("image.rgb", "ab"))}
        files = list(opened.values())
        seccomp_fd = None
        if host.bwrap and host.seccomp:
            (private / "seccomp.bpf").write_bytes(_baseline_filter())
            files.append(open(private / "seccomp.bpf", "rb"))
            seccomp_fd = files[-1].fileno()
        inside_work = INSIDE_WORK if host.bwrap else str(work)
        cfg = {"mode": mode, "work": inside_work, "size": size, "sys_path": list(host.sys_path),
               "read_roots": list(host.read_roots) + [inside_work], "font_files": list(host.font_files),
               "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
               "cpu_seconds": limits.cpu_seconds, "wall_seconds": limits.wall_seconds,
               "decode_cpu_seconds": limits.decode_cpu_seconds,
               "max_open_files": limits.max_open_files, "max_processes": limits.max_processes,
               "max_pixels": limits.max_pixels, "max_payload_bytes": max(limits.max_program_bytes, 1) * 4,
               "payload_name": payload[0] if payload else "", "seccomp": host.seccomp,
               "drop_to": uid, "userns": host.as_root, "sandbox_uid": limits.sandbox_uid, "sandbox_gid": limits.sandbox_gid,
               "report_fd": opened["report.jsonl"].fileno(), "image_fd": opened["image.rgb"].fileno(),
               "mpl_cache": None, "audit_hook": limits.audit_hook, "mpl_cache_name": mpl.name if mpl else ""}
        if mpl is not None:
            cfg["mpl_cache"] = INSIDE_MPL_CACHE if host.bwrap else str(mpl)
        if host.bwrap:
            argv = bwrap_argv(host.bwrap, host.layout, as_root=host.as_root, sandbox_uid=limits.sandbox_uid,
                              sandbox_gid=limits.sandbox_gid, tmpfs_bytes=limits.tmpfs_mb * _MB,
                              seccomp_fd=seccomp_fd, mpl_cache=str(mpl) if mpl else None,
                              runner_cfg=json.dumps(cfg))
            env, cwd = _child_env(token, INSIDE_WORK, "/tmp"), "/"
        else:
            argv = [host.python, "-I", "-S", "-B", str(RUNNER), json.dumps(cfg)]
            env, cwd = _child_env(token, str(work), str(work)), str(work)
        pass_fds = tuple(f.fileno() for f in files if f is not opened["payload"] and f is not opened["output.log"])
        # No preexec_fn: CPython then starts the child with vfork semantics, so the
        # parent (a trainer holding threads and LanceDB's runtime) is never forked.
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=opened["payload"], stdout=opened["output.log"],
                                stderr=opened["output.log"], pass_fds=pass_fds, close_fds=True,
                                start_new_session=True)
        for f in files:
            f.close()
        timed_out = not _wait_exit(proc, limits.wall_seconds + limits.decode_cpu_seconds + _PARENT_MARGIN_S)
        if timed_out:
            _kill_group(proc.pid)
        rc = proc.wait()
        _kill_group(proc.pid)       # anything left in its process group
        sweep_marked(token, uid)    # and anything that left the group
        tail = _read_tail(private / "output.log", limits.stdout_tail_chars)
        final, blocked = _read_report(private / "report.jsonl")
        status, reason = _classify(timed_out, rc, final, limits, tail)
        rgb = None
        if status is None and mode != "probe":
            rgb, why = _image_bytes(private / "image.rgb", final, size)
            if rgb is None:
                status, reason = "no_image", why
        return SandboxRun(status, reason, rc, tail, rgb, time.perf_counter() - t0, host.level, blocked)
    finally:
        for f in files:
            f.close()
        if proc is not None and proc.poll() is None:  # interrupted while waiting
            _kill_group(proc.pid)
            proc.wait()
            sweep_marked(token, uid)
        if work is not None:
            _rmtree(work)
        _rmtree(private)


def run_in_sandbox(mode: str, payload: tuple[str, bytes], size: int,
                   limits: SandboxLimits) -> SandboxRun:
    """Run ``payload`` (file name in the work folder, bytes) in a fresh sandbox.

    ``mode`` is "python" (payload ``program.py``) or "svg" (payload ``input.svg``,
    already vetted by ``svg_policy``).  Raises only for misuse or a machine where
    no sandbox can start; every failure of the program is a ``SandboxRun``.  On a
    host without the OS boundary a Python program is refused without running."""
    if mode not in ("python", "svg"):
        raise ValueError(f"run_in_sandbox mode must be 'python' or 'svg', got {mode!r}")
    host = sandbox_host(limits)
    if mode == "python" and not host.python_allowed:
        return SandboxRun("rejected", f"Python programs need the OS-level sandbox, which this machine lacks "
                                      f"(isolation level {host.level}: {host.reason})",
                          None, "", None, 0.0, host.level)
    return _launch(host, mode, payload, size, limits)
