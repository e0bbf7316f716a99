"""Inside the render sandbox: a supervisor that runs ONE untrusted program in a confined child.

``retrieval.render.sandbox`` starts this file as a script (never imports it) with
``python -I -S -B _runner.py CONFIG_JSON``: under bubblewrap where the machine
allows it (see ``retrieval.render.bwrap`` for the namespaces and mounts), else
directly (SVG only, rlimits only).  It uses the standard library (and PIL for
the final image) and loads its siblings ``_seccomp.py``, ``_hook.py`` and
``_decode.py`` by path, so it never imports zeroforge code.

The process tree inside the sandbox::

    supervisor (this file; trusted; non-dumpable; holds the report and image fds)
      +-- program child: [own user namespace] -> rlimits -> seccomp -> [audit hook] -> program
      +-- decoder child (after the program): rlimits -> seccomp -> decode out.png

1. As root (bubblewrap then runs without a user namespace and keeps only
   CAP_SETUID/CAP_SETGID for this step) the supervisor drops to the render's own
   unprivileged uid (``drop_to``), so that nothing in the sandbox is root.
2. It reads the payload (program or SVG) from stdin into the work folder.
3. The program child closes every inherited fd but its event pipe, optionally
   enters a new user namespace where it is uid ``sandbox_uid`` with no
   capabilities, sets its rlimits, installs ``_seccomp.program_filter`` (no
   processes, no exec, signals to itself only) and, for Python, the audit hook
   (an early, readable refusal only), then runs the program or rasterizes the
   SVG with resvg.  Refusals and its end state go to the supervisor over a pipe.
4. The supervisor waits (wall-clock bound), classifies the child's end (exit
   code, signal: SIGSYS means seccomp killed it), and only if it ran cleanly
   forks the decoder, which checks out.png's header before decoding and sends
   back ``size`` x ``size`` RGB bytes.
5. It writes one JSON line per event to the report fd and the RGB bytes to the
   image fd, then exits 0.  The program's process never holds either fd, so it
   cannot forge the verdict.
"""

import json
import os
import select
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXIT_OK = 0
EXIT_FAILED = 3
_MB = 1024 * 1024
PR_SET_DUMPABLE = 4
CLONE_NEWUSER = 0x10000000
_MAX_EVENTS_BYTES = 1 * _MB


def _load(name):
    """A sibling module by path (``-I`` keeps this directory off sys.path)."""
    import types

    path = os.path.join(HERE, name + ".py")
    module = types.ModuleType(name)
    module.__file__ = path
    with open(path, "rb") as f:  # plain exec: importlib.util alone costs ~10 ms per render
        exec(compile(f.read(), path, "exec"), module.__dict__)
    return module


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _close_fds(keep):
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd") if n.isdigit()):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _enter_user_namespace(uid, gid):
    """Become ``uid`` in a fresh user namespace mapped onto our own (unprivileged) uid,
    then drop the capabilities the new namespace granted."""
    ctypes, libc = _libc()
    outer_uid, outer_gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {outer_uid} 1"),
                       ("gid_map", f"{gid} {outer_gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:  # _LINUX_CAPABILITY_VERSION_3
        raise OSError(ctypes.get_errno(), "capset failed")


def _set_rlimits(cfg, nproc):
    import resource

    mem = cfg["memory_mb"] * _MB
    fsize = cfg["file_size_mb"] * _MB
    cpu = int(cfg["cpu_seconds"])
    for which, soft, hard in ((resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_CPU, cpu, cpu + 1),
                              (resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_FSIZE, fsize, fsize),
                              (resource.RLIMIT_NOFILE, cfg["max_open_files"], cfg["max_open_files"]),
                              (resource.RLIMIT_NPROC, nproc, nproc)):
        resource.setrlimit(which, (soft, hard))


def _tasks_of_uid(uid):
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue
    return n


def _confine(cfg, nproc, seccomp):
    """The steps every child takes before touching untrusted data."""
    ctypes, libc = _libc()
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # its own /proc/self (the supervisor stays non-dumpable)
    if cfg["userns"]:
        _enter_user_namespace(cfg["sandbox_uid"], cfg["sandbox_gid"])
    _set_rlimits(cfg, nproc)
    if seccomp is not None:
        seccomp.install(seccomp.program_filter(os.getpid()))


def _program_child(cfg, ev_w, nproc, seccomp):
    """Run in the forked child; never returns."""
    def send(obj, _write=os.write, _fd=ev_w, _dumps=json.dumps):
        try:
            _write(_fd, (_dumps(obj) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass  # channel closed by the program: the supervisor then refuses "ok"

    def done(status, reason=""):
        send({"event": "done", "status": status, "reason": reason[:1000]})
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(EXIT_OK if status == "ok" else EXIT_FAILED)

    try:
        _close_fds({ev_w})
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        mode = cfg["mode"]
        _confine(cfg, nproc, seccomp)
    except BaseException as e:
        done("crashed", f"sandbox set-up failed in the child: {type(e).__name__}: {e}")
    if mode == "probe":
        done("ok", f"uid={os.getuid()}")
    if mode == "svg":
        _rasterize_svg(cfg, done)
    _run_python(cfg, send, done)


def _rasterize_svg(cfg, done):
    try:
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
    except MemoryError:
        done("resource_limit", f"MemoryError: the memory limit ({cfg['memory_mb']} MB) was reached")
    except BaseException as e:
        done("crashed", f"SVG rasterizer: {type(e).__name__}: {str(e)[:500]}")
    done("ok")


class _NoHook(Exception):
    """The configuration asked for no audit hook (the OS boundary alone)."""


def _run_python(cfg, send, done):
    hook_mod = _load("_hook")
    blocked = []

    def record(obj):
        blocked.append(obj["what"])
        send(obj)

    try:
        if not cfg["audit_hook"]:
            raise _NoHook
        hook_mod.disarm_modules(record)
        sys.addaudithook(hook_mod.make_hook(os.path.realpath(cfg["work"]), cfg["read_roots"], record))
    except _NoHook:
        pass
    except BaseException as e:
        done("crashed", f"sandbox set-up failed in the child: {type(e).__name__}: {e}")
    sys.argv = ["program.py"]
    Violation = hook_mod.SandboxViolation
    try:
        with open("program.py", "rb") as f:
            source = f.read()
        try:
            code = compile(source, "program.py", "exec")
        except (SyntaxError, ValueError) as e:
            done("syntax_error", f"{type(e).__name__}: {e}")
        exec(code, {"__name__": "__main__", "__file__": "program.py", "SIZE": cfg["size"], "OUT": "out.png"})
    except SystemExit as e:
        if e.code not in (None, 0):
            _print_exception()
            done("crashed", f"program exited with sys.exit({e.code!r})")
    except MemoryError:
        done("resource_limit", f"MemoryError: the memory limit ({cfg['memory_mb']} MB) was reached")
    except Violation as e:
        done("rejected", f"blocked at run time: {blocked[0] if blocked else e}")
    except RecursionError as e:
        done("crashed", f"RecursionError: {e}")
    except BaseException as e:
        if isinstance(e, OSError) and e.errno == 27:  # EFBIG: RLIMIT_FSIZE
            done("resource_limit", f"file size limit ({cfg['file_size_mb']} MB) reached: {e}")
        _print_exception()
        if blocked:
            done("rejected", f"blocked at run time: {blocked[0]}")
        done("crashed", f"{type(e).__name__}: {str(e)[:500]}")
    if blocked:  # a refusal the program caught: never "ok"
        done("rejected", f"blocked at run time: {blocked[0]}")
    done("ok")


def _print_exception():
    import traceback

    try:
        traceback.print_exc()
    except BaseException:
        pass


def _decoder_child(cfg, out_w, nproc, seccomp, decode):
    """Check and decode out.png under the same confinement; send a JSON line, then RGB bytes."""
    def reply(status, reason="", rgb=b""):
        head = json.dumps({"status": status, "reason": reason[:1000], "bytes": len(rgb)}) + "\n"
        try:
            os.write(out_w, head.encode())
            view = memoryview(rgb)
            while view:
                view = view[os.write(out_w, view[:_MB]):]
        except OSError:
            pass
        os._exit(0)

    try:
        _close_fds({out_w})
        _confine(dict(cfg, cpu_seconds=cfg["decode_cpu_seconds"]), nproc, seccomp)
        try:
            fd = os.open("out.png", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            reply("no_image", "the program finished without writing out.png in its working directory")
        except OSError as e:
            reply("no_image", f"out.png could not be opened safely ({e.strerror}): expected a regular file")
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_nlink != 1:
            reply("no_image", "out.png is not a regular file with a single link")
        if st.st_size > cfg["file_size_mb"] * _MB:
            reply("too_large", f"out.png is {st.st_size} bytes, over the {cfg['file_size_mb']} MB limit")
        data = b""
        while len(data) < st.st_size:
            chunk = os.read(fd, min(st.st_size - len(data), _MB))
            if not chunk:
                break
            data += chunk
        image, status, reason = decode.decode_png_rgb(data, cfg["size"], cfg["max_pixels"])
        if image is None:
            reply(status, reason)
        reply("ok", "", image.tobytes())
    except MemoryError:
        reply("resource_limit", f"decoding out.png needed more than {cfg['memory_mb']} MB")
    except BaseException as e:
        reply("no_image", f"out.png could not be decoded: {type(e).__name__}: {str(e)[:300]}")


def _hand_back_svg_png(cfg, decode, image_fd, finish):
    """SVG mode: resvg (not model code) wrote out.png within size x size, so no decoder
    process is needed; the PNG goes back as is after its header is checked, and the parent
    decodes at most the size x size pixels it asked for."""
    try:
        fd = os.open("out.png", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        data = os.read(fd, cfg["file_size_mb"] * _MB + 1)
        os.close(fd)
    except OSError as e:
        finish("no_image", f"the rasterizer wrote no readable out.png: {e}")
    dims = decode.png_dimensions(data)
    if dims is None or not (0 < dims[0] <= cfg["size"] and 0 < dims[1] <= cfg["size"]):
        finish("no_image", f"the rasterizer's PNG is {dims}, expected at most {cfg['size']}x{cfg['size']}")
    view = memoryview(data)
    while view:
        view = view[os.write(image_fd, view[:_MB]):]
    finish("ok", "", image_format="png", image_bytes=len(data))


def _signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _wait_child(pid, read_fd, deadline, on_data):
    """Feed what the child writes to ``on_data`` until it exits or ``deadline`` passes.
    Returns (wait status, timed_out)."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(read_fd, select.POLLIN)
    open_pipe, timed_out = True, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                break
            events = poller.poll(max(1, int(left * 1000)))
            exited = any(fd == pidfd for fd, _ in events)
            if open_pipe and any(fd == read_fd for fd, _ in events):
                chunk = os.read(read_fd, 65536)
                if chunk:
                    on_data(chunk)
                else:
                    poller.unregister(read_fd)
                    open_pipe = False
            if exited:
                break
        _, status = os.waitpid(pid, 0)
        os.set_blocking(read_fd, False)
        while open_pipe:  # what the child wrote just before it ended
            try:
                chunk = os.read(read_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            on_data(chunk)
        return status, timed_out
    finally:
        os.close(pidfd)


def _classify_child(status, timed_out, done, blocked, cfg):
    """The verdict on the program child: (status, reason); status "ok" only for a clean run."""
    if timed_out:
        return "timeout", f"wall-clock limit of {cfg['wall_seconds']:g} s reached; the program was killed"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGSYS:
            return "rejected", "blocked at run time: a forbidden system call (killed by the seccomp filter)"
        if sig == signal.SIGXCPU:
            return "timeout", f"CPU-time limit of {cfg['cpu_seconds']} s reached (SIGXCPU)"
        if sig == signal.SIGXFSZ:
            return "resource_limit", f"file size limit of {cfg['file_size_mb']} MB reached (SIGXFSZ)"
        if sig == signal.SIGKILL:
            return "resource_limit", (f"killed by SIGKILL: CPU hard limit ({cfg['cpu_seconds'] + 1} s) "
                                      "or the out-of-memory killer")
        return "crashed", f"killed by {_signal_name(sig)}"
    if blocked:
        return "rejected", f"blocked at run time: {blocked[0]}"
    if done is None:
        return "crashed", ("the program ended its process (exit status "
                           f"{os.WEXITSTATUS(status)}) before the sandbox's final check")
    want_rc = EXIT_OK if done.get("status") == "ok" else EXIT_FAILED
    if os.WEXITSTATUS(status) != want_rc:
        return "crashed", f"the program's process exited with status {os.WEXITSTATUS(status)}"
    return str(done.get("status")), str(done.get("reason", ""))


def main():
    cfg = json.loads(sys.argv[1])
    report_fd, image_fd = cfg["report_fd"], cfg["image_fd"]

    def report(obj):
        try:
            os.write(report_fd, (json.dumps(obj) + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    def finish(status, reason, **extra):
        report({"status": status, "reason": reason[:1000], **extra})
        os._exit(EXIT_OK)

    for p in cfg["sys_path"]:
        if p not in sys.path:
            sys.path.append(p)
    try:
        if cfg["drop_to"] is not None:
            uid = cfg["drop_to"]
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # from 0 to non-zero: every capability goes
        _, libc = _libc()
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # children cannot read our memory or fds
        seccomp = _load("_seccomp") if cfg["seccomp"] else None
        decode = _load("_decode")
        os.chdir(cfg["work"])
        if cfg["mode"] != "probe":
            payload = sys.stdin.buffer.read(cfg["max_payload_bytes"] + 1)
            if len(payload) > cfg["max_payload_bytes"]:
                finish("too_large", "payload over the limit")
            with open(cfg["payload_name"], "wb") as f:
                f.write(payload)
        if cfg["mode"] == "python":
            os.makedirs(".mpl", exist_ok=True)
            if cfg.get("mpl_cache"):
                with open(cfg["mpl_cache"], "rb") as src, open(os.path.join(".mpl", cfg["mpl_cache_name"]), "wb") as dst:
                    dst.write(src.read())
        # Imported once here and inherited by the children (copy-on-write), not once in each.
        if cfg["mode"] == "svg":
            import resvg_py  # noqa: F401
        else:
            import PIL.Image

            PIL.Image.preinit()  # the plugins Image.open would import on first use
        nproc = _tasks_of_uid(os.getuid()) + 1 + cfg["max_processes"]
    except BaseException as e:
        finish("crashed", f"sandbox supervisor set-up failed: {type(e).__name__}: {e}")

    ev_r, ev_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ev_r)
        _program_child(cfg, ev_w, nproc, seccomp)
        os._exit(EXIT_FAILED)  # not reached
    os.close(ev_w)
    buf, state = bytearray(), {"done": None, "blocked": [], "size": 0}

    def on_events(chunk):
        state["size"] += len(chunk)
        if state["size"] > _MAX_EVENTS_BYTES:
            return  # a flood: the first megabyte says enough
        buf.extend(chunk)
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if obj.get("event") == "blocked":
                state["blocked"].append(str(obj.get("what", "?"))[:300])
                report({"event": "blocked", "what": state["blocked"][-1]})
            elif obj.get("event") == "done" and state["done"] is None:
                state["done"] = obj

    wait_status, timed_out = _wait_child(pid, ev_r, time.monotonic() + cfg["wall_seconds"], on_events)
    os.close(ev_r)
    status, reason = _classify_child(wait_status, timed_out, state["done"], state["blocked"], cfg)
    if status != "ok":
        finish(status, reason)
    if cfg["mode"] == "probe":
        finish("ok", (state["done"] or {}).get("reason", ""), uid=os.getuid())

    if cfg["mode"] == "svg":
        _hand_back_svg_png(cfg, decode, image_fd, finish)

    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        _decoder_child(cfg, out_w, nproc, seccomp, decode)
        os._exit(EXIT_FAILED)  # not reached
    os.close(out_w)
    data = bytearray()
    limit = cfg["size"] * cfg["size"] * 3 + 4096

    def on_image(chunk):
        if len(data) <= limit:
            data.extend(chunk)

    wait_status, timed_out = _wait_child(pid, out_r, time.monotonic() + cfg["decode_cpu_seconds"] + 5, on_image)
    os.close(out_r)
    head, _, rgb = bytes(data).partition(b"\n")
    try:
        verdict = json.loads(head)
    except ValueError:
        verdict = None
    if timed_out or not isinstance(verdict, dict):
        sig = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) and not timed_out else None
        if sig == signal.SIGXCPU:
            finish("resource_limit", f"decoding out.png took over {cfg['decode_cpu_seconds']} s of CPU")
        if sig == signal.SIGKILL:
            finish("resource_limit", "decoding out.png ran out of memory or CPU time")
        finish("no_image", "out.png could not be decoded within the limits")
    if verdict.get("status") != "ok":
        finish(str(verdict.get("status")), str(verdict.get("reason", "")))
    if len(rgb) != cfg["size"] * cfg["size"] * 3:
        finish("no_image", "the decoder returned an image of the wrong size")
    view = memoryview(rgb)
    while view:
        view = view[os.write(image_fd, view[:_MB]):]
    finish("ok", "", image_bytes=len(rgb))


if __name__ == "__main__":
    main()
