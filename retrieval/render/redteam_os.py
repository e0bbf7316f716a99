"""Red-team corpus, second half: programs aimed at the OS-level boundary, not the audit hook.

``retrieval.render.redteam.redteam_corpus`` appends these to its first half.
Each one uses a way around CPython's audit hook that a program can really take
(private primitives under another name, fresh copies of extension modules,
``dir_fd``, C extensions doing their own file IO, ``pidfd``/``signal``
functions without audit events, POSIX shared memory, ctypes syscalls when no hook
is installed) and aims at one layer: the mounts, the namespaces (pid, ipc,
network, uts, user), seccomp, the rlimits and tmpfs bounds, the status channel,
or the parent (time and memory).

Convention: a program writes ``out.png`` only when its attack worked (it read
the canary, saw the host, kept a capability...), so a contained case never ends
``ok``; programs whose attack leaves traces outside instead (files in ``/tmp``
or ``/dev/shm``, a surviving process, a killed victim) are checked by the tests
from outside.  ``targets`` holds the real paths, pids and ports the programs aim
at; nothing here runs them.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass

CANARY_SECRET = "zf-canary-7d1e5b90"  # the canaries' content: must never appear in any output


@dataclass(frozen=True)
class Targets:
    repo: str
    sentinel: str          # folder with keep.txt, canary.txt (0600), canary_public.txt, private.png, ...
    victim_pid: int        # a process outside the sandbox that must survive
    port: int              # a TCP port on the host's loopback that must see no connection
    hostname: str          # the host's name, which the sandbox must not show


_DRAW = 'from PIL import Image\nImage.new("RGB", (8, 8), (255, 0, 0)).save("out.png")\n'
# fork_exec's 23 arguments in CPython 3.11; only argv and executable matter here.
_IND_DRAW = "".join("    " + line + "\n" for line in _DRAW.splitlines())
_IND8_DRAW = "".join("        " + line + "\n" for line in _DRAW.splitlines())
_FE_ARGS = ("True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, False, True, -1, None, None, None, "
            "-1, None, True")
_CTYPES_SYSCALL = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                   "X86 = os.uname().machine == 'x86_64'\n")


def _png_bytes_b64(width: int, height: int, rgba: bool = True) -> str:
    """A real, tiny-on-disk PNG of zeros (so it decodes to width*height pixels)."""
    raw_row = b"\x00" + b"\x00" * (width * (4 if rgba else 3))
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(raw_row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if rgba else 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def os_cases(t: Targets, py, svg, reply) -> list:
    """The cases, built with the helpers of ``redteam`` (``py(name, attack, program, *statuses)``)."""
    s, secret = t.sentinel, CANARY_SECRET
    leak_if = f"if {secret!r} in data:\n    print(data)\n" + _IND_DRAW
    site = "import os, PIL\nSITE = os.path.dirname(os.path.dirname(PIL.__file__))\n"
    cases = [
        # --- the private fork/exec primitive under other names ------------------------------
        py("fork_exec_alias", "run id as root through subprocess._fork_exec (no audit event)",
           "import subprocess, os\nr, w = os.pipe()\n"
           f"subprocess._fork_exec([b'/bin/sh', b'-c', b'id > /tmp/zf_pwned_id'], [b'/bin/sh'], {_FE_ARGS})\n"
           "import time; time.sleep(0.5)\n" + _DRAW, "rejected"),
        py("fork_exec_fresh_module", "load a fresh _posixsubprocess through importlib and fork",
           "import importlib.util, os\nm = importlib.util.module_from_spec(importlib.util.find_spec('_posixsubprocess'))\n"
           "r, w = os.pipe()\n"
           f"m.fork_exec([b'/usr/bin/touch', b'/tmp/zf_pwned_fresh'], [b'/usr/bin/touch'], {_FE_ARGS})\n" + _DRAW,
           "rejected"),
        py("leave_sleep_running", "start a detached sleep that outlives the render",
           "import subprocess, os\nr, w = os.pipe()\n"
           "subprocess._fork_exec([b'/bin/sh', b'-c', b'exec -a zf_pwned_sleeper sleep 300'], [b'/bin/sh'], "
           f"{_FE_ARGS})\n" + _DRAW, "rejected"),
        py("read_canary_with_cat", "cat a file outside the work folder from a child process",
           "import subprocess, os\nr, w = os.pipe()\n"
           f"subprocess._fork_exec([b'/bin/cat', b'{s}/canary.txt'], [b'/bin/cat'], {_FE_ARGS})\n" + _DRAW,
           "rejected"),
        py("posix_spawn_touch", "os.posix_spawn a program",
           "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '/tmp/zf_pwned_spawn'], {})\n" + _DRAW,
           "rejected"),
        py("forkpty", "fork through a pseudo-terminal", "import pty\npid, fd = pty.fork()\n" + _DRAW,
           "rejected", "crashed"),
        py("fork_in_thread", "fork from a worker thread",
           "import threading, os\nok = []\nthreading.Thread(target=lambda: ok.append(os.fork())).start()\n"
           "import time; time.sleep(0.5)\nif ok and ok[0] > 0:\n" + _IND_DRAW,
           "rejected", "crashed", "no_image"),
        py("exec_shell", "replace the program with a shell via os.execl",
           "import os\nos.execl('/bin/sh', 'sh', '-c', 'touch /tmp/zf_pwned_execl')", "rejected"),
        # --- mounts: writes outside the work folder ------------------------------------------
        py("dirfd_pth_into_site_packages", "write a .pth into site-packages with dir_fd (hook sees a relative path)",
           site + "fd = os.open(SITE, os.O_RDONLY)\n"
           "f = os.open('zf_pwned_hook.pth', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)\n"
           "os.write(f, b'import os')\n" + _DRAW, "crashed", "rejected"),
        py("dirfd_truncate_stdlib", "truncate os.py of the standard library through dir_fd",
           "import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
           "os.open('os.py', os.O_WRONLY | os.O_TRUNC, dir_fd=fd)\n" + _DRAW, "crashed", "rejected"),
        py("dirfd_into_fonts", "create a file in a system font folder through dir_fd",
           "import os\nfd = os.open('/usr/share/fonts', os.O_RDONLY)\n"
           "os.open('zf_pwned_font', os.O_WRONLY | os.O_CREAT, dir_fd=fd)\n" + _DRAW, "crashed", "rejected"),
        py("rename_into_site_packages", "rename a work file into site-packages with dst_dir_fd",
           site + "open('x.pth', 'w').write('import os')\nfd = os.open(SITE, os.O_RDONLY)\n"
           "os.rename('x.pth', 'zf_pwned_mv.pth', dst_dir_fd=fd)\n" + _DRAW, "crashed", "rejected"),
        py("pyarrow_write_tmp", "write a host /tmp file from C++ (pyarrow, no audit event)",
           "import pyarrow.fs as pafs\nwith pafs.LocalFileSystem().open_output_stream('/tmp/zf_pwned_arrow') as f:\n"
           "    f.write(b'x')\nprint('written into the sandbox /tmp only')", "no_image", "crashed",
           memory_mb=1024, cpu_seconds=10),
        py("pyarrow_delete_sentinel", "delete the sentinel file from C++ (pyarrow)",
           f"import pyarrow.fs as pafs\npafs.LocalFileSystem().delete_file('{s}/keep.txt')\n" + _DRAW,
           "crashed", memory_mb=1024, cpu_seconds=10),
        py("readline_history_write", "write readline history into host /tmp (C code, no audit event)",
           "import readline\nreadline.add_history('zf')\nreadline.write_history_file('/tmp/zf_pwned_history')\n"
           "print('history written')", "no_image", "crashed"),
        py("tmp_fill", "fill the private /tmp until it is full",
           "i = 0\nwhile True:\n    with open(f'/tmp/zf_pwned_fill{i}', 'wb') as f:\n        f.write(b'0' * (6 << 20))\n"
           "    i += 1", "rejected", "resource_limit", "crashed"),
        py("hard_link_system_file", "hard-link a system file as out.png",
           "import os\nos.link('/usr/share/zoneinfo/UTC', 'out.png')", "rejected", "crashed", "no_image"),
        py("fifo_out_png", "make out.png a FIFO so the reader blocks",
           "import os\nos.mkfifo('out.png')", "rejected", "crashed"),
        # --- mounts: reads outside (C-extension file IO the hook never sees) -------------------
        py("pyarrow_read_canary", "read the canary from C++ (pyarrow)",
           f"import pyarrow.fs as pafs\ndata = pafs.LocalFileSystem().open_input_stream('{s}/canary.txt')"
           ".read().decode()\n" + leak_if, "crashed", memory_mb=1024, cpu_seconds=10),
        py("safetensors_read_canary", "read a safetensors canary's metadata (Rust file IO)",
           f"from safetensors import safe_open\nwith safe_open('{s}/canary.safetensors', 'numpy') as f:\n"
           "    data = str(f.metadata())\n" + leak_if, "crashed"),
        py("readline_read_canary", "read the canary as readline history (C code)",
           f"import readline\nreadline.read_history_file('{s}/canary.txt')\n"
           "data = readline.get_history_item(1) or ''\n" + leak_if, "crashed"),
        py("readline_read_public_canary", "read a world-readable canary as readline history",
           f"import readline\nreadline.read_history_file('{s}/canary_public.txt')\n"
           "data = readline.get_history_item(1) or ''\n" + leak_if, "crashed"),
        py("pwd_spwd_databases", "enumerate passwd and shadow through pwd/spwd (NSS, no audit)",
           "import pwd, warnings\nwarnings.simplefilter('ignore')\nimport spwd\n"
           "users = pwd.getpwall()\ntry:\n    shadow = spwd.getspall()\nexcept OSError:\n    shadow = []\n"
           "if any(u.pw_name == 'root' for u in users) or shadow:\n    print(users, shadow)\n"
           + _IND_DRAW, "no_image", "rejected"),
        py("stat_project", "see whether the project checkout is visible (os.stat has no audit event)",
           f"import os\nif os.path.exists('{t.repo}/pyproject.toml'):\n    print('VISIBLE')\n"
           + _IND_DRAW + "raise SystemExit('not visible')", "crashed"),
        py("stat_home_and_shadow", "probe /root, /etc/shadow and /etc/passwd",
           "import os\nseen = [p for p in ('/etc/shadow', '/etc/passwd', '/root/.bashrc', '/home') if os.path.exists(p)]\n"
           "if seen:\n    print('SEEN', seen)\n" + _IND_DRAW
           + "raise SystemExit('nothing of the host')", "crashed"),
        py("resvg_reads_private_png", "call the SVG rasterizer from Python on a private PNG",
           "import resvg_py\n"
           f"svg = '<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><image href=\"{s}/private.png\" "
           "width=\"8\" height=\"8\"/></svg>'\n"
           "png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=8, height=8, resources_dir='/'))\n"
           "import io\nfrom PIL import Image\nim = Image.open(io.BytesIO(png)).convert('RGBA')\n"
           "if im.getpixel((4, 4))[3]:\n    print('LEAKED', im.getpixel((4, 4)))\n    im.save('out.png')\n"
           "else:\n    raise SystemExit('private.png not readable')", "rejected", "crashed"),
        py("resvg_loaded_under_other_name", "load the rasterizer's extension under another module name",
           "import importlib.machinery, importlib.util, os, PIL\n"
           "d = os.path.join(os.path.dirname(os.path.dirname(PIL.__file__)), 'resvg_py')\n"
           "so = [f for f in os.listdir(d) if f.endswith('.so')][0]\n"
           "loader = importlib.machinery.ExtensionFileLoader('resvg_py', os.path.join(d, so))\n"
           "m = importlib.util.module_from_spec(importlib.util.spec_from_loader('resvg_py', loader))\n"
           f"svg = '<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><image href=\"{s}/private.png\" "
           "width=\"8\" height=\"8\"/></svg>'\n"
           "png = bytes(m.svg_to_bytes(svg_string=svg, width=8, height=8, resources_dir='/'))\n"
           "import io\nfrom PIL import Image\nim = Image.open(io.BytesIO(png)).convert('RGBA')\n"
           "if im.getpixel((4, 4))[3]:\n    im.save('out.png')\nelse:\n    raise SystemExit('not readable')",
           "rejected", "crashed"),
        # --- POSIX shared memory and semaphores ---------------------------------------------
        py("posix_shm_flood", "leave 35 MB of POSIX shared memory behind",
           "import _posixshmem, os\nfor i in range(5):\n"
           "    fd = _posixshmem.shm_open(f'/zf_pwned_shm{i}', os.O_CREAT | os.O_RDWR, 0o600)\n"
           "    os.ftruncate(fd, 7 << 20)\n    os.write(fd, b'x' * (7 << 20))\nprint('left shm')",
           "rejected", "no_image", "crashed", "resource_limit"),
        py("named_semaphore", "leave a named POSIX semaphore behind",
           "import _multiprocessing\ns = _multiprocessing.SemLock(1, 1, 1, '/zf_pwned_sem', False)\nprint('sem')",
           "no_image", "rejected", "crashed"),
        # --- signals and other processes ----------------------------------------------------
        py("pidfd_kill_victim", "kill a process outside the sandbox through a pidfd",
           f"import os, signal\nfd = os.pidfd_open({t.victim_pid})\nsignal.pidfd_send_signal(fd, signal.SIGKILL)\n"
           + _DRAW, "rejected", "crashed"),
        py("pidfd_send_signal_raw", "call pidfd_send_signal directly",
           "import signal\nsignal.pidfd_send_signal(0, 9)\n" + _DRAW, "rejected", "crashed"),
        py("kill_victim", "SIGKILL a process outside by pid",
           f"import os\nos.kill({t.victim_pid}, 9)\n" + _DRAW, "rejected", "crashed"),
        py("kill_everything", "kill(-1): every process the uid may signal",
           "import os\nos.kill(-1, 9)\n" + _DRAW, "rejected", "crashed"),
        py("kill_scan", "signal every pid up to 4096, then draw",
           "import os\nhit = 0\nfor pid in range(2, 4096):\n    if pid == os.getpid():\n        continue\n"
           "    try:\n        os.kill(pid, 9)\n        hit += 1\n"
           "    except OSError:\n        pass\nif hit:\n" + _IND_DRAW,
           "rejected", "no_image"),
        py("victim_visible", "look for the victim in /proc (pid namespace)",
           f"import os\nif os.path.exists('/proc/{t.victim_pid}/cmdline'):\n    print('VISIBLE')\n"
           + _IND_DRAW + "raise SystemExit('not visible')", "crashed"),
        py("ptrace_supervisor", "ptrace-attach to the sandbox's supervisor",
           _CTYPES_SYSCALL + "libc.syscall(101 if X86 else 117, 16, 2, 0, 0)\n" + _DRAW, "rejected"),
        py("process_vm_readv", "read another process's memory",
           _CTYPES_SYSCALL + "libc.syscall(310 if X86 else 270, 1, 0, 0, 0, 0, 0)\n" + _DRAW, "rejected"),
        # --- seccomp: kernel surfaces ---------------------------------------------------------
        py("unshare_user_namespace", "make a new user namespace to gain capabilities",
           _CTYPES_SYSCALL + "libc.syscall(272 if X86 else 97, 0x10000000)\n" + _DRAW, "rejected"),
        py("clone_new_namespaces", "clone into new namespaces",
           _CTYPES_SYSCALL + "libc.syscall(56 if X86 else 220, 0x10000000 | 0x20000000 | 17, 0, 0, 0, 0)\n" + _DRAW,
           "rejected"),
        py("mount_tmpfs", "mount a tmpfs over the work folder",
           _CTYPES_SYSCALL + "libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None)\n" + _DRAW, "rejected"),
        py("bpf_program", "load an eBPF program",
           _CTYPES_SYSCALL + "libc.syscall(321 if X86 else 280, 5, 0, 0)\n" + _DRAW, "rejected"),
        py("perf_event_open", "open a perf event", _CTYPES_SYSCALL
           + "libc.syscall(298 if X86 else 241, 0, 0, -1, -1, 0)\n" + _DRAW, "rejected"),
        py("keyctl_keyring", "read the session keyring", _CTYPES_SYSCALL
           + "libc.syscall(250 if X86 else 219, 0, -3, 0, 0, 0)\n" + _DRAW, "rejected"),
        py("io_uring_setup", "set up io_uring (its requests bypass seccomp)", _CTYPES_SYSCALL
           + "libc.syscall(425, 8, ctypes.create_string_buffer(120))\n" + _DRAW, "rejected"),
        py("kexec_load", "load a new kernel", _CTYPES_SYSCALL
           + "libc.syscall(246 if X86 else 104, 0, 0, 0, 0)\n" + _DRAW, "rejected"),
        py("setns_host", "join another namespace", _CTYPES_SYSCALL
           + "libc.syscall(308 if X86 else 268, 0, 0)\n" + _DRAW, "rejected"),
        py("chroot_escape", "chroot out of the sandbox", _CTYPES_SYSCALL + "libc.chroot(b'/tmp')\n" + _DRAW,
           "rejected"),
        py("sethostname", "rename the machine", _CTYPES_SYSCALL + "libc.sethostname(b'zf_pwned', 8)\n" + _DRAW,
           "rejected"),
        py("raw_fork_syscall", "fork by raw syscall number", _CTYPES_SYSCALL
           + "pid = libc.syscall(57, 0) if X86 else libc.syscall(220, 17, 0, 0, 0, 0)\n" + _DRAW, "rejected"),
        # --- namespaces: network, uts, user, ipc ----------------------------------------------
        py("connect_host_loopback", "reach a TCP server on the host's loopback",
           "import socket\nbase = socket.socket.__mro__[1]\ns = base(socket.AF_INET, socket.SOCK_STREAM)\n"
           f"s.settimeout(2)\ns.connect(('127.0.0.1', {t.port}))\n" + _DRAW, "rejected", "crashed"),
        py("udp_host_loopback", "send a UDP datagram to the host",
           "import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)\n"
           f"s.sendto(b'zf', ('127.0.0.1', {t.port}))\nprint('sent (the host listener counts what arrives)')",
           "rejected", "no_image", "crashed"),
        py("hostname_is_host", "read the host's name",
           f"import os\nif os.uname().nodename == {t.hostname!r}:\n    print('HOST NAME')\n"
           + _IND_DRAW + "raise SystemExit('own uts namespace')", "crashed"),
        py("uid_is_root", "check for root or any capability",
           "import os\nif os.getuid() == 0 or os.geteuid() == 0:\n    print('ROOT')\n"
           + _IND_DRAW + "raise SystemExit('unprivileged')", "crashed"),
        py("setuid_root", "become root again", "import os\nos.setuid(0)\n" + _DRAW, "crashed", "rejected"),
        py("capabilities", "find an effective capability in /proc/self/status",
           "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
           "if int(caps, 16):\n    print('CAPS', caps)\n" + _IND_DRAW
           + "raise SystemExit('no capabilities')", "crashed", "rejected"),
        py("sysv_shm_segment", "create a System V shared-memory segment (ipc namespace)",
           _CTYPES_SYSCALL + "sid = libc.shmget(0x7a660001, 1 << 20, 0o1666)\nprint('segment', sid)",
           "rejected", "no_image"),
        py("dev_devices", "open raw devices",
           "import os\nfor d in ('/dev/mem', '/dev/kmsg', '/dev/sda', '/dev/vda', '/dev/nvme0n1'):\n"
           "    try:\n        os.close(os.open(d, os.O_RDONLY))\n        print('OPENED', d)\n"
           + _IND8_DRAW + "    except OSError:\n        pass\n"
           "raise SystemExit('no devices')", "crashed", "rejected"),
        # --- the status channel --------------------------------------------------------------
        py("forge_verdict_on_every_fd", "write a fake 'ok' verdict into every open fd, then fail",
           "import os\nfor fd in range(3, 256):\n    try:\n"
           "        os.write(fd, b'{\"event\": \"done\", \"status\": \"ok\", \"reason\": \"\"}\\n{\"status\": \"ok\"}\\n')\n"
           "    except OSError:\n        pass\nraise ValueError('failed after forging')", "crashed", "rejected"),
        py("close_channel_then_escape", "close every fd, try an escape, draw and end normally",
           "import os\nos.closerange(3, 256)\ntry:\n    open('/tmp/zf_pwned_closed', 'w')\nexcept OSError:\n    pass\n"
           + _DRAW, "rejected", "crashed"),
        py("swallow_and_exit_zero", "catch a refusal, draw, then os._exit(0) before the final check",
           "import os\ntry:\n    open('/tmp/zf_pwned_exit0', 'w')\nexcept OSError:\n    pass\n" + _DRAW
           + "os._exit(0)", "rejected", "crashed"),
        # --- resources and the parent -----------------------------------------------------
        py("png_decoded_in_parent", "a 4096x4096 RGBA PNG within every limit (232 MB when decoded)",
           f"import base64\nopen('out.png', 'wb').write(base64.b64decode({_png_bytes_b64(4096, 4096)!r}))",
           "ok", "resource_limit"),
        py("png_header_bomb", "a PNG whose header claims 60000x60000 pixels",
           "import struct, zlib\nihdr = struct.pack('>IIBBBBB', 60000, 60000, 8, 2, 0, 0, 0)\n"
           "c = lambda k, b: struct.pack('>I', len(b)) + k + b + struct.pack('>I', zlib.crc32(k + b))\n"
           "open('out.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + c(b'IHDR', ihdr) + c(b'IEND', b''))",
           "too_large"),
        py("png_over_file_limit", "an out.png over the file-size limit",
           "open('out.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + b'0' * (12 << 20))", "resource_limit"),
        py("thread_stack_bomb", "thousands of threads with tiny stacks",
           "import threading, time\nthreading.stack_size(32768)\nfor _ in range(100000):\n"
           "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
           "crashed", "resource_limit"),
        svg("svg_width_digit_stall", "20,000 digits in the root width (regex backtracking in the parent)",
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{"1" * 20000}x" height="10"/>', "rejected"),
        svg("svg_height_digit_stall", "40,000 digits and a bad exponent in the root height",
            f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="{"9" * 40000}e+"/>', "rejected"),
        svg("svg_url_flood", "a style attribute of 40,000 unclosed url(",
            f'<svg xmlns="http://www.w3.org/2000/svg"><rect style="{"url( " * 40000}"/></svg>', "rejected"),
        svg("svg_private_png_path", "an <image> pointing at a private PNG by absolute path",
            f'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="{s}/private.png" '
            'width="8" height="8"/></svg>', "rejected"),
        reply("reply_backtick_flood", "90,000 unclosed fences in a reply (quadratic extraction)",
              "```" * 90000, "no_image"),
        reply("reply_svg_open_flood", "60,000 '<svg' with no end in a reply", "<svg" * 60000, "no_image"),
    ]
    return cases
