"""Checkers for the naming exercises: removing a stale socket file safely, and asking the kernel who
connected to an abstract name. Introduced in 02-bind-and-unlink.

`remove_if_stale(path)` runs five times, in a random order, against paths that all look alike:

    a live server's socket file    must stay, and the server must still be reachable
    a busy live server             its queue is full (a blocking probe would wait): stays; answer within 1 s
    a stale socket file            (its server is gone, connect gets ECONNREFUSED) must be removed
    nothing at all                 nothing to do: False, no exception
    a regular file                 connect gets ECONNREFUSED here too, but it is someone's data: it stays

`peer_uid(name)` listens on an abstract name; a client puppet connects (as root: as nobody, then as
a user whose gid differs from its uid; and as the notebook's own user), and the function must
return that client's uid.
"""

from __future__ import annotations

import os
import pwd
import socket
import uuid

from helpers.exercises.kit import is_int, limit, ran, scratch_path, shown, started
from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome
from helpers.kernel_view import unix_sockets
from helpers.observe import wait_until
from helpers.puppet import Puppet
from helpers.socket_dir import workspace

__all__ = ["check_peer_uid", "check_remove_if_stale"]
LESSON = "02"  # the lesson whose exercises these are: the progress view in 00 counts them there

_REGULAR_CONTENT = "someone's notes: do not delete\n"


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def _stale_socket_file(path: str) -> None:
    """A socket file whose socket is gone: bind, then close (exactly what a crashed server leaves)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(path)


def _content(path: str) -> str:
    with open(path) as f:
        return f.read()


def _bool_result(report: Report, outcome: Outcome, what: str) -> bool | None:
    """The function's True/False, or None after reporting why there is none."""
    if not ran(report, outcome, what):
        return None
    if not isinstance(outcome.value, bool):
        report.fail(f"{what}: your function returned {shown(outcome.value)}: return True if you removed the file, "
                    "else False")
        return None
    return outcome.value


def _scenario_live(report: Report, remove_if_stale, path: str, busy: bool) -> None:
    """A live server at `path`; `busy`: its accept queue is full, so only a non-blocking probe returns."""
    what = "a live server with a full accept queue" if busy else "a live server's path"
    with Puppet("exercise-server") as server, Puppet("exercise-client") as client:
        listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(0 if busy else 16)
        if busy:
            client.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path)  # the one connection it queues
        inode = os.stat(path).st_ino
        outcome = report.run(remove_if_stale, path, timeout=limit(1.0))
        if outcome.timed_out and busy:
            report.fail(f"{what}: your function did not return within {outcome.timeout:.1f} s: a blocking connect to "
                        "a full queue waits until the server accepts. Probe with a non-blocking socket "
                        "(setblocking(False)): a busy server answers EAGAIN, which also means a live server")
            return
        value = _bool_result(report, outcome, what)
        still_there = os.path.exists(path) and os.stat(path).st_ino == inode
        if not still_there:
            report.fail(f"{what}: its socket file was removed: a server still listens there and now nobody can "
                        "reach it. Only ECONNREFUSED means stale; a connect that succeeds, or EAGAIN (a full "
                        "queue), means the path is in use: leave it")
        elif value is not None:
            report.check(value is False, f"{what}: the socket file was left alone (you returned False)",
                         f"{what}: the socket file stayed, but you returned True: return True only when you "
                         "removed the file")
        if busy and value is not None:
            report.check(outcome.seconds < 1.0, f"{what}: you answered in {outcome.seconds:.2f} s, without waiting",
                         f"{what}: you took {outcome.seconds:.2f} s to answer: probe without blocking "
                         "(setblocking(False)), EAGAIN comes at once")


def _scenario_stale(report: Report, remove_if_stale, path: str) -> None:
    _stale_socket_file(path)
    value = _bool_result(report, report.run(remove_if_stale, path, timeout=limit()), "a stale socket file")
    if value is not None:
        gone = not os.path.exists(path)
        report.check(gone and value is True,
                     "a stale socket file (nobody listening, connect gets ECONNREFUSED) was removed; you returned True",
                     "a stale socket file was left in place: connect to it, and when that fails with "
                     "ConnectionRefusedError (ECONNREFUSED) nobody listens there: os.unlink it"
                     if not gone else
                     "the stale socket file was removed, but you returned False: return True when you removed it")


def _scenario_missing(report: Report, remove_if_stale, path: str) -> None:
    outcome = report.run(remove_if_stale, path, timeout=limit())
    if isinstance(outcome.error, FileNotFoundError):
        report.fail("a path where nothing exists made your function raise FileNotFoundError: ENOENT "
                    "means there is nothing to remove, return False")
        return
    value = _bool_result(report, outcome, "a path where nothing exists")
    if value is not None:
        report.check(value is False, "a path where nothing exists: you returned False, no exception",
                     "a path where nothing exists: you returned True, but there was nothing to remove")


def _scenario_regular(report: Report, remove_if_stale, path: str) -> None:
    with open(path, "w") as f:
        f.write(_REGULAR_CONTENT)
    value = _bool_result(report, report.run(remove_if_stale, path, timeout=limit()), "a regular file")
    if value is not None:
        intact = os.path.isfile(path) and _content(path) == _REGULAR_CONTENT
        report.check(intact and value is False,
                     "a regular file at the path was left alone (you returned False)",
                     "a regular file was removed: connect to a regular file also fails with ECONNREFUSED, so "
                     "check stat.S_ISSOCK(os.stat(path).st_mode) before you unlink anything"
                     if not intact else
                     "the regular file stayed, but you returned True: return True only when you removed a file")


@checker("Exercise 1: remove_if_stale(path)")
def check_remove_if_stale(report: Report, remove_if_stale) -> None:
    scenarios = [
        lambda path: _scenario_live(report, remove_if_stale, path, busy=False),
        lambda path: _scenario_live(report, remove_if_stale, path, busy=True),
        lambda path: _scenario_stale(report, remove_if_stale, path),
        lambda path: _scenario_missing(report, remove_if_stale, path),
        lambda path: _scenario_regular(report, remove_if_stale, path),
    ]
    report.rng.shuffle(scenarios)  # and every path looks alike: the name tells nothing
    for scenario in scenarios:
        with scratch_path("srv") as path:
            scenario(path)


def _listening(proc_name: str) -> bool:
    return any(s["path"] == proc_name and s["state"] == "LISTEN" for s in unix_sockets().values())


def _serve_once(report: Report, peer_uid, user: str | None) -> None:
    """Run peer_uid(name) while a client puppet running as `user` connects to `name`."""
    name = workspace().abstract(_name("peer"))
    at = "@" + name[1:]  # how /proc/net/unix and ss show an abstract name
    with Puppet("exercise-client", user=user) as client:
        run = report.background(peer_uid, name, timeout=limit(1.0))
        listening = started(run) and wait_until(lambda: _listening(at) or run.done(), limit(1.0)) and _listening(at)
        if listening:
            client.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(name)
        outcome = run.join()
        client_uid, client_pid = client.uid, client.pid
    client_gid = pwd.getpwuid(client_uid).pw_gid
    who = f"a client running as {user or 'the notebook user'} (uid {client_uid}, gid {client_gid})"
    if not listening:
        report.check(False, "", f"nothing listened on the abstract name: your function "
                                f"{outcome.problem() or f'returned {outcome.value!r:.60}'}. Bind the name you are given "
                                "(it starts with a NUL byte: no file), then listen() and accept()")
        return
    if not ran(report, outcome, f"{who} connected"):
        return
    value = outcome.value
    if value == client_uid and is_int(value):
        report.ok(f"{who} connected; you returned {value}")
    elif isinstance(value, tuple | list):
        report.check(False, "", f"{who} connected; you returned {value!r:.60}: return only the uid, the second of "
                                "the three numbers in struct ucred (pid, uid, gid)")
    elif value == client_gid:
        report.fail(f"{who} connected; you returned {value}, the client's gid: struct ucred is (pid, uid, gid), "
                    "the uid is the second number")
    elif value == client_pid:
        report.check(False, "", f"{who} connected; you returned {value}, the client's pid: struct ucred is "
                                "(pid, uid, gid), the uid is the second number")
    elif value == os.getuid():
        report.check(False, "", f"{who} connected; you returned {value}, your own uid: SO_PEERCRED on the "
                                "accepted socket gives the peer's")
    else:
        report.check(False, "", f"{who} connected; you returned {value!r:.60}, expected {client_uid}: unpack "
                                "getsockopt(SOL_SOCKET, SO_PEERCRED, 12) of the accepted socket with struct "
                                "'3i' as (pid, uid, gid)")


def _user_with_another_gid(rng) -> str | None:
    """A user whose gid differs from its uid (games 5/60 on Debian), so that returning the gid is seen."""
    users = [u.pw_name for u in pwd.getpwall() if u.pw_uid != u.pw_gid and u.pw_uid != 0]
    return rng.choice(sorted(users)) if users else None


@checker("Exercise 2: peer_uid(name)")
def check_peer_uid(report: Report, peer_uid) -> None:
    users = ["nobody", _user_with_another_gid(report.rng) or "nobody", None] if os.geteuid() == 0 else [None]
    for user in users:
        before = len(report.lines)
        _serve_once(report, peer_uid, user)
        if any(ok is False for ok, _ in report.lines[before:]):
            return
    if os.geteuid() != 0:
        report.note("the notebook does not run as root, so every client runs as you: a function returning its own "
                    "uid would pass here too. SO_PEERCRED gives the peer's uid")
