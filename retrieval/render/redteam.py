"""Red-team corpus: hostile programs the render sandbox must contain.

Used by ``tests/retrieval/test_retrieval_render_redteam.py`` (which asserts that
every case fails with an expected status and that nothing outside the sandbox
changed) and by ``bench/render.py`` (which prints the containment rate for
docs/benchmarks.md).  The programs are plain text; nothing here runs them.

``redteam_corpus(repo, sentinel_dir)`` builds the cases with real target paths:
``repo`` is the project checkout (its files must stay untouched), ``sentinel_dir``
holds a ``keep.txt`` the programs try to delete or move.  Every file a program
tries to create outside the sandbox is named ``zf_pwned*`` (see ``CANARY_GLOB``)
so a test can look for it afterwards.  Add a case when an escape is found.

The second half, ``retrieval.render.redteam_os``, aims at the OS-level boundary
(mounts, namespaces, seccomp, rlimits, the status channel, the parent's time and
memory) with ways around the audit hook.  ``kind`` "reply" cases go through
``render_reply`` (the extraction step).

Never run these programs outside the sandbox.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from retrieval.render.redteam_os import CANARY_SECRET, Targets, os_cases  # noqa: F401  (CANARY_SECRET re-exported)

CANARY_GLOB = "zf_pwned*"
# Cases that test the audit hook's own early refusal: without the hook their action is
# harmless and contained inside the sandbox (its own /tmp, its own pids), so they may draw.
HOOK_ONLY_CASES = frozenset({
    "swallow_violation", "frame_walk", "close_channel_then_escape", "swallow_and_exit_zero", "chdir_escape",
    "path_traversal", "write_tmp", "symlink_out_png", "raise_rlimit", "gc_hook_hunt", "marshal_bytecode",
    "code_replace", "ctypes_memory", "kill_scan", "hard_link_system_file", "dirfd_into_fonts",
})


@dataclass(frozen=True)
class RedTeamCase:
    """One hostile program and the statuses that count as contained."""

    name: str
    kind: str                 # "python", "svg" or "reply"
    program: str
    expected: frozenset[str]
    attack: str               # what it tries, in words
    memory_mb: int | None = None  # a larger address space for programs importing big libraries
    # A larger CPU budget where another limit, or a big import, must come first: page
    # faults and imports cost CPU time, and on a slow machine 256 MB of faults or
    # importing pyarrow can outlast a 1 s budget.
    cpu_seconds: int | None = None


def _png_header_b64(width: int, height: int) -> str:
    """Base64 of a PNG signature + IHDR claiming ``width`` x ``height`` (no pixels)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def _py(name: str, attack: str, program: str, *expected: str, memory_mb: int | None = None,
        cpu_seconds: int | None = None) -> RedTeamCase:
    return RedTeamCase(name, "python", program, frozenset(expected), attack, memory_mb, cpu_seconds)


def _svg(name: str, attack: str, program: str, *expected: str) -> RedTeamCase:
    return RedTeamCase(name, "svg", program, frozenset(expected), attack)


def _reply(name: str, attack: str, program: str, *expected: str) -> RedTeamCase:
    return RedTeamCase(name, "reply", program, frozenset(expected), attack)


def redteam_corpus(repo: Path, sentinel_dir: Path, victim_pid: int | None = None, port: int | None = None,
                   hostname: str = "zf-no-such-host") -> list[RedTeamCase]:
    """All cases.  ``victim_pid`` is a process outside that must survive (default: a pid
    no process has), ``port`` a host TCP port that must see no connection."""
    repo, sent = Path(repo).resolve(), Path(sentinel_dir).resolve()
    targets = Targets(str(repo), str(sent), victim_pid or 4_194_000, port or 9, hostname)
    return _hook_cases(repo, sent) + os_cases(targets, _py, _svg, _reply)


def _hook_cases(repo: Path, sent: Path) -> list[RedTeamCase]:
    img = 'from PIL import Image\nImage.new("RGB", (8, 8)).save("out.png")\n'
    ns = 'xmlns="http://www.w3.org/2000/svg"'
    xl = 'xmlns:xlink="http://www.w3.org/1999/xlink"'
    use_levels = "".join(
        f'<g id="a{i}"><use xlink:href="#a{i - 1}"/><use xlink:href="#a{i - 1}" x="0.1"/>'
        f'<use xlink:href="#a{i - 1}" y="0.1"/><use xlink:href="#a{i - 1}" x="0.2"/></g>'
        for i in range(1, 16))
    return [
        # --- files outside the temp dir -------------------------------------------------
        _py("write_tmp", "create a file in /tmp", 'open("/tmp/zf_pwned_write.txt", "w").write("x")',
            "rejected"),
        _py("write_repo", "create a file in the project",
            f'open("{repo}/zf_pwned_repo.txt", "w").write("x")', "rejected"),
        _py("append_project_file", "modify a project source file",
            f'open("{repo}/retrieval/render/__init__.py", "a").write("# zf_pwned")', "rejected"),
        _py("delete_sentinel", "delete a file outside", f'import os\nos.remove("{sent}/keep.txt")',
            "rejected"),
        _py("rename_sentinel", "move a file outside",
            f'import os\nos.rename("{sent}/keep.txt", "{sent}/zf_pwned_moved.txt")', "rejected"),
        _py("chdir_escape", "leave the temp dir, then write relative",
            'import os\nos.chdir("/tmp")\nopen("zf_pwned_chdir.txt", "w").write("x")', "rejected"),
        _py("path_traversal", "write through ../..",
            'from pathlib import Path\nPath("../../../tmp/zf_pwned_traversal.txt").write_text("x")',
            "rejected"),
        _py("symlink_out_png", "make out.png a link to a secret file",
            'import os\nos.symlink("/etc/shadow", "out.png")', "rejected"),
        _py("out_png_directory", "make out.png a directory", 'import os\nos.mkdir("out.png")',
            "no_image"),
        # --- reading the project, the machine, the environment ------------------------
        _py("read_project", "read a project file", f'print(open("{repo}/pyproject.toml").read())',
            "rejected"),
        _py("read_passwd", "read /etc/passwd", 'print(open("/etc/passwd").read())', "rejected"),
        _py("list_repo", "list the project directory", f'import os\nprint(os.listdir("{repo}"))',
            "rejected"),
        _py("parent_environ", "read the parent's environment via /proc",
            'import os\nprint(open(f"/proc/{os.getppid()}/environ").read())', "rejected"),
        _py("print_environ", "print its own environment (secrets must not be there)",
            'import os\nprint(dict(os.environ))\nraise SystemExit(1)', "crashed"),
        # --- network ----------------------------------------------------------------
        _py("socket_connect", "open a TCP connection",
            'import socket\nsocket.create_connection(("1.1.1.1", 80), timeout=1)', "rejected"),
        _py("raw_socket", "use the _socket C module directly",
            'import _socket\ns = _socket.socket()\ns.connect(("127.0.0.1", 22))', "rejected"),
        _py("urllib_fetch", "HTTP request",
            'import urllib.request\nurllib.request.urlopen("http://example.com", timeout=1)', "rejected"),
        # --- processes --------------------------------------------------------------
        _py("subprocess_run", "run a shell command",
            'import subprocess\nsubprocess.run(["touch", "/tmp/zf_pwned_subprocess"])', "rejected"),
        _py("os_system", "os.system", 'import os\nos.system("touch /tmp/zf_pwned_system")', "rejected"),
        _py("obfuscated_system", "os.system hidden from static checks",
            "getattr(__import__('o' + 's'), 'sys' + 'tem')('touch /tmp/zf_pwned_obf')", "rejected"),
        _py("execv", "replace the interpreter with a shell",
            'import os\nos.execv("/bin/sh", ["sh", "-c", "touch /tmp/zf_pwned_exec"])', "rejected"),
        _py("fork_bomb", "fork bomb", "import os\nwhile True:\n    os.fork()", "rejected"),
        _py("fork_exec_direct", "fork through _posixsubprocess, bypassing subprocess's audit event",
            "import _posixsubprocess, os\n"
            '_posixsubprocess.fork_exec([b"/bin/sh", b"-c", b"touch /tmp/zf_pwned_fe"], [b"/bin/sh"], '
            "True, (), None, None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, "
            "None, -1, None)", "rejected"),
        _py("multiprocessing_bomb", "spawn busy worker processes",
            "import multiprocessing as mp\ndef f():\n    while True: pass\n"
            "for _ in range(1000):\n    mp.Process(target=f).start()", "rejected"),
        _py("thread_bomb", "start threads until something breaks",
            "import threading, time\nfor _ in range(100000):\n"
            "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()",
            "crashed", "resource_limit"),
        _py("kill_parent", "signal the parent process", "import os\nos.kill(os.getppid(), 0)", "rejected"),
        # --- escaping the interpreter's guard ------------------------------------------
        _py("ctypes_system", "call libc system() through ctypes",
            'import ctypes\nctypes.CDLL(None).system(b"touch /tmp/zf_pwned_ctypes")', "rejected"),
        _py("ctypes_memory", "read raw memory through ctypes",
            "import ctypes\nctypes.string_at(id(1), 64)", "rejected"),
        _py("raise_rlimit", "lift the memory limit",
            "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", "rejected"),
        _py("gc_hook_hunt", "look for the audit hook through the garbage collector",
            "import gc\nprint(len(gc.get_objects()))", "rejected"),
        _py("marshal_bytecode", "load hand-made bytecode through marshal",
            "import marshal\ncode = marshal.loads(marshal.dumps(compile('1', 'x', 'eval')))",
            "rejected"),
        _py("code_replace", "build a code object with altered bytecode",
            "def f(): pass\ng = f.__code__.replace(co_code=f.__code__.co_code)", "rejected"),
        _py("testcapi", "import CPython's test module for raw memory access", "import _testcapi",
            "rejected", "crashed"),
        _py("frame_walk", "clear the runner's violation records, then write outside",
            "import sys\nf = sys._getframe()\nwhile f is not None:\n"
            "    for v in list(f.f_locals.values()):\n        if isinstance(v, list): v.clear()\n"
            "    f = f.f_back\ntry:\n    open('/tmp/zf_pwned_frames.txt', 'w')\nexcept OSError:\n"
            "    pass\n" + img, "rejected"),
        _py("swallow_violation", "catch the refusal and draw anyway",
            "try:\n    open('/tmp/zf_pwned_swallow.txt', 'w')\nexcept Exception:\n    pass\n" + img,
            "rejected"),
        # --- resources --------------------------------------------------------------
        _py("memory_bomb", "allocate 1 TB at once", "x = bytearray(1 << 40)", "resource_limit"),
        _py("memory_creep", "allocate 10 MB at a time forever",
            "chunks = []\nwhile True:\n    chunks.append(bytearray(10 << 20))", "resource_limit",
            cpu_seconds=20),
        _py("infinite_loop", "spin forever", "while True:\n    pass", "timeout"),
        _py("ignore_sigxcpu", "ignore the CPU-limit signal, then spin",
            "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass",
            "timeout", "resource_limit"),
        _py("sleep_forever", "block without using CPU", "import time\ntime.sleep(1000)", "timeout"),
        _py("huge_file", "write 100 MB into the temp dir",
            'with open("big.bin", "wb") as f:\n    for _ in range(100):\n        f.write(b"0" * (1 << 20))',
            "resource_limit"),
        _py("stdout_flood", "print forever",
            'import sys\nwhile True:\n    sys.stdout.write("A" * 65536)', "resource_limit"),
        _py("giant_image_alloc", "allocate a 100000x100000 image",
            'from PIL import Image\nImage.new("RGB", (100000, 100000)).save("out.png")', "resource_limit"),
        _py("giant_out_png", "save a 5000x5000 image (small file, huge when decoded)",
            'from PIL import Image\nImage.new("L", (5000, 5000)).save("out.png")', "too_large"),
        _py("fake_png", "out.png that is not an image", 'open("out.png", "wb").write(b"not a png")',
            "no_image"),
        _py("stack_smash", "C-stack overflow through unbounded recursion",
            "import sys\nsys.setrecursionlimit(10**9)\ndef f(n): return f(n + 1)\nf(0)",
            "crashed", "resource_limit", "timeout"),
        _py("import_project", "import the project's own code", "import retrieval.render",
            "crashed", "rejected"),
        # --- SVG ------------------------------------------------------------------
        _svg("svg_xxe_file", "external entity reading /etc/passwd",
             '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
             f"<svg {ns}><text>&xxe;</text></svg>", "rejected"),
        _svg("svg_billion_laughs", "entity expansion bomb",
             '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
             '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
             f"<svg {ns}><text>&c;</text></svg>", "rejected"),
        _svg("svg_external_dtd", "DTD fetched over HTTP",
             '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
             f'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg {ns}/>', "rejected"),
        _svg("svg_image_file_href", "embed a local file as an image",
             f'<svg {ns} {xl} width="64" height="64"><image xlink:href="file:///etc/passwd" '
             'width="64" height="64"/></svg>', "rejected"),
        _svg("svg_image_relative_href", "embed a project file by relative path",
             f'<svg {ns} width="64" height="64"><image href="../../..{repo}/pyproject.toml" '
             'width="64" height="64"/></svg>', "rejected"),
        _svg("svg_image_http_href", "fetch cloud metadata",
             f'<svg {ns} width="64" height="64"><image href="http://169.254.169.254/latest/meta-data" '
             'width="64" height="64"/></svg>', "rejected"),
        _svg("svg_css_import", "external style sheet",
             f'<svg {ns}><style>@import url(http://evil.example/x.css);</style>'
             '<rect width="5" height="5"/></svg>', "rejected"),
        _svg("svg_fill_url", "paint server in another document",
             f'<svg {ns}><rect width="5" height="5" fill="url(http://evil.example/p.svg#g)"/></svg>',
             "rejected"),
        _svg("svg_css_escape", "url() hidden behind a CSS escape",
             f'<svg {ns}><rect width="5" height="5" fill="\\75 rl(http://evil.example/p.svg#g)"/></svg>',
             "rejected"),
        _svg("svg_script", "script element", f"<svg {ns}><script>alert(1)</script></svg>", "rejected"),
        _svg("svg_foreign_object", "HTML inside SVG",
             f'<svg {ns}><foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">'
             "x</div></foreignObject></svg>", "rejected"),
        _svg("svg_onload", "event handler", f'<svg {ns} onload="alert(1)"/>', "rejected"),
        _svg("svg_xinclude", "XInclude of a local file",
             f'<svg {ns} xmlns:xi="http://www.w3.org/2001/XInclude">'
             '<xi:include href="file:///etc/passwd" parse="text"/></svg>', "rejected"),
        _svg("svg_deep_nesting", "5000 nested groups",
             f"<svg {ns}>" + "<g>" * 5000 + "</g>" * 5000 + "</svg>", "rejected"),
        _svg("svg_element_flood", "20000 elements", f"<svg {ns}>" + "<g/>" * 20000 + "</svg>", "rejected"),
        _svg("svg_giant_dimensions", "declare a 10^6 x 10^6 canvas",
             f'<svg {ns} width="1000000" height="1000000"><rect width="10" height="10"/></svg>',
             "too_large"),
        _svg("svg_png_bomb", "embedded PNG claiming 100000x100000 pixels",
             f'<svg {ns} width="64" height="64"><image href="data:image/png;base64,'
             f'{_png_header_b64(100000, 100000)}" width="64" height="64"/></svg>', "too_large"),
        _svg("svg_use_bomb", "exponential <use> expansion (4^15 copies)",
             f'<svg {ns} {xl} width="64" height="64"><defs><g id="a0"><rect width="1" height="1"/></g>'
             f'{use_levels}</defs><use xlink:href="#a15"/></svg>', "crashed", "timeout", "resource_limit"),
        _svg("svg_oversized_text", "a megabyte of SVG", f"<svg {ns}><desc>{'x' * 1_000_000}</desc></svg>",
             "too_large"),
    ]
