"""Checkers for the exercises on creating sockets (introduced in 01-socket-creation).

Each checker sets up a real process (a puppet) with known descriptors, runs the student's function
in a child process against it, and compares the answer with what the kernel says or does:

    check_socket_fds(socket_fds)              which descriptors of a process are sockets?
    check_next_fd(next_fd)                    which number will the next socket() get?
    check_default_protocol(default_protocol)  what does protocol 0 become for a domain and a type?
"""

from __future__ import annotations

import socket
from socket import AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_RDM, SOCK_SEQPACKET, SOCK_STREAM

from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, run_student
from helpers.kernel_view import fds
from helpers.puppet import Puppet

__all__ = ["check_default_protocol", "check_next_fd", "check_socket_fds"]

TIMEOUT = 3.0  # seconds a student's function may take: each one only reads /proc or makes one socket


def _ran(report: Report, outcome: Outcome, call: str) -> bool:
    """Record a failed check if the function hung or raised; True if it returned normally."""
    if not outcome.ok:
        report.check(False, "", f"{call} {outcome.problem()}")
    return outcome.ok


def _left_open(report: Report, outcome: Outcome) -> None:
    if outcome.left_open:
        report.check(False, "", f"your function left {len(outcome.left_open)} socket(s) open: close every "
                                "socket you create (or use `with socket.socket(...) as s:`)")


def _what(table: dict[int, str], fd: int) -> str:
    """How a descriptor looks in /proc/<pid>/fd, without the inode number (it changes every run)."""
    target = table.get(fd)
    if target is None:
        return "not open in that process"
    return target.split(":[", 1)[0] if ":[" in target else target


def _int_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


# -- Exercise: socket_fds(pid) ------------------------------------------------------------------


@checker("Exercise: socket_fds(pid), the descriptors of a process that are sockets")
def check_socket_fds(report: Report, socket_fds) -> None:
    with Puppet("exercise") as p:
        made = [p.socket(AF_UNIX, SOCK_STREAM) for _ in range(3)]  # fds 3, 4, 5
        made[1].close()  # fd 4 is free again, and the socket pair below takes it
        p.socketpair(AF_UNIX, SOCK_STREAM)
        p.socket(AF_INET, SOCK_DGRAM)
        table = fds(p.pid)
        truth = sorted(fd for fd, target in table.items() if target.startswith("socket:"))
        outcome = run_student(socket_fds, p.pid, timeout=TIMEOUT)
        if not _ran(report, outcome, f"socket_fds({p.pid})"):
            return
        got = outcome.value
        if isinstance(got, list | tuple | set) and got and all(isinstance(v, str) for v in got):
            report.check(False, "", f"you returned strings {sorted(got)!r}: return numbers, e.g. int(name)")
            return
        if not report.check(_int_list(got), "you returned a list of ints",
                            f"you returned {got!r} ({type(got).__name__}): return a sorted list of ints"):
            return
        extra = sorted(set(got) - set(truth))
        missing = sorted(set(truth) - set(got))
        report.check(not extra, "no descriptor that is not a socket",
                     "not sockets: " + ", ".join(f"fd {fd} ({_what(table, fd)})" for fd in extra)
                     + ": keep only the descriptors whose link starts with 'socket:'"
                     + (" (read /proc/<pid>/fd of the pid you were given, not /proc/self/fd)"
                        if set(extra) - set(table) else ""))
        report.check(not missing, f"all {len(truth)} sockets found: {truth}",
                     f"missed the socket(s) at {missing}: look at every entry of /proc/<pid>/fd")
        if not extra and not missing:
            report.check(got == truth, "in ascending order", f"{got} is not sorted: return sorted(...)")
        _left_open(report, outcome)

    with Puppet("exercise") as p:
        outcome = run_student(socket_fds, p.pid, timeout=TIMEOUT)
        if _ran(report, outcome, f"socket_fds({p.pid}) for a process without sockets"):
            report.check(outcome.value == [], "a process without sockets gives []",
                         f"a process holding no socket gave {outcome.value!r}, expected []")


# -- Exercise: next_fd(pid) ---------------------------------------------------------------------


def _hint_next_fd(answer, table: dict[int, str]) -> str:
    if isinstance(answer, int) and answer == max(table) + 1:
        return " (one past the highest: the kernel takes the LOWEST free number, and a hole counts)"
    if isinstance(answer, int) and answer == len(table):
        return " (the number of open descriptors: that is the lowest free one only when there are no holes)"
    return " (look for the smallest number, from 0 up, that is not in /proc/<pid>/fd)"


@checker("Exercise: next_fd(pid), the number the next socket() will get")
def check_next_fd(report: Report, next_fd) -> None:
    with Puppet("exercise") as p:
        held = []

        def ask(situation: str) -> bool:
            """Ask the student, then let the kernel answer by really creating a socket."""
            table = fds(p.pid)
            outcome = run_student(next_fd, p.pid, timeout=TIMEOUT)
            if not _ran(report, outcome, f"next_fd({p.pid}) {situation}"):
                return False
            made = p.socket(AF_UNIX, SOCK_STREAM)
            held.append(made)
            answer, truth = outcome.value, made.fileno()
            open_now = ", ".join(str(fd) for fd in table)
            passed = report.check(
                answer == truth and isinstance(answer, int),
                f"{situation}: you said {answer}, and socket() gave {truth}",
                f"{situation} (open: {open_now}): you said {answer!r}, but socket() gave {truth}"
                + _hint_next_fd(answer, table),
            )
            _left_open(report, outcome)
            return passed

        if not ask("in a new process"):
            return
        more = [p.socket(AF_UNIX, SOCK_STREAM) for _ in range(3)]  # 4, 5, 6
        hole = more[0].fileno()
        more[0].close()
        if not ask(f"after closing fd {hole}"):
            return
        hole = held[0].fileno()
        held[0].close()
        ask(f"after closing fd {hole} too")


# -- Exercise: default_protocol(family, type) ---------------------------------------------------

_CASES = [
    (AF_INET, SOCK_STREAM), (AF_INET, SOCK_DGRAM), (AF_INET6, SOCK_STREAM),
    (AF_UNIX, SOCK_STREAM), (AF_UNIX, SOCK_DGRAM), (AF_UNIX, SOCK_SEQPACKET), (AF_UNIX, SOCK_RDM),
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
    for family, kind in _CASES:
        truth = _kernel_default(family, kind)
        call = f"default_protocol({family.name}, {kind.name})"
        outcome = run_student(default_protocol, family, kind, timeout=TIMEOUT)
        if not outcome.ok:
            if truth is None and isinstance(outcome.error, OSError):
                report.check(False, "", f"{call} raised {type(outcome.error).__name__}: {outcome.error}: "
                                        "the kernel refuses this combination; catch OSError and return None")
            else:
                _ran(report, outcome, call)
            return
        answer = outcome.value
        if truth is None:
            good = answer is None
            hint = "the kernel refuses this combination (socket() raises OSError): return None"
        else:
            good = answer == truth and isinstance(answer, int) and not isinstance(answer, bool)
            hint = ("ask the kernel: getsockopt(SOL_SOCKET, SO_PROTOCOL) on a socket made with protocol 0"
                    + (", AF_UNIX sockets use no network protocol" if family == AF_UNIX else ""))
        if isinstance(answer, str) and answer.startswith("<socket.socket"):
            shown, hint = "the socket itself", "return its protocol number (an int) and close the socket"
        else:
            shown = repr(answer)
        if not report.check(good, f"{call} -> {truth!r}", f"{call} returned {shown}, the kernel says {truth!r}: {hint}"):
            return
        _left_open(report, outcome)
