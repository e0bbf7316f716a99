"""Child side of the render sandbox: runs ONE untrusted program in its own process.

``retrieval.render.sandbox`` starts this file as a script (never imports it) with
``python -I -S -B _runner.py CONFIG_JSON`` in a fresh temp directory, after the
parent's ``preexec_fn`` has set the rlimits, optionally moved the process into an
empty network namespace and dropped root to an unprivileged uid.  It uses the
standard library only, so that the child never imports zeroforge code.  It then:

1. puts the interpreter's site-packages on ``sys.path`` (``-S`` skipped them, and
   with them the ``.pth`` files that would make the project importable);
2. pre-imports the few modules whose import does things the policy forbids later
   (``ctypes`` opens the C library, ``subprocess`` loads ``_posixsubprocess``) and
   disarms their dangerous entry points;
3. installs an audit hook (``sys.addaudithook``; it cannot be removed once
   installed) that blocks network, process creation, ``ctypes``, rlimit changes,
   writes outside the temp dir and reads outside an allowlist (stdlib,
   site-packages, fonts, time zones);
4. runs the program: ``mode == "python"`` compiles and executes ``program.py``,
   which must write ``out.png`` in its working directory; ``mode == "svg"``
   rasterizes ``input.svg`` (already vetted by ``retrieval.render.svg_policy``)
   with resvg into ``out.png``;
5. writes one JSON line per event to the report fd (blocked actions as they
   happen, then a final ``{"status", "reason"}``) and leaves with ``os._exit``.

The audit hook is defence in depth, not a jail: a determined program may find a
way around it.  The primary containment is the separate process, the rlimits,
the temp working directory, the minimal environment and (as root) the
unprivileged uid, all set up by the parent before this file runs.
"""

import json
import os
import sys

# Exit codes; the parent reads the status from the report fd (sandbox._classify).
EXIT_OK = 0
EXIT_FAILED = 3  # a classified failure; the status is on the report fd

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
# CPython's test modules expose raw memory access; never needed to draw.
_NO_IMPORT_PREFIXES = ("_test", "_xx", "_ctypes_test")
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


def _make_hook(work, read_roots, report):
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


def _disarm_modules(report):
    """Pre-import modules the program's libraries need but whose dangerous entry
    points must not work, and replace those entry points with refusals."""
    import socket
    import subprocess  # noqa: F401  (matplotlib imports it; loads _posixsubprocess now)
    import _posixsubprocess
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

    class NoSocket(socket.socket):
        # A subclass, not a function, so that ssl/http can still subclass it at import.
        def __init__(self, *args, **kwargs):
            refusal("socket.socket")()

    socket.socket = socket.SocketType = NoSocket
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo",
                 "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        if hasattr(socket, name):
            setattr(socket, name, refusal(f"socket.{name}"))


def _rasterize_svg(cfg):
    import resvg_py

    with open("input.svg", encoding="utf-8") as f:
        text = f.read()
    # Only the bundled DejaVu fonts, every generic family mapped onto them: the
    # same text renders the same on every machine, and no font directory is scanned.
    png = resvg_py.svg_to_bytes(
        svg_string=text, width=cfg["size"], height=cfg["size"], skip_system_fonts=True,
        font_files=cfg["font_files"] or None, resources_dir=cfg["work"],
        font_family="DejaVu Sans", sans_serif_family="DejaVu Sans", serif_family="DejaVu Serif",
        monospace_family="DejaVu Sans Mono", cursive_family="DejaVu Sans",
        fantasy_family="DejaVu Sans")
    with open("out.png", "wb") as f:
        f.write(bytes(png))


def main():
    cfg = json.loads(sys.argv[1])
    report_fd = cfg["report_fd"]
    write = os.write

    def report(obj, _write=write, _fd=report_fd, _dumps=json.dumps):
        try:
            _write(_fd, (_dumps(obj) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass  # fd closed by the program, or the file-size limit: nothing to add

    def finish(status, reason):
        report({"status": status, "reason": reason[:1000]})
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(EXIT_OK if status == "ok" else EXIT_FAILED)

    for p in cfg["sys_path"]:
        if p not in sys.path:
            sys.path.append(p)

    mode = cfg["mode"]
    if mode == "probe":
        finish("ok", f"uid={os.getuid()}")
    blocked = []

    def record(obj):
        blocked.append(obj["what"])
        report(obj)

    if mode == "svg":
        # No model-written Python runs in this mode (the SVG was vetted by the parent
        # and resvg is native code), so the audit hook would guard nothing.
        try:
            import resvg_py  # noqa: F401
        except ImportError as e:
            finish("crashed", f"SVG rasterizer resvg_py is not installed in the sandbox "
                              f"interpreter {sys.executable}: {e}")
    else:
        _disarm_modules(record)
        sys.addaudithook(_make_hook(os.path.realpath(cfg["work"]), cfg["read_roots"], record))
        sys.argv = ["program.py"]

    try:
        if mode == "svg":
            _rasterize_svg(cfg)
        elif mode == "python":
            with open("program.py", "rb") as f:
                source = f.read()
            try:
                code = compile(source, "program.py", "exec")
            except (SyntaxError, ValueError) as e:
                finish("syntax_error", f"{type(e).__name__}: {e}")
            program_globals = {"__name__": "__main__", "__file__": "program.py",
                               "SIZE": cfg["size"], "OUT": "out.png"}
            exec(code, program_globals)
        else:
            finish("crashed", f"runner: unknown mode {mode!r}, expected 'svg' or 'python'")
    except SystemExit as e:
        if e.code not in (None, 0):
            _print_exception()
            finish("crashed", f"program exited with sys.exit({e.code!r})")
    except MemoryError:
        finish("resource_limit", f"MemoryError: the memory limit ({cfg['memory_mb']} MB) was reached")
    except SandboxViolation as e:
        finish("rejected", f"blocked at run time: {blocked[0] if blocked else e}")
    except RecursionError as e:
        finish("crashed", f"RecursionError: {e}")
    except BaseException as e:
        if isinstance(e, OSError) and e.errno == 27:  # EFBIG: RLIMIT_FSIZE
            finish("resource_limit", f"file size limit ({cfg['file_size_mb']} MB) reached: {e}")
        _print_exception()
        if blocked:
            finish("rejected", f"blocked at run time: {blocked[0]}")
        finish("crashed", f"{type(e).__name__}: {str(e)[:500]}")
    if blocked:
        finish("rejected", f"blocked at run time: {blocked[0]}")
    if not os.path.lexists("out.png"):
        finish("no_image", "the program finished without writing out.png in its working directory")
    finish("ok", "")


def _print_exception():
    import traceback

    try:
        traceback.print_exc()
    except BaseException:
        pass


if __name__ == "__main__":
    main()
