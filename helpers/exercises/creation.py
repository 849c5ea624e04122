"""Checkers for the exercises on creating sockets (introduced in 01-socket-creation).

Each checker sets up a real process with descriptors drawn at random (sockets among regular
files, pipes, an eventfd, an epoll instance, with holes), runs the student's function against it,
and compares the answer with what the kernel says or does:

    check_socket_fds(socket_fds)              which descriptors of a process are sockets?
    check_next_fd(next_fd)                    which number will the next socket() get?
    check_default_protocol(default_protocol)  what does protocol 0 become for a domain and a type?
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
from socket import AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_STREAM

from helpers import processes
from helpers.exercises.kit import STARTUP, is_int, limit, ran, shown
from helpers.exercises.report import Report, checker
from helpers.kernel_view import fds

__all__ = ["check_default_protocol", "check_next_fd", "check_socket_fds"]
LESSON = "01"  # the lesson whose exercises these are: the progress view in 00 counts them there

TRAPS = ("file", "eventfd", "epoll", "pipe", "null")


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in {"T", "t"}
    except (OSError, IndexError):
        return False


class Holder:
    """A process holding descriptors for the student to look at (`python -m helpers.exercises.holder`).

    The checker's end: `holder.open("socket") -> [5]`, `holder.close(5)`, `holder.pid`."""

    def __init__(self):
        self.proc = processes.start("exercises.holder", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        self._answer(STARTUP)  # "ready": its own pipes are in place, what the student sees is settled

    def _ask(self, line: str, timeout: float = 3.0) -> str:
        """One command, one answer; TimeoutError if the process was stopped, EOFError if it died."""
        try:
            self.proc.stdin.write(f"{line}\n".encode())
            self.proc.stdin.flush()
        except OSError as error:
            raise EOFError("the process is gone") from error
        return self._answer(timeout)

    def _answer(self, timeout: float) -> str:
        if _stopped(self.pid):
            raise TimeoutError("the process is stopped")
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the process does not answer")
        answer = self.proc.stdout.readline()
        if not answer:
            raise EOFError("the process is gone")
        return answer.decode().strip()

    def open(self, kind: str) -> list[int]:
        return [int(n) for n in self._ask(f"open {kind}").split()]

    def close(self, fd: int) -> None:
        self._ask(f"close {fd}")

    def stop(self) -> None:
        processes.stop(self.proc, timeout=1.0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()




def _what(table: dict[int, str], fd: int) -> str:
    """How a descriptor looks in /proc/<pid>/fd, without the inode number (it changes every run)."""
    target = table.get(fd)
    if target is None:
        return "not open in that process"
    return target.split(":[", 1)[0] if ":[" in target else target


def _int_list(value) -> bool:
    return isinstance(value, list) and all(is_int(v) for v in value)


def _fill(holder: Holder, rng, sockets: int, traps: int) -> None:
    """Open `sockets` socket kinds and `traps` other kinds in a random order, then punch a hole or two."""
    kinds = [rng.choice(("socket", "dgram", "pair")) for _ in range(sockets)] + \
        [rng.choice(TRAPS) for _ in range(traps)]
    rng.shuffle(kinds)
    opened = sorted(fd for kind in kinds for fd in holder.open(kind))
    for fd in rng.sample(opened[:-1], k=min(2, len(opened) - 1)):  # holes below the highest
        holder.close(fd)


# -- Exercise: socket_fds(pid) ------------------------------------------------------------------


def _judge_socket_fds(report: Report, got, table: dict[int, str], where: str) -> None:
    truth = sorted(fd for fd, target in table.items() if target.startswith("socket:"))
    if isinstance(got, list | tuple | set) and got and all(isinstance(v, str) for v in got):
        report.fail(f"{where}: you returned strings {sorted(got)!r}: return numbers, e.g. int(name)")
        return
    if not _int_list(got):
        report.fail(f"{where}: you returned {shown(got)}: return a sorted list of ints")
        return
    extra = sorted(set(got) - set(truth))
    missing = sorted(set(truth) - set(got))
    report.check(not extra, f"{where}: no descriptor that is not a socket",
                 f"{where}: not sockets: " + ", ".join(f"fd {fd} ({_what(table, fd)})" for fd in extra)
                 + ": keep only the descriptors whose link starts with 'socket:'"
                 + (" (read /proc/<pid>/fd of the pid you were given, not /proc/self/fd)"
                    if set(extra) - set(table) else ""))
    report.check(not missing, f"{where}: all {len(truth)} sockets found: {truth}",
                 f"{where}: missed the socket(s) at {missing}: look at every entry of /proc/<pid>/fd")
    if not extra and not missing:
        report.check(got == truth, f"{where}: in ascending order", f"{where}: {got} is not sorted: return sorted(...)")


@checker("Exercise: socket_fds(pid), the descriptors of a process that are sockets")
def check_socket_fds(report: Report, socket_fds) -> None:
    scenarios = [("a process with sockets among other descriptors", report.rng.randint(3, 6), 3),
                 ("a process without sockets", 0, 2)]
    for where, sockets, traps in scenarios:
        with Holder() as holder:
            _fill(holder, report.rng, sockets, traps)
            table = fds(holder.pid)
            outcome = report.run(socket_fds, holder.pid, timeout=limit())
            if not ran(report, outcome, f"socket_fds({holder.pid}) for {where}"):
                return
            before = len([ok for ok, _ in report.lines if ok is False])
            _judge_socket_fds(report, outcome.value, table, where)
            if len([ok for ok, _ in report.lines if ok is False]) > before:
                return


# -- Exercise: next_fd(pid) ---------------------------------------------------------------------


def _hint_next_fd(answer, table: dict[int, str]) -> str:
    if not is_int(answer):
        return " (return the number as an int)"
    if table and answer == max(table) + 1:
        return " (one past the highest: the kernel takes the LOWEST free number, and a hole counts)"
    if answer == len(table):
        return " (the number of open descriptors: that is the lowest free one only when there are no holes)"
    if 0 not in table and answer >= 3:
        return " (0, 1 and 2 are numbers like any other: when stdin is closed, 0 is free)"
    return " (look for the smallest number, from 0 up, that is not in /proc/<pid>/fd of that pid)"


@checker("Exercise: next_fd(pid), the number the next socket() will get")
def check_next_fd(report: Report, next_fd) -> None:
    rng = report.rng
    with Holder() as holder:

        def ask(situation: str) -> bool:
            """Ask the student, then let the kernel answer by really creating a socket."""
            table = fds(holder.pid)
            outcome = report.run(next_fd, holder.pid, timeout=limit())
            if not ran(report, outcome, f"next_fd({holder.pid}) {situation}"):
                return False
            truth = holder.open("socket")[0]
            answer = outcome.value
            open_now = ", ".join(str(fd) for fd in table if fd < 100)
            return report.check(
                is_int(answer) and answer == truth,
                f"{situation}: you said {answer}, and socket() gave {truth}",
                f"{situation} (open: {open_now}): you said {shown(answer)}, but socket() gave {truth}"
                + _hint_next_fd(answer, table))

        if not ask("in a new process"):
            return
        _fill(holder, rng, rng.randint(1, 3), rng.randint(1, 3))
        if not ask("after a few opens and closes (a hole)"):
            return
        holder.close(0)
        ask("with stdin (fd 0) closed")


# -- Exercise: default_protocol(family, type) ---------------------------------------------------

_LISTED = [  # the combinations the lesson shows
    (AF_INET, SOCK_STREAM), (AF_INET, SOCK_DGRAM), (AF_INET6, SOCK_STREAM),
    (AF_UNIX, SOCK_STREAM), (AF_UNIX, SOCK_DGRAM), (AF_UNIX, SOCK_SEQPACKET), (AF_UNIX, SOCK_RDM),
]
_UNLISTED = [  # and some it does not: only asking the kernel answers them (the first one always)
    (AF_INET6, SOCK_DGRAM), (AF_INET, SOCK_SEQPACKET), (AF_INET6, SOCK_SEQPACKET), (AF_INET, SOCK_RAW),
    (AF_INET6, SOCK_RDM),
]


def _kernel_default(family, kind) -> int | None:
    """What the kernel answers, asked here and now (no table of ours to go stale)."""
    try:
        with socket.socket(family, kind, 0) as s:
            return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    except OSError:
        return None


@checker("Exercise: default_protocol(family, type), what protocol 0 becomes")
def check_default_protocol(report: Report, default_protocol) -> None:
    cases = report.rng.sample(_LISTED, 5) + [_UNLISTED[0]] + report.rng.sample(_UNLISTED[1:], 2)
    report.rng.shuffle(cases)
    for family, kind in cases:
        truth = _kernel_default(family, kind)
        call = f"default_protocol({family.name}, {kind.name})"
        outcome = report.run(default_protocol, family, kind, timeout=limit())
        if not outcome.ok:
            if truth is None and isinstance(outcome.error, OSError):
                report.fail(f"{call} raised {type(outcome.error).__name__}: {outcome.error}: "
                            "the kernel refuses this combination; catch OSError and return None")
            else:
                ran(report, outcome, call)
            return
        answer = outcome.value
        if truth is None:
            good = answer is None
            hint = "the kernel refuses this combination (socket() raises OSError): return None"
        else:
            good = is_int(answer) and answer == truth
            hint = ("ask the kernel: getsockopt(SOL_SOCKET, SO_PROTOCOL) on a socket made with protocol 0"
                    + (", AF_UNIX sockets use no network protocol" if family == AF_UNIX else ""))
        if repr(answer).startswith("<socket.socket"):
            answer_text, hint = "the socket itself", "return its protocol number (an int) and close the socket"
        else:
            answer_text = repr(answer)
        if not report.check(good, f"{call} -> {truth!r}",
                            f"{call} returned {answer_text}, the kernel says {truth!r}: {hint}"):
            return
