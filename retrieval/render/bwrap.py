"""The OS-level boundary of the render sandbox: the bubblewrap command line for one render.

``retrieval.render.sandbox`` asks ``bwrap_argv(...)`` for the command that
starts the runner (``_runner.py``) inside a bubblewrap sandbox, and
``layout()`` for what the sandbox shows.  What a render gets:

* new mount, pid, ipc, uts, network (empty: no interface but a down loopback)
  and, where possible, cgroup namespaces; ``--die-with-parent`` and
  ``--new-session``; no inherited fds but the report, image and seccomp ones;
* a root that is an empty read-only tmpfs with, read-only: ``/usr`` (the C
  libraries and fonts; ``/bin``, ``/lib*`` as the host has them),
  ``/etc/ld.so.cache``, ``/etc/localtime`` and ``/etc/fonts`` (no passwd, no
  shadow), the interpreter's prefix and the virtualenv, and the four runner
  files under ``/opt/zeroforge-render``; nothing else of the host (no project
  checkout, no home, no ``/tmp``);
* private, size-bounded tmpfs mounts for the work folder (``/sandbox``),
  ``/tmp`` and ``/dev/shm``, gone with the sandbox; a new ``/proc`` showing the
  sandbox's processes only; a minimal ``/dev``;
* an unprivileged uid: as root, bubblewrap runs without a user namespace
  (one mapped onto root would keep root's file ownership and lift
  RLIMIT_NPROC), keeps only CAP_SETUID/CAP_SETGID for the runner's first step,
  which drops to a fresh uid picked for this render, and the program then gets
  its own user namespace in which it is ``sandbox_uid``; as another user,
  bubblewrap makes the user namespace itself (``--unshare-user``);
* the baseline seccomp filter of ``_seccomp.py`` via ``--seccomp FD``.

Nothing here starts a process; the probe that checks the boundary works on this
machine is ``sandbox._host``.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER_FILES = ("_runner.py", "_seccomp.py", "_hook.py", "_decode.py")
INSIDE_RUNNER_DIR = "/opt/zeroforge-render"
INSIDE_WORK = "/sandbox"
INSIDE_MPL_CACHE = f"{INSIDE_RUNNER_DIR}/fontlist.json"
# Read-only system paths every interpreter needs; symlinks (merged /usr) are recreated as symlinks.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")


def find_bwrap() -> str | None:
    """bubblewrap on PATH or in the usual places (a root PATH may lack /usr/bin in odd set-ups)."""
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap")
                                          if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class Layout:
    """Host paths bound read-only into every sandbox, and the interpreter to run there."""

    python: str
    python_roots: tuple[str, ...]   # directories holding the interpreter, stdlib and site-packages
    sys_path: tuple[str, ...]       # site-packages to put on the runner's sys.path


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def layout() -> Layout:
    paths = sysconfig.get_paths()
    site = tuple(dict.fromkeys(os.path.realpath(paths[k]) for k in ("purelib", "platlib")))
    roots: list[str] = []
    # sys.prefix is the virtualenv (its pyvenv.cfg and bin/python); base_prefix the real interpreter.
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
                  *(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))]
    for c in candidates:
        real = os.path.realpath(c)
        for p in dict.fromkeys((c, real)):
            if os.path.isdir(p) and not _covered(p, roots + list(_SYSTEM_DIRS)):
                roots.append(p)
    return Layout(sys.executable, tuple(roots), site)


def _system_binds() -> list[str]:
    args: list[str] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in _ETC_FILES:
        args += ["--ro-bind-try", f, f]
    return args


def bwrap_argv(bwrap: str, lay: Layout, *, as_root: bool, sandbox_uid: int, sandbox_gid: int,
               tmpfs_bytes: int, seccomp_fd: int | None, mpl_cache: str | None,
               runner_cfg: str) -> list[str]:
    """The full command: bubblewrap, its options, then the runner with its JSON config."""
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "zf-render", "--die-with-parent", "--new-session"]
    if as_root:
        # No user namespace here (see the module docstring); the runner drops to its own uid.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--uid", str(sandbox_uid), "--gid", str(sandbox_gid)]
    argv += _system_binds()
    # The private tmpfs first: bound later, an interpreter or checkout under /tmp stays visible on top of it.
    for dest in ("/tmp", "/dev/shm", INSIDE_WORK):
        argv += ["--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", dest]
    # Parents of the bound trees as plain 0755 directories: bubblewrap would copy a
    # 0700 home's mode, and the sandbox's uid could not reach its own interpreter.
    parents = dict.fromkeys(str(p) for root in lay.python_roots for p in reversed(Path(root).parents)
                            if str(p) != "/")
    for d in [*parents, INSIDE_RUNNER_DIR]:
        argv += ["--perms", "0755", "--dir", d]
    for root in lay.python_roots:
        argv += ["--ro-bind", root, root]
    for name in RUNNER_FILES:
        argv += ["--ro-bind", str(HERE / name), f"{INSIDE_RUNNER_DIR}/{name}"]
    if mpl_cache:
        argv += ["--ro-bind", mpl_cache, INSIDE_MPL_CACHE]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--remount-ro", "/", "--chdir", INSIDE_WORK]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += ["--", lay.python, "-I", "-S", "-B", f"{INSIDE_RUNNER_DIR}/_runner.py", runner_cfg]
    return argv
