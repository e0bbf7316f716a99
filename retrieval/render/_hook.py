"""Audit hook of the render sandbox: an early, readable refusal inside the program's process.

``_runner.py`` (the sandbox's supervisor) loads this file by path in the child
that runs a model's Python program, just before the program: ``disarm_modules``
pre-imports a few modules and replaces their process and socket entry points
with refusals, and ``make_hook`` builds a ``sys.addaudithook`` hook that refuses
process creation, sockets, ctypes, rlimit changes, writes outside the work
folder and reads outside an allowlist, reporting each refusal to the supervisor.

This is NOT the security boundary: CPython's audit hooks can be bypassed (C
extensions, private primitives, memory corruption).  Containment comes from the
OS (bubblewrap namespaces and mounts, an unprivileged uid, seccomp, rlimits; see
``retrieval.render.bwrap``).  The hook only turns the common cases into a clear
"blocked at run time: ..." reason instead of a bare EPERM, and any refusal it
reports makes the render's status ``rejected``.  Standard library only.
"""

import os
import sys

# Events refused whatever their arguments.
_BLOCKED_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn",
    "os.posix_spawnp", "os.killpg", "os.symlink", "os.link", "os.mkfifo", "os.mknod",
    "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags",
    "resource.setrlimit", "resource.prlimit",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "urllib.Request", "syslog.openlog", "webbrowser.open", "sys._current_frames",
    "sqlite3.connect", "sqlite3.connect/handle", "sqlite3.enable_load_extension",
    # Hand-made code objects can carry bytecode that corrupts memory (and the hook).
    "code.__new__",
})
# Families of events refused: the network clients, exec*, spawn*, ctypes.
_BLOCKED_PREFIXES = (
    "socket.", "ctypes.", "os.exec", "os.spawn", "ftplib.", "http.client.", "smtplib.",
    "poplib.", "imaplib.", "nntplib.", "telnetlib.",
)
# Extension modules pre-imported and disarmed below: loading a fresh copy would
# bring back the original entry points, so a second import is refused.
_NO_RELOAD = frozenset({"_posixsubprocess", "_ctypes", "_socket"})
# CPython's test modules expose raw memory access; never needed to draw.  The SVG
# rasterizer is for SVG mode only: called from Python it would skip the SVG policy.
_NO_IMPORT_PREFIXES = ("_test", "_xx", "_ctypes_test", "resvg_py")
# Events whose path arguments must lie inside the temp dir: (index of each path).
_WRITE_PATH_ARGS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.truncate": (0,),
    "os.chdir": (0,), "shutil.copyfile": (1,), "shutil.copymode": (1,),
    "shutil.copystat": (1,), "shutil.copytree": (1,), "shutil.rmtree": (0,),
    "shutil.move": (0, 1), "shutil.chown": (0,), "shutil.make_archive": (0,),
    "shutil.unpack_archive": (1,), "tempfile.mkstemp": (0,), "tempfile.mkdtemp": (0,),
}
_READ_PATH_ARGS = {
    "os.listdir": (0,), "os.scandir": (0,), "shutil.copyfile": (0,), "shutil.copytree": (0,),
    "shutil.unpack_archive": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Raised inside the child when the audit hook refuses an action."""


# Frequent events that never need a check: answered first, keeping the hook cheap.
_IGNORED_EVENTS = frozenset({
    "exec", "compile", "sys._getframe", "object.__getattr__", "object.__delattr__",
    "builtins.id", "function.__new__", "sys.settrace", "sys.setprofile", "array.__new__",
})


def make_hook(work, read_roots, report):
    """Build the audit hook.  Every helper it needs is bound as a default argument
    (immutable once the function exists; rebinding the hook's ``__defaults__`` is
    itself an audited event we refuse), so a program cannot patch ``os.path`` or
    builtins to fool it.  Paths are normalised as strings: symlink and hard-link
    creation are refused, so a path inside the temp dir cannot lead outside it."""

    def refuse(what, _report=report, _Violation=SandboxViolation):
        _report({"event": "blocked", "what": what[:300]})
        raise _Violation(f"zeroforge sandbox: {what} is not allowed")

    def resolve(path, dir_fd=None, *, _isinstance=isinstance, _int=int, _str=str, _bytes=bytes,
                _readlink=os.readlink, _fsdecode=os.fsdecode, _getcwd=os.getcwd):
        """Absolute normalised path, or None when it cannot be known."""
        if _isinstance(path, _int):
            try:
                return _readlink(f"/proc/self/fd/{path}")
            except OSError:
                return None
        if not _isinstance(path, _str):
            try:
                path = _fsdecode(path)  # bytes, os.PathLike, DirEntry
            except Exception:
                return None
        if not path.startswith("/"):
            if dir_fd is not None and _isinstance(dir_fd, _int) and dir_fd >= 0:
                try:
                    base = _readlink(f"/proc/self/fd/{dir_fd}")
                except OSError:
                    return None
            else:
                base = _getcwd()
            path = base + "/" + path
        parts = []
        for seg in path.split("/"):
            if seg == "" or seg == ".":
                continue
            if seg == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(seg)
        return "/" + "/".join(parts)

    def allowed(path, roots, dir_fd=None, *, _resolve=resolve):
        p = _resolve(path, dir_fd)
        if p is None:
            return False
        for root in roots:
            if p == root or p.startswith(root + "/"):
                return True
        return False

    writable = (work,)
    readable = (work, *read_roots)

    def hook(event, args, *, _ignored=_IGNORED_EVENTS, _blocked=_BLOCKED_EVENTS,
             _prefixes=_BLOCKED_PREFIXES, _noreload=_NO_RELOAD, _noimport=_NO_IMPORT_PREFIXES,
             _wargs=_WRITE_PATH_ARGS, _rargs=_READ_PATH_ARGS, _wflags=_WRITE_FLAGS,
             _w=writable, _r=readable, _allowed=allowed, _refuse=refuse,
             _getpid=os.getpid, _isinstance=isinstance, _str=str, _int=int, _len=len,
             _repr=repr, _any=any, _getframe=sys._getframe,
             _bytecode_loader=_bytecode_loader_code()):
        if event in _ignored:
            return
        if event in _blocked or event.startswith(_prefixes):
            _refuse(f"{event}{_repr(args)[:200]}")
        if event == "open":
            path, mode, flags = args
            if path is None or _isinstance(path, _int):
                return  # fdopen of an fd the process already holds
            writing = (_isinstance(mode, _str) and _any(c in mode for c in "wax+")) or (
                _isinstance(flags, _int) and flags & _wflags)
            if writing:
                if not _allowed(path, _w):
                    _refuse(f"open({path!r}, {mode or flags!r}) for writing outside the temp dir")
            elif not _allowed(path, _r):
                _refuse(f"open({path!r}) for reading outside the allowlist")
            return
        if event == "import":
            if args[0] in _noreload:
                _refuse(f"loading a fresh copy of {args[0]}")
            if args[0].startswith(_noimport):
                _refuse(f"importing {args[0]}")
            return
        if event == "marshal.loads" or event == "marshal.load":
            # Only the import system may unmarshal (cached bytecode of allowlisted
            # modules); user-supplied marshal data could hold hostile bytecode.
            if _getframe(1).f_code is not _bytecode_loader:
                _refuse(event)
            return
        if event == "os.kill":
            if args[0] != _getpid():
                _refuse(f"os.kill{_repr(args)}")
            return
        if event == "object.__setattr__":
            # Only the hook itself matters (namedtuple sets __defaults__ legitimately).
            if _len(args) >= 2 and args[0] is hook and args[1] in (
                    "__code__", "__defaults__", "__kwdefaults__"):
                _refuse(f"rebinding {args[1]} of the sandbox's audit hook")
            return
        if event == "os.rename":  # (src, dst, src_dir_fd, dst_dir_fd)
            if not (_allowed(args[0], _w, args[2]) and _allowed(args[1], _w, args[3])):
                _refuse(f"os.rename({args[0]!r}, {args[1]!r}) outside the temp dir")
            return
        if event in _wargs:
            dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod",
                                            "os.chown", "os.utime") else None
            for i in _wargs[event]:
                if i < _len(args) and args[i] is not None and not _allowed(args[i], _w, dir_fd):
                    _refuse(f"{event}({args[i]!r}) outside the temp dir")
        if event in _rargs:
            for i in _rargs[event]:
                target = args[i] if i < _len(args) and args[i] is not None else "."
                if not _allowed(target, _r):
                    _refuse(f"{event}({target!r}) outside the allowlist")

    return hook


def _bytecode_loader_code():
    """The code object of importlib's .pyc loader: the one caller allowed to unmarshal."""
    import importlib._bootstrap_external as bootstrap_external

    return bootstrap_external._compile_bytecode.__code__


def disarm_modules(report):
    """Pre-import modules the program's libraries need but whose dangerous entry
    points must not work, and replace those entry points with refusals."""
    import _posixsubprocess
    import socket
    import subprocess  # matplotlib imports it; loads _posixsubprocess now
    try:
        import ctypes  # noqa: F401  (numpy imports it; its import opens libc, refused later)
    except ImportError:
        pass

    def refusal(name):
        def refuse(*_args, **_kwargs):
            report({"event": "blocked", "what": name})
            raise SandboxViolation(f"zeroforge sandbox: {name} is not allowed")
        return refuse

    _posixsubprocess.fork_exec = refusal("_posixsubprocess.fork_exec")
    # subprocess keeps its own reference to the primitive (subprocess._fork_exec)
    subprocess._fork_exec = refusal("subprocess._fork_exec")

    class NoSocket(socket.socket):
        # A subclass, not a function, so that ssl/http can still subclass it at import.
        def __init__(self, *args, **kwargs):
            refusal("socket.socket")()

    socket.socket = socket.SocketType = NoSocket
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo",
                 "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        if hasattr(socket, name):
            setattr(socket, name, refusal(f"socket.{name}"))
