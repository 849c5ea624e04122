"""Checkers for the naming exercises: removing a stale socket file safely, and asking the kernel who
connected to an abstract name. Introduced in 02-bind-and-unlink.

`remove_if_stale(path)` runs four times, each in a fresh child process, against one path each:

    a live server's socket file    must stay, and the server must still be reachable
    a stale socket file            (its server is gone, connect gets ECONNREFUSED) must be removed
    nothing at all                 nothing to do: False, no exception
    a regular file                 connect gets ECONNREFUSED here too, but it is someone's data: it stays

`peer_uid(name)` listens on an abstract name; a client puppet connects (as user nobody when the
notebook runs as root, and as the notebook's own user), and the function must return that client's uid.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, run_student
from helpers.kernel_view import unix_sockets
from helpers.observe import wait_until
from helpers.puppet import Puppet
from helpers.socket_dir import workspace

__all__ = ["check_peer_uid", "check_remove_if_stale"]

_REGULAR_CONTENT = "someone's notes: do not delete\n"


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _stale_socket_file(path: str) -> None:
    """A socket file whose socket is gone: bind, then close (exactly what a crashed server leaves)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(path)


def _content(path: str) -> str:
    with open(path) as f:
        return f.read()


def _reachable(path: str) -> bool:
    """Does a connect to `path` get through? Non-blocking, so a full queue cannot hang the checker."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        return s.connect_ex(path) == 0


def _bool_result(report: Report, outcome: Outcome, what: str) -> bool | None:
    """The function's True/False, or None after reporting why there is none."""
    if not outcome.ok:
        report.check(False, "", f"{what}: your function {outcome.problem()}")
        return None
    if not isinstance(outcome.value, bool):
        report.check(False, "", f"{what}: your function returned {outcome.value!r:.60} "
                                f"({type(outcome.value).__name__}): return True if you removed the file, else False")
        return None
    return outcome.value


@checker("Exercise 1: remove_if_stale(path)")
def check_remove_if_stale(report: Report, remove_if_stale) -> None:
    ws = workspace()
    live_path, stale_path = ws.path(_name("live") + ".sock"), ws.path(_name("stale") + ".sock")
    missing_path, regular_path = ws.path(_name("missing") + ".sock"), ws.path(_name("notes") + ".txt")
    left_open: list[str] = []
    try:
        with Puppet("exercise-server") as server:
            listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(live_path)
            listener.listen(16)
            inode = os.stat(live_path).st_ino
            outcome = run_student(remove_if_stale, live_path)
            left_open += outcome.left_open
            value = _bool_result(report, outcome, "a live server's path")
            if value is not None:
                still_there = os.path.exists(live_path) and os.stat(live_path).st_ino == inode
                report.check(still_there and _reachable(live_path) and value is False,
                             "a live server's socket file was left alone (you returned False)",
                             "a live server's socket file was removed: a server still listens there and now nobody "
                             "can reach it. A connect that succeeds means the path is in use: leave it"
                             if not still_there else
                             "a live server's socket file stayed, but you returned True: return True only when you "
                             "removed the file")

        _stale_socket_file(stale_path)
        outcome = run_student(remove_if_stale, stale_path)
        left_open += outcome.left_open
        value = _bool_result(report, outcome, "a stale socket file")
        if value is not None:
            gone = not os.path.exists(stale_path)
            report.check(gone and value is True,
                         "a stale socket file (nobody listening, connect gets ECONNREFUSED) was removed; you returned True",
                         "a stale socket file was left in place: connect to it, and when that fails with "
                         "ConnectionRefusedError (ECONNREFUSED) nobody listens there: os.unlink it"
                         if not gone else
                         "the stale socket file was removed, but you returned False: return True when you removed it")

        outcome = run_student(remove_if_stale, missing_path)
        left_open += outcome.left_open
        if isinstance(outcome.error, FileNotFoundError):
            report.check(False, "", "a path where nothing exists made your function raise FileNotFoundError: ENOENT "
                                    "means there is nothing to remove, return False")
        else:
            value = _bool_result(report, outcome, "a path where nothing exists")
            if value is not None:
                report.check(value is False, "a path where nothing exists: you returned False, no exception",
                             "a path where nothing exists: you returned True, but there was nothing to remove")

        with open(regular_path, "w") as f:
            f.write(_REGULAR_CONTENT)
        outcome = run_student(remove_if_stale, regular_path)
        left_open += outcome.left_open
        value = _bool_result(report, outcome, "a regular file")
        if value is not None:
            intact = os.path.isfile(regular_path) and _content(regular_path) == _REGULAR_CONTENT
            report.check(intact and value is False,
                         "a regular file at the path was left alone (you returned False)",
                         "a regular file was removed: connect to a regular file also fails with ECONNREFUSED, so "
                         "check stat.S_ISSOCK(os.stat(path).st_mode) before you unlink anything"
                         if not intact else
                         "the regular file stayed, but you returned True: return True only when you removed a file")

        report.check(not left_open, "every socket you opened was closed",
                     f"sockets left open ({len(left_open)}): close the socket you connect with, e.g. "
                     "`with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:`")
    finally:
        for path in (live_path, stale_path, missing_path, regular_path):
            _remove(path)


def _listening(proc_name: str) -> bool:
    return any(s["path"] == proc_name and s["state"] == "LISTEN" for s in unix_sockets().values())


def _serve_once(report: Report, peer_uid, user: str | None) -> None:
    """Run peer_uid(name) while a client puppet running as `user` connects to `name`."""
    name = workspace().abstract(_name("peer"))
    shown = "@" + name[1:]  # how /proc/net/unix and ss show an abstract name
    box: dict[str, Outcome] = {}
    runner = threading.Thread(target=lambda: box.update(outcome=run_student(peer_uid, name, timeout=5.0)),
                              daemon=True, name="exercise-peer-uid")
    with Puppet("exercise-client", user=user) as client:
        runner.start()
        listening = wait_until(lambda: _listening(shown) or not runner.is_alive(), 6.0) and _listening(shown)
        if listening:
            client.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(name)
        runner.join(8.0)
        client_uid, client_pid = client.uid, client.pid
    outcome = box.get("outcome") or Outcome(timed_out=True, seconds=8.0)
    who = f"a client running as {user or 'the notebook user'} (uid {client_uid})"
    if not listening:
        report.check(False, "", f"nothing listened on the abstract name: your function "
                                f"{outcome.problem() or f'returned {outcome.value!r:.60}'}. Bind the name you are given "
                                "(it starts with a NUL byte: no file), then listen() and accept()")
        return
    if not outcome.ok:
        report.check(False, "", f"{who} connected; your function {outcome.problem()}")
        return
    value = outcome.value
    if value == client_uid and isinstance(value, int) and not isinstance(value, bool):
        report.check(True, f"{who} connected; you returned {value}", "")
    elif isinstance(value, tuple | list):
        report.check(False, "", f"{who} connected; you returned {value!r:.60}: return only the uid, the second of "
                                "the three numbers in struct ucred (pid, uid, gid)")
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
    report.check(not outcome.left_open, "both sockets were closed",
                 f"sockets left open ({len(outcome.left_open)}): close the accepted socket and the listening one")


@checker("Exercise 2: peer_uid(name)")
def check_peer_uid(report: Report, peer_uid) -> None:
    users = ["nobody", None] if os.geteuid() == 0 else [None]
    for user in users:
        before = len(report.lines)
        _serve_once(report, peer_uid, user)
        if any(ok is False for ok, _ in report.lines[before:]):
            return
    if os.geteuid() != 0:
        report.note("the notebook does not run as root, so every client runs as you: a function returning its own "
                    "uid would pass here too. SO_PEERCRED gives the peer's uid")
