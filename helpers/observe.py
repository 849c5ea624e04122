"""What a process, or one thread of it, is doing right now, read from /proc.

A thread that blocks in a system call is put to sleep by the kernel. Three files tell us where:

    /proc/<pid>/task/<tid>/stat      state letter: R running, S sleeping, D disk sleep, Z zombie
    /proc/<pid>/task/<tid>/syscall   "288 0x3 0x7ffc... ..." = syscall number and its raw arguments
    /proc/<pid>/task/<tid>/wchan     the kernel function the thread sleeps in (e.g. inet_csk_accept)

`snapshot()` reads them once; `wait_until_blocked()` polls them with a timeout, so a notebook never
waits with a fixed sleep. Syscall numbers differ between architectures: tables for x86_64 and
aarch64 cover the calls this course meets. Introduced in 00-start-here.
"""

from __future__ import annotations

import os
import platform
import struct
import time
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["SLEEP_CALLS", "SYSCALLS", "ThreadSnapshot", "pausing", "snapshot", "syscalls_visible", "wait_until",
           "wait_until_blocked"]

_X86_64 = {
    0: "read", 1: "write", 3: "close", 7: "poll", 19: "readv", 20: "writev", 23: "select",
    34: "pause", 35: "nanosleep", 40: "sendfile", 41: "socket", 42: "connect", 43: "accept",
    44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 48: "shutdown", 49: "bind",
    50: "listen", 51: "getsockname", 61: "wait4", 128: "rt_sigtimedwait", 130: "rt_sigsuspend",
    202: "futex", 230: "clock_nanosleep", 232: "epoll_wait", 257: "openat", 270: "pselect6",
    271: "ppoll", 275: "splice", 281: "epoll_pwait", 288: "accept4", 299: "recvmmsg",
    307: "sendmmsg", 441: "epoll_pwait2",
}
_AARCH64 = {
    22: "epoll_pwait", 56: "openat", 57: "close", 63: "read", 64: "write", 65: "readv", 66: "writev",
    71: "sendfile", 72: "pselect6", 73: "ppoll", 76: "splice", 98: "futex", 101: "nanosleep",
    115: "clock_nanosleep", 133: "rt_sigsuspend", 137: "rt_sigtimedwait", 198: "socket", 200: "bind",
    201: "listen", 202: "accept", 203: "connect", 204: "getsockname", 206: "sendto", 207: "recvfrom",
    210: "shutdown", 211: "sendmsg", 212: "recvmsg", 242: "accept4", 243: "recvmmsg", 260: "wait4",
    269: "sendmmsg", 441: "epoll_pwait2",
}
SYSCALLS: dict[int, str] = {"x86_64": _X86_64, "aarch64": _AARCH64}.get(platform.machine(), {})

# Calls whose first argument is the file descriptor they act on.
_FD_CALLS = {
    "read", "write", "readv", "writev", "close", "sendfile", "connect", "accept", "accept4", "sendto",
    "recvfrom", "sendmsg", "recvmsg", "shutdown", "bind", "listen", "getsockname", "recvmmsg", "sendmmsg",
    "epoll_wait", "epoll_pwait", "epoll_pwait2",
}
_POLL_CALLS = {"poll", "ppoll"}
# Where a process waits for time to pass or for a descriptor: time.sleep(), select, poll, epoll.
SLEEP_CALLS = {"clock_nanosleep", "nanosleep", "select", "pselect6", "poll", "ppoll", "epoll_wait", "epoll_pwait"}
_POLLFD = struct.Struct("ihh")  # struct pollfd { int fd; short events; short revents; }

# Where a thread sleeps when it is not in a socket call of ours: waiting for the GIL or a lock.
_NOT_A_CALL = {"futex"}


@dataclass(frozen=True)
class ThreadSnapshot:
    """One reading of one thread. `syscall` is None when the thread is not inside a system call."""

    pid: int
    tid: int
    state: str  # R, S, D, Z, T, ... or "gone"
    syscall: str | None = None
    args: tuple[int, ...] = ()
    wchan: str = ""
    poll_fds: tuple[int, ...] = ()

    @property
    def sleeping(self) -> bool:
        return self.state in ("S", "D")

    @property
    def fd(self) -> int:
        """The first argument: for the socket calls this course watches, the file descriptor."""
        return self.args[0] if self.args else -1

    @property
    def shown_args(self) -> str:
        """`fd=3` for calls on one descriptor, `fds=[3]` for poll, `...` where the args are no fd."""
        if self.syscall in _FD_CALLS:
            return f"fd={self.fd}"
        if self.poll_fds:
            return f"fds={list(self.poll_fds)}"
        return "..."

    def describe(self) -> str:
        """`blocked in accept4(fd=3), sleeping in inet_csk_accept`, or what else the thread does."""
        if self.state == "gone":
            return "exited"
        if self.sleeping and self.syscall:
            where = f", sleeping in {self.wchan}" if self.wchan and self.wchan != "0" else ""
            return f"blocked in {self.syscall}({self.shown_args}){where}"
        return {"R": "running", "Z": "exited (zombie)", "T": "stopped"}.get(self.state, f"state {self.state}")


def pausing(pid: int) -> bool:
    """Is the main thread asleep in a waiting call (time.sleep, select, poll)? Where /proc hides
    system calls (no ptrace access), being asleep at all must do. A retry's backoff looks like this."""
    snap = snapshot(pid)
    if snap.syscall is None:
        return snap.state == "S"
    return snap.sleeping and snap.syscall in SLEEP_CALLS


def syscalls_visible(pid: int | None = None) -> bool:
    """True if /proc shows system calls here (Linux with /proc/<pid>/syscall, a known architecture)."""
    path = f"/proc/{pid or os.getpid()}/syscall"
    try:
        with open(path) as f:
            f.read()
    except OSError:
        return False
    return bool(SYSCALLS)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ""


def snapshot(pid: int, tid: int | None = None) -> ThreadSnapshot:
    """Read state, system call and wchan of one thread (the main thread if tid is None)."""
    tid = tid or pid
    base = f"/proc/{pid}/task/{tid}"
    stat = _read(f"{base}/stat")
    if not stat:
        return ThreadSnapshot(pid, tid, "gone")
    state = stat.rsplit(")", 1)[1].split()[0]
    syscall, args = None, ()
    fields = (_read(f"{base}/syscall") or "").split()
    if fields and fields[0] not in ("running", "-1"):
        try:
            number = int(fields[0])
            args = tuple(int(a, 16) for a in fields[1:7])
            syscall = SYSCALLS.get(number, f"syscall {number}")
        except ValueError:
            pass
    poll_fds = _poll_fds(pid, args) if syscall in _POLL_CALLS else ()
    return ThreadSnapshot(pid, tid, state, syscall, args, _read(f"{base}/wchan") or "", poll_fds)


def _poll_fds(pid: int, args: tuple[int, ...]) -> tuple[int, ...]:
    """The descriptors a thread polls: read its struct pollfd array from /proc/<pid>/mem."""
    address, count = args[0], args[1]
    if not 0 < count <= 16:
        return ()
    try:
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mem.seek(address)
            raw = mem.read(_POLLFD.size * count)
    except (OSError, ValueError, OverflowError):
        return ()
    return tuple(fd for fd, _, _ in _POLLFD.iter_unpack(raw[: _POLLFD.size * count]))


def wait_until(predicate, timeout: float, interval: float = 0.0005, max_interval: float = 0.005):
    """Poll `predicate()` until it returns something truthy; return that, or None on timeout.

    The interval starts small and grows, so a quick change is seen within a millisecond and a slow
    one costs little CPU. The helpers wait for a state this way, or on the Future of a call.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


def blocked_in_call(pid: int, tid: int, own_fds: Collection[int] = ()) -> ThreadSnapshot | None:
    """The thread's snapshot if it sleeps in a system call that is not a puppet's own plumbing.

    `own_fds` are a puppet's own pipes: sleeping in read() on the command pipe means "idle", and in
    write() on the reply pipe means handing back a large result (a pipe holds only 64 KiB); neither
    is the call being watched. futex means waiting for the GIL or a lock, never a socket call.
    """
    snap = snapshot(pid, tid)
    if not snap.sleeping or snap.syscall is None or snap.syscall in _NOT_A_CALL:
        return None
    if snap.syscall in ("read", "write") and snap.fd in own_fds:
        return None
    return snap


def wait_until_blocked(pid: int, tid: int | None = None, timeout: float = 5.0, own_fds: Collection[int] = ()):
    """Wait until the thread is seen sleeping in a system call twice in a row; return that snapshot.

    Two equal readings rule out a thread caught for an instant in some unrelated call on its way.
    Returns None on timeout.
    """
    tid = tid or pid
    previous: list[ThreadSnapshot | None] = [None]

    def settled():
        snap = blocked_in_call(pid, tid, own_fds)
        stable = snap is not None and snap == previous[0]
        previous[0] = snap
        return snap if stable else None

    return wait_until(settled, timeout)
