"""Checkers for the accept exercises: a server that serves client after client, and one that can
be stopped from another thread. Introduced in 04-accept.

The student's server runs in a child process (`run_student`); real clients connect to it from a
thread of the kernel, every step bounded by a timeout, and record what they saw:

    kernel thread: clients                      child process: the student's server
    connect (retry until it listens)  ----->    bind, listen, accept
    send b"hello 1"                   ----->    recv
    read until EOF (timeout)          <-----    reply, close the connected socket
    ... next client ...                         accept again ...
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, run_student
from helpers.socket_dir import workspace

__all__ = ["check_serve_clients", "check_serve_until_stopped"]

CONNECT_WINDOW = 4.0  # seconds a client keeps trying to reach a server that is starting
READ_TIMEOUT = 1.0  # seconds a client waits for its reply and for the end of the stream


@dataclass
class Session:
    """What one client saw."""

    connected: bool = False
    reply: bytes = b""
    eof: bool = False  # the server closed the connected socket: recv returned b""
    error: str = ""


def _session(path: str, message: bytes | None, server_done: threading.Event) -> Session:
    """One client: connect (retrying while the server starts), send `message`, read until EOF."""
    seen = Session()
    deadline = time.monotonic() + CONNECT_WINDOW
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(READ_TIMEOUT)
        while True:
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError, BlockingIOError) as error:
                if server_done.is_set() or time.monotonic() > deadline:
                    seen.error = f"{type(error).__name__}: {error}"
                    return seen
                server_done.wait(0.01)  # the server is starting: try again soon
        seen.connected = True
        try:
            if message is not None:
                sock.sendall(message)
            while chunk := sock.recv(1024):
                seen.reply += chunk
            seen.eof = True
        except TimeoutError:
            pass
        except OSError as error:
            seen.error = f"{type(error).__name__}: {error}"
    return seen


def _run_with_clients(function, path: str, args: tuple, messages: list, timeout: float) -> tuple[Outcome, list]:
    """Run the student's server while the clients, one after another, talk to it."""
    sessions: list[Session] = []
    server_done = threading.Event()

    def clients():
        for message in messages:
            sessions.append(_session(path, message, server_done))

    thread = threading.Thread(target=clients, daemon=True, name="exercise-clients")
    thread.start()
    try:
        outcome = run_student(function, path, *args, timeout=timeout)
    finally:
        server_done.set()
        thread.join(CONNECT_WINDOW + 2 * READ_TIMEOUT)
    return outcome, sessions


def _fresh_path(stem: str) -> str:
    return workspace().path(f"{stem}-{uuid.uuid4().hex[:6]}.sock")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError):
        pass


def _check_clients(report: Report, sessions: list[Session], expected: list[bytes], what_reply: str) -> None:
    """One check for the replies and one for the end of stream, each naming the first client that failed."""
    for i, want in enumerate(expected):
        seen = sessions[i] if i < len(sessions) else Session(error="it never got its turn")
        if not seen.connected and i == 0:
            report.check(False, "", f"client 1 could not connect ({seen.error}): bind the path you were given, "
                                    "then listen()")
        elif not seen.connected:
            report.check(False, "", f"client {i + 1} never got through ({seen.error}): after serving a client, "
                                    "call accept() again on the listening socket, once per client")
        elif not seen.reply:
            report.check(False, "", f"client {i + 1} got nothing back: accept() every client, in a loop, and send "
                                    f"{what_reply} on the connected socket accept() returned")
        elif seen.reply != want:
            report.check(False, "", f"client {i + 1} got {seen.reply!r} back, expected {want!r}")
        else:
            continue
        break
    else:
        report.check(True, f"{len(expected)} clients, one after another, each got {what_reply}", "")
    served = [s for s in sessions[:len(expected)] if s.reply]
    no_eof = next((i for i, s in enumerate(served) if not s.eof), None)
    if served:
        report.check(no_eof is None, "each client saw the end of the stream (b'') after its reply: you closed "
                                     "each connected socket",
                     f"client {(no_eof or 0) + 1} got its reply but no end of stream within {READ_TIMEOUT:.0f} s: "
                     "close the connected socket when you are done with a client (the listening socket stays open)")


def _check_count(report: Report, value, sessions: list[Session], replies: list[bytes]) -> None:
    served = sum(1 for s, want in zip(sessions, replies, strict=False) if s.reply == want)
    report.check(value == served and type(value) is int, f"returned {served}, the number of clients served",
                 f"returned {value!r}, but {served} clients were served: return the number of clients served")


def _check_cleanup(report: Report, outcome: Outcome, path: str) -> None:
    report.check(not outcome.left_open, "no socket left open when it returned",
                 f"still open when it returned: {', '.join(outcome.left_open)}: close every socket you made")
    report.check(not os.path.exists(path), "the socket file is gone",
                 "the socket file is still there: unlink(path) at the end, or the next bind fails with EADDRINUSE")


@checker("Exercise: serve_clients(path, n)")
def check_serve_clients(report: Report, serve_clients) -> None:
    path = _fresh_path("serve")
    n = 3
    messages = [f"hello {i}".encode() for i in range(1, n + 1)]
    try:
        outcome, sessions = _run_with_clients(serve_clients, path, (n,), messages, timeout=8.0)
        if outcome.timed_out:
            report.check(False, "", f"it {outcome.problem()} It should return right after the {n}th client: "
                                    f"accept exactly n times, read one message from each")
        elif outcome.error is not None:
            report.check(False, "", f"it {outcome.problem()}")
        replies = [m.upper() for m in messages]
        _check_clients(report, sessions, replies, "its message back upper-cased")
        if outcome.ok:
            _check_count(report, outcome.value, sessions, replies)
            _check_cleanup(report, outcome, path)
    finally:
        _remove(path)


@checker("Exercise: serve_until_stopped(path, stop_after)")
def check_serve_until_stopped(report: Report, serve_until_stopped) -> None:
    path = _fresh_path("stop")
    stop_after, slack, clients = 1.0, 0.5, 2
    try:
        outcome, sessions = _run_with_clients(serve_until_stopped, path, (stop_after,), [None] * clients,
                                              timeout=stop_after + 2.0)
        if outcome.timed_out:
            report.check(False, "", f"it was still running {outcome.seconds:.0f} s after it started, long after the "
                                    f"stop at {stop_after:.0f} s: close() from another thread does not wake a blocked "
                                    "accept() on Linux; shutdown(socket.SHUT_RDWR) on the listening socket does")
        elif outcome.error is not None:
            report.check(False, "", f"it {outcome.problem()}: after shutdown() a blocked accept() fails with OSError "
                                    "(EINVAL): catch it, it is your signal to stop")
        _check_clients(report, sessions, [b"bye"] * clients, "b'bye'")
        if not outcome.ok:
            return
        late = outcome.seconds - stop_after
        report.check(0 <= late <= slack,
                     f"it returned {late:.2f} s after the stop (within {slack} s)",
                     f"it returned after {outcome.seconds:.2f} s; the stop came at {stop_after:.1f} s: "
                     + ("stop when the second thread says so, not before" if late < 0 else
                        f"it must return within {slack} s of the stop: wake accept() at once with shutdown() "
                        "instead of waiting for a long timeout"))
        _check_count(report, outcome.value, sessions, [b"bye"] * clients)
        _check_cleanup(report, outcome, path)
    finally:
        _remove(path)
