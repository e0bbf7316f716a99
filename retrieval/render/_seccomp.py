"""Seccomp filters of the render sandbox, compiled to classic BPF in pure Python.

Two filters, both built here and nowhere else:

* ``baseline_filter()`` is handed to bubblewrap (``--seccomp FD``) by
  ``retrieval.render.bwrap`` and holds for every process in the sandbox, the
  trusted supervisor included: no ptrace, no reading or writing another
  process's memory, no kernel keyrings, no eBPF, no perf events, no mounts or
  new root, no kexec or modules, no pidfd signals or fd theft, no io_uring
  (whose requests bypass seccomp), no clock or hostname changes;
* ``program_filter(pid)`` is installed by the supervisor (``_runner.py``) in the
  child that runs the model's program, on top of the baseline: no new
  processes (``fork``/``vfork``/``clone`` without ``CLONE_THREAD``), no
  ``execve``, no new namespaces, and signals only to its own pid.

A call refused with ``KILL`` ends the whole process with SIGSYS, so a program
that swallows errors cannot carry on and report success; ``clone3`` answers
ENOSYS (its flags live in memory BPF cannot read) and the C library falls back
to ``clone``, whose flags BPF can check; signals to other pids answer EPERM.

Why pure Python: libseccomp is not on every machine, and the runner must load
this file inside the sandbox with the standard library only.  Syscall numbers
are tabled for x86_64 and aarch64 (checked against libseccomp by the tests
where it is installed); on any other architecture ``supported()`` is False and
the sandbox reports an isolation level without seccomp.

    data = baseline_filter()          # bytes of struct sock_filter[]
    install(program_filter(os.getpid()))   # in the process to confine
"""

from __future__ import annotations

import os
import struct

# struct seccomp_data offsets
_NR, _ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # little-endian: the low 32 bits come first


# classic BPF opcodes
_LD_ABS = 0x20      # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15         # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35         # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45        # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06         # BPF_RET | BPF_K

KILL = 0x80000000   # SECCOMP_RET_KILL_PROCESS
ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38

CLONE_THREAD = 0x00010000
CLONE_NEWUSER = 0x10000000
# every CLONE_NEW* flag: NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NS_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000

ARCHES = {
    "x86_64": 0xC000003E,   # AUDIT_ARCH_X86_64
    "aarch64": 0xC00000B7,  # AUDIT_ARCH_AARCH64
}

# Syscalls no drawing program needs and that reach outside a sandbox or into the kernel's attack surface.
_DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
           "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open", "keyctl", "add_key",
           "request_key", "setns", "pidfd_send_signal", "pidfd_getfd", "init_module", "finit_module",
           "delete_module", "reboot", "swapon", "swapoff", "sethostname", "setdomainname", "acct",
           "userfaultfd", "open_by_handle_at", "name_to_handle_at", "kcmp", "iopl", "ioperm",
           "clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "quotactl", "lookup_dcookie",
           "io_uring_setup", "io_uring_enter", "io_uring_register", "open_tree", "move_mount",
           "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "syslog", "vhangup",
           "fanotify_init", "uselib")

SYSCALLS = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kexec_load": 246,
        "kexec_file_load": 320, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248, "request_key": 249,
        "setns": 308, "unshare": 272, "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
        "swapoff": 168, "sethostname": 170, "setdomainname": 171, "acct": 163, "userfaultfd": 323,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "kcmp": 312, "iopl": 172, "ioperm": 173,
        "clock_settime": 227, "settimeofday": 164, "adjtimex": 159, "clock_adjtime": 305,
        "quotactl": 179, "lookup_dcookie": 212, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "mount_setattr": 442, "syslog": 103, "vhangup": 153,
        "fanotify_init": 300, "uselib": 134, "clone": 56, "clone3": 435, "fork": 57, "vfork": 58,
        "execve": 59, "execveat": 322, "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "mknod": 133, "mknodat": 259,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kexec_load": 104,
        "kexec_file_load": 294, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "bpf": 280,
        "perf_event_open": 241, "keyctl": 219, "add_key": 217, "request_key": 218, "setns": 268,
        "unshare": 97, "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224,
        "swapoff": 225, "sethostname": 161, "setdomainname": 162, "acct": 89, "userfaultfd": 282,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "kcmp": 272, "clock_settime": 112,
        "settimeofday": 170, "adjtimex": 171, "clock_adjtime": 266, "quotactl": 60,
        "lookup_dcookie": 18, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "syslog": 116, "vhangup": 58, "fanotify_init": 262,
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "kill": 129, "tkill": 130,
        "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240, "mknodat": 33,
    },
}


def machine() -> str:
    return os.uname().machine  # not platform.machine(): importing platform costs ~10 ms per render


def supported(arch: str | None = None) -> bool:
    return (arch or machine()) in SYSCALLS


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _ret(action: int) -> list:
    return [_ins(_RET, action)]


def _rule(nr: int, body: list) -> list:
    """If the syscall number is ``nr`` run ``body`` (which must return), else skip it."""
    if len(body) > 255:
        raise ValueError("seccomp rule body too long for a BPF jump")
    return [_ins(_JEQ, nr, 0, len(body))] + body


def _flags_rule(nr: int, arg: int, deny_mask: int, deny_action: int, need: int | None,
                need_missing_action: int) -> list:
    """Refuse ``nr`` when its flag argument has a bit of ``deny_mask`` (``deny_action``), or
    lacks the bit ``need`` (``need_missing_action``); otherwise allow it."""
    body = [_ins(_LD_ABS, _arg_lo(arg)),
            _ins(_JSET, deny_mask, 0, 1), _ins(_RET, deny_action)]
    if need is not None:
        body += [_ins(_JSET, need, 1, 0), _ins(_RET, need_missing_action)]
    body += [_ins(_RET, ALLOW)]
    return _rule(nr, body)


def _equals_rule(nr: int, arg: int, value: int, other_action: int) -> list:
    """Allow ``nr`` only when its argument ``arg`` equals ``value``."""
    body = [_ins(_LD_ABS, _arg_lo(arg)), _ins(_JEQ, value & 0xFFFFFFFF, 0, 1), _ins(_RET, ALLOW),
            _ins(_RET, other_action)]
    return _rule(nr, body)


def _assemble(arch: str, rules: list[list]) -> bytes:
    audit_arch = ARCHES[arch]
    prog = [_ins(_LD_ABS, _ARCH), _ins(_JEQ, audit_arch, 1, 0), _ins(_RET, KILL),
            _ins(_LD_ABS, _NR)]
    if arch == "x86_64":  # the x32 ABI shares the arch value: refuse its numbers outright
        prog += [_ins(_JGE, 0x40000000, 0, 1), _ins(_RET, KILL)]
    for rule in rules:
        # every rule that loads an argument returns, so the accumulator holds nr for the next one
        prog += rule
    prog += _ret(ALLOW)
    if len(prog) > 4096:
        raise ValueError("seccomp program too long")
    return b"".join(struct.pack("=HBBI", *i) for i in prog)


def _denied_rules(table: dict[str, int]) -> list[list]:
    return [_rule(table[name], _ret(KILL)) for name in _DENIED if name in table]


def baseline_filter(arch: str | None = None) -> bytes:
    """The filter for the whole sandbox (given to bubblewrap)."""
    arch = arch or machine()
    t = SYSCALLS[arch]
    rules = _denied_rules(t)
    # The supervisor may make one user namespace for the program (and nothing else);
    # no process may clone itself into new namespaces.
    rules.append(_equals_rule(t["unshare"], 0, CLONE_NEWUSER, KILL))
    rules.append(_flags_rule(t["clone"], 0, CLONE_NS_FLAGS, KILL, None, ALLOW))
    rules.append(_rule(t["clone3"], _ret(_ERRNO | ENOSYS)))
    return _assemble(arch, rules)


def program_filter(pid: int, arch: str | None = None) -> bytes:
    """The filter for the process that runs model code (installed by the supervisor)."""
    arch = arch or machine()
    t = SYSCALLS[arch]
    rules = _denied_rules(t)
    rules += [_rule(t[name], _ret(KILL)) for name in ("unshare", "setns", "execve", "execveat")]
    rules += [_rule(t[name], _ret(KILL)) for name in ("fork", "vfork") if name in t]
    # threads yes, processes no: clone must carry CLONE_THREAD and no namespace flag
    rules.append(_flags_rule(t["clone"], 0, CLONE_NS_FLAGS, KILL, CLONE_THREAD, KILL))
    rules.append(_rule(t["clone3"], _ret(_ERRNO | ENOSYS)))
    # signals: to itself only (its own pid as the first argument; no groups, no -1)
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        rules.append(_equals_rule(t[name], 0, pid, _ERRNO | EPERM))
    rules += [_rule(t[name], _ret(_ERRNO | EPERM)) for name in ("tkill", "pidfd_open", "mknod", "mknodat")
              if name in t]
    return _assemble(arch, rules)


def install(program: bytes) -> None:
    """Install ``program`` on the calling thread (and its future threads) with no_new_privs.
    Raises OSError when the kernel refuses."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
