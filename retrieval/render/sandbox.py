"""Process sandbox for model-written programs: one throw-away child per render.

This is the containment layer under ``render_svg``/``render_python`` in the MM-Zero
loop (the Coder writes a program, the sandbox runs it, the image goes to the
Solver).  ``run_in_sandbox(mode, payload, size, limits)`` writes the payload into a
fresh ``tempfile.mkdtemp()`` directory and runs ``_runner.py`` there as a separate
interpreter (``python -I -S -B``), then returns a ``SandboxRun`` with the runner's
verdict and the raw bytes of ``out.png``; the temp dir is gone when it returns.

What contains the child, primary layers first:

* a separate process started by ``subprocess.Popen`` with ``start_new_session=True``
  (its own process group, killed whole on timeout), stdin closed, stdout/stderr to
  a file in a parent-only directory (bounded by RLIMIT_FSIZE, read back as a tail);
* rlimits set in ``preexec_fn`` before the interpreter starts: RLIMIT_CPU (soft,
  then SIGKILL one second later), RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE,
  RLIMIT_NPROC (current task count of the uid + ``max_processes``), RLIMIT_CORE=0;
* as root, the child drops to ``limits.sandbox_uid`` (nobody) so that file
  permissions protect the project and RLIMIT_NPROC is enforced (the kernel does
  not enforce it for root); when that uid cannot run the interpreter it stays root;
* an empty network namespace (``unshare(CLONE_NEWNET)``) where the kernel allows
  it (root, no extra privileges needed); without it the runner's audit hook and
  socket stubs still refuse network use;
* the temp dir as cwd, HOME and TMPDIR; an environment of PATH, locale,
  matplotlib and thread-count variables and a per-run marker only, so no parent
  variable (API keys, tokens) reaches the child;
* after the run: SIGKILL to the process group, then to any process carrying this
  run's marker (``ZF_SANDBOX_TOKEN``) in its environment, wherever it moved.

The parent never executes, evaluates or compiles model text; it only writes it to
a file.  ``preexec_fn`` is not safe in a multi-threaded parent (CPython's warning):
render from one thread per process, or from a process pool.  Linux only.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from retrieval.render.types import STATUSES, SandboxLimits

RUNNER = Path(__file__).with_name("_runner.py")
TOKEN_VAR = "ZF_SANDBOX_TOKEN"
CLONE_NEWNET = 0x40000000
EXIT_FAILED = 3  # the runner's "classified failure" exit code (see _runner.py)
_MB = 1024 * 1024
# Directories the child may read besides the interpreter's own library trees.
_EXTRA_READ_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/zoneinfo",
                     "/etc/localtime", "/dev/null", "/dev/urandom", "/dev/zero")
_FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
               "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
_MEMORY_HINTS = ("MemoryError", "memory allocation of", "Cannot allocate memory", "std::bad_alloc",
                 "out of memory")


@dataclass(frozen=True)
class SandboxHost:
    """What the sandbox found on this machine (cached once per process and settings)."""

    python: str
    sys_path: tuple[str, ...]
    read_roots: tuple[str, ...]
    font_files: tuple[str, ...]
    run_as: tuple[int, int] | None      # (uid, gid) the child switches to, None = stays as is
    network_namespace: bool


@dataclass
class SandboxRun:
    """Raw outcome of one child run, before the image is decoded.

    ``status`` is None when the runner reported success: the caller must still
    validate ``png``.  ``blocked`` lists the actions the audit hook refused."""

    status: str | None
    reason: str
    returncode: int | None
    stdout_tail: str
    png: bytes | None
    seconds: float
    blocked: list[str] = field(default_factory=list)


def _require_linux() -> None:
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        raise RuntimeError(f"the render sandbox needs Linux (rlimits, /proc); this is {sys.platform}")


def _tasks_of_uid(uid: int) -> int:
    """Processes plus threads owned by ``uid`` now: what RLIMIT_NPROC counts."""
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue  # exited meanwhile
    return n


def _libc_unshare():
    import ctypes

    fn = ctypes.CDLL(None, use_errno=True).unshare
    fn.argtypes = [ctypes.c_int]
    return fn


def _make_preexec(limits: SandboxLimits, nproc: int, run_as: tuple[int, int] | None, netns: bool):
    """The function run in the forked child before exec: namespaces need root, so
    they come first, then the limits, then the uid switch (after which the hard
    limits can no longer be raised)."""
    unshare = _libc_unshare() if netns else None
    mem = limits.memory_mb * _MB
    fsize = limits.file_size_mb * _MB
    cpu = int(limits.cpu_seconds)
    settings = (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files),
        (resource.RLIMIT_NPROC, nproc, nproc),
    )

    def preexec() -> None:
        if unshare is not None and unshare(CLONE_NEWNET) != 0:
            raise OSError("unshare(CLONE_NEWNET) failed")
        for which, soft, hard in settings:
            resource.setrlimit(which, (soft, hard))
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as[1])
            os.setuid(run_as[0])

    return preexec


def _font_files() -> tuple[str, ...]:
    spec = find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return ()
    ttf = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    return tuple(str(ttf / f) for f in _FONT_FILES if (ttf / f).is_file())


def _base_host() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    paths = sysconfig.get_paths()
    site = tuple(dict.fromkeys(os.path.realpath(paths[k]) for k in ("purelib", "platlib")))
    roots = [os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    roots += [os.path.realpath(p) for p in sys.path if p.endswith(".zip")]
    roots += list(_EXTRA_READ_ROOTS)
    roots.append(str(RUNNER.resolve()))  # the runner's own source, for its tracebacks
    return sys.executable, site, tuple(dict.fromkeys(roots))


@functools.lru_cache(maxsize=8)
def _host(drop: bool, uid: int, gid: int, netns: bool) -> SandboxHost:
    """Probe once which layers work here: run the runner in "probe" mode with the
    strongest settings first and fall back one layer at a time."""
    _require_linux()
    python, site, roots = _base_host()
    fonts = _font_files()
    root = os.geteuid() == 0
    tries = []
    for want_uid in ((True, False) if (drop and root) else (False,)):
        for want_ns in ((True, False) if (netns and root) else (False,)):
            tries.append(((uid, gid) if want_uid else None, want_ns))
    failures = []
    for run_as, ns in tries:
        host = SandboxHost(python, site, roots, fonts, run_as, ns)
        try:
            run = _launch(host, "probe", None, 8, SandboxLimits(wall_seconds=60, cpu_seconds=30))
        except (OSError, subprocess.SubprocessError) as e:
            # e.g. the interpreter lives under a directory the sandbox uid cannot enter
            failures.append(f"run_as={run_as} netns={ns}: {type(e).__name__}: {e}")
            continue
        if run.status is None and run.returncode == 0:
            return host
        failures.append(f"run_as={run_as} netns={ns}: exited {run.returncode}: {run.reason} "
                        f"{run.stdout_tail[-300:]}")
    raise RuntimeError(f"the render sandbox cannot start {python}; tried: " + "; ".join(failures))


def sandbox_host(limits: SandboxLimits | None = None) -> SandboxHost:
    """The layers a render with these limits gets on this machine (probed once)."""
    limits = limits or SandboxLimits()
    return _host(limits.drop_privileges, limits.sandbox_uid, limits.sandbox_gid,
                 limits.network_namespace)


_MPL_LOCK = threading.Lock()
_MPL_CACHE: dict[str, Path | None] = {}


def _mpl_font_cache(python: str, site: tuple[str, ...]) -> Path | None:
    """A matplotlib font list built once per process by a trusted child (no model
    text), copied into each sandbox so matplotlib neither rescans the system fonts
    nor calls fc-list (which the sandbox would refuse)."""
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
        _MPL_CACHE[python] = found
        return found


def _wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child to exit; False on timeout.  A pidfd wakes us the moment
    it exits (``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which
    would dominate a 40 ms render)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # kernel < 5.3 or not Linux
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


def sweep_marked(token: str) -> int:
    """SIGKILL every process whose environment holds this run's marker; returns
    how many were found.  Catches children that left the process group."""
    needle = f"{TOKEN_VAR}={token}".encode()
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle not in f.read():
                    continue
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
        for line in f.read(1 * _MB).splitlines():
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


def _read_png(work: Path, limits: SandboxLimits) -> tuple[bytes | None, str]:
    """out.png as bytes, opened without following links: the child could have
    made it a symlink or hard link to a file it may not read itself."""
    try:
        fd = os.open(work / "out.png", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, "the program did not write out.png"
    except OSError as e:
        return None, f"out.png could not be opened safely ({e.strerror}): expected a regular file"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None, "out.png is not a regular file with a single link"
        if st.st_size > limits.file_size_mb * _MB:
            return None, f"out.png is {st.st_size} bytes, over the {limits.file_size_mb} MB limit"
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, _MB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), ""
    finally:
        os.close(fd)


def _classify(timed_out: bool, rc: int, final: dict | None, blocked: list[str],
              limits: SandboxLimits, tail: str) -> tuple[str | None, str]:
    if timed_out:
        return "timeout", f"wall-clock limit of {limits.wall_seconds:g} s reached; process group killed"
    if rc < 0:
        sig = -rc
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGXCPU:
            return "timeout", f"CPU-time limit of {limits.cpu_seconds} s reached (SIGXCPU)"
        if sig == signal.SIGXFSZ:
            return "resource_limit", f"file size limit of {limits.file_size_mb} MB reached (SIGXFSZ)"
        if sig == signal.SIGKILL:
            return "resource_limit", ("killed by SIGKILL: CPU hard limit "
                                      f"({limits.cpu_seconds + 1} s) or the out-of-memory killer")
        if any(h in tail for h in _MEMORY_HINTS):
            return "resource_limit", f"killed by {name} after running out of memory ({limits.memory_mb} MB)"
        return "crashed", f"killed by {name}"
    if blocked:
        return "rejected", f"blocked at run time: {blocked[0]}"
    if final is not None:
        status = str(final.get("status"))
        reason = str(final.get("reason", ""))
        if status == "ok":
            if rc != 0:
                return "crashed", f"runner reported success but exited with status {rc}"
            return None, ""
        if status not in STATUSES or rc != EXIT_FAILED:
            return "crashed", f"sandbox exited with status {rc} (last report {status!r}: {reason})"
        return status, reason
    if rc == 0:
        return None, ""  # the program ended the interpreter itself; the image decides
    if any(h in tail for h in _MEMORY_HINTS):
        return "resource_limit", f"the interpreter ran out of memory ({limits.memory_mb} MB) before reporting"
    last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
    return "crashed", f"sandbox exited with status {rc} without a report: {last[:300]}"


def _child_env(work: Path, token: str) -> dict[str, str]:
    w = str(work)
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": w, "TMPDIR": w, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "MPLCONFIGDIR": f"{w}/.mpl", "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", TOKEN_VAR: token}


def _rmtree(path: Path) -> None:
    def retry(func, p, _exc):
        # The child may have left directories without permissions.
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def _launch(host: SandboxHost, mode: str, payload: tuple[str, bytes] | None, size: int,
            limits: SandboxLimits) -> SandboxRun:
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="zf-render-"))
    logdir = Path(tempfile.mkdtemp(prefix="zf-render-log-"))  # parent-only (0700)
    token = secrets.token_hex(12)
    proc: subprocess.Popen | None = None
    try:
        if payload is not None:
            (work / payload[0]).write_bytes(payload[1])
        if mode == "python":
            cache = _mpl_font_cache(host.python, host.sys_path)
            (work / ".mpl").mkdir()
            if cache is not None:
                shutil.copyfile(cache, work / ".mpl" / cache.name)
        if host.run_as is not None:
            for p in [work, *work.rglob("*")]:
                os.chown(p, *host.run_as)
        nproc = _tasks_of_uid(host.run_as[0] if host.run_as else os.getuid()) + limits.max_processes
        cfg = {"mode": mode, "work": str(work), "size": size, "sys_path": list(host.sys_path),
               "read_roots": list(host.read_roots), "font_files": list(host.font_files),
               "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb}
        with open(logdir / "output.log", "wb") as log, open(logdir / "report.jsonl", "ab") as rep:
            cfg["report_fd"] = rep.fileno()
            argv = [host.python, "-I", "-S", "-B", str(RUNNER), json.dumps(cfg)]
            proc = subprocess.Popen(
                argv, cwd=work, env=_child_env(work, token), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, pass_fds=(rep.fileno(),), close_fds=True,
                start_new_session=True,
                preexec_fn=_make_preexec(limits, nproc, host.run_as, host.network_namespace))
            timed_out = not _wait_exit(proc, limits.wall_seconds)
            if timed_out:
                _kill_group(proc.pid)
            rc = proc.wait()
            _kill_group(proc.pid)  # anything the program left behind in its group
            sweep_marked(token)     # and anything that left the group
        tail = _read_tail(logdir / "output.log", limits.stdout_tail_chars)
        final, blocked = _read_report(logdir / "report.jsonl")
        status, reason = _classify(timed_out, rc, final, blocked, limits, tail)
        png = None
        if status is None and mode != "probe":
            png, why = _read_png(work, limits)
            if png is None:
                status, reason = "no_image", why
        return SandboxRun(status, reason, rc, tail, png, time.perf_counter() - t0, blocked)
    finally:
        if proc is not None and proc.poll() is None:  # interrupted while waiting
            _kill_group(proc.pid)
            proc.wait()
            sweep_marked(token)
        _rmtree(work)
        _rmtree(logdir)


def run_in_sandbox(mode: str, payload: tuple[str, bytes], size: int,
                   limits: SandboxLimits) -> SandboxRun:
    """Run ``payload`` (file name in the temp dir, bytes) in a fresh sandbox.

    ``mode`` is "python" (payload ``program.py``) or "svg" (payload ``input.svg``,
    already vetted by ``svg_policy``).  Raises only for misuse or a machine where
    no sandbox can start; every failure of the program is a ``SandboxRun``."""
    if mode not in ("python", "svg"):
        raise ValueError(f"run_in_sandbox mode must be 'python' or 'svg', got {mode!r}")
    return _launch(sandbox_host(limits), mode, payload, size, limits)
