"""Checkers for the accept exercises: a server that serves client after client, and one that can
be stopped from another thread. Introduced in 04-accept.

The student's server runs in a child process (`report.run`); real clients connect to it from a
thread of the kernel, every step bounded by a timeout, and record what they saw (n varies from run
to run; serve_until_stopped gets a late client while it waits, so an idle timeout is seen):

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
from dataclasses import dataclass

from helpers.exercises.kit import busy, is_int, limit, scratch_path, shown, spin_message
from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome

__all__ = ["check_serve_clients", "check_serve_until_stopped"]
LESSON = "04"  # the lesson whose exercises these are: the progress view in 00 counts them there

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


def _run_with_clients(report: Report, function, path: str, args: tuple, schedule: list,
                      timeout: float) -> tuple[Outcome, list, int]:
    """Run the student's server while the clients talk to it: `schedule` holds (delay, message), the
    delay counted from the first client's connection (0: right after the previous client). Also
    returns the most threads the server's process had at once (one: nobody else could stop it)."""
    sessions: list[Session] = []
    server_done = threading.Event()

    def clients():
        first = None
        for delay, message in schedule:
            if first is not None and server_done.wait(max(0.0, first + delay - time.monotonic())):
                return
            sessions.append(_session(path, message, server_done))
            first = first or time.monotonic()

    thread = threading.Thread(target=clients, daemon=True, name="exercise-clients")
    thread.start()
    run = report.background(function, path, *args, timeout=timeout)
    most_threads = 0
    try:
        while not run.done():
            most_threads = max(most_threads, _threads(run.student_pid()))
            time.sleep(0.02)
        outcome = run.join()
    finally:
        server_done.set()
        thread.join(CONNECT_WINDOW + 2 * READ_TIMEOUT)
    return outcome, sessions, most_threads


def _threads(pid: int | None) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task")) if pid else 0
    except OSError:
        return 0


def _check_clients(report: Report, sessions: list[Session], expected: list[bytes], what_reply: str,
                   outcome: Outcome) -> None:
    """One check for the replies and one for the end of stream, each naming the first client that failed."""
    for i, want in enumerate(expected):
        seen = sessions[i] if i < len(sessions) else Session(error="it never got its turn")
        if not seen.connected and i == 0:
            report.fail(f"client 1 could not connect ({seen.error}): bind the path you were given, then listen()")
        elif not seen.connected:
            report.fail(f"client {i + 1} never got through ({seen.error}): after serving a client, call accept() "
                        "again on the listening socket, once per client")
        elif not seen.reply and (outcome.timed_out or isinstance(outcome.error, BrokenPipeError)):
            report.fail(f"client {i + 1} got nothing back: it waits for your reply without closing its side, so "
                        "reading until b'' (or a newline) waits for ever: read one message with one recv(1024)")
        elif not seen.reply and isinstance(outcome.error, OSError):
            report.fail(f"client {i + 1} got nothing back: your function {outcome.problem()}")
        elif not seen.reply:
            report.fail(f"client {i + 1} got nothing back: accept() every client, in a loop, and send "
                        f"{what_reply} on the connected socket accept() returned")
        elif seen.reply != want:
            report.fail(f"client {i + 1} got {seen.reply!r} back, expected {want!r}")
        else:
            continue
        break
    else:
        report.ok(f"{len(expected)} client{'s' if len(expected) != 1 else ''}, one after another, each got "
                  f"{what_reply}")
    served = [s for s in sessions[:len(expected)] if s.reply]
    no_eof = next((i for i, s in enumerate(served) if not s.eof), None)
    if served:
        report.check(no_eof is None, "each client saw the end of the stream (b'') after its reply: you closed "
                                     "each connected socket",
                     f"client {(no_eof or 0) + 1} got its reply but no end of stream within {READ_TIMEOUT:.0f} s: "
                     "close the connected socket when you are done with a client (the listening socket stays open)")


def _check_count(report: Report, value, sessions: list[Session], replies: list[bytes]) -> None:
    served = sum(1 for s, want in zip(sessions, replies, strict=False) if s.reply == want)
    report.check(is_int(value) and value == served, f"returned {served}, the number of clients served",
                 f"returned {shown(value)}, but {served} client{'s were' if served != 1 else ' was'} served: return "
                 "the number of clients served")


def _check_file_gone(report: Report, path: str) -> None:
    report.check(not os.path.exists(path), "the socket file is gone",
                 "the socket file is still there: unlink(path) at the end, or the next bind fails with EADDRINUSE")


@checker("Exercise: serve_clients(path, n)")
def check_serve_clients(report: Report, serve_clients) -> None:
    n = report.rng.choice([2, 4, 5])
    words = ["hello", "ping", "socket", "queue", "accept", "kernel"]
    messages = [f"{report.rng.choice(words)} {i}".encode() for i in range(1, n + 1)]
    with scratch_path("srv") as path:
        outcome, sessions, _ = _run_with_clients(report, serve_clients, path, (n,), [(0, m) for m in messages],
                                                 timeout=limit(1.0 * n))
        if outcome.timed_out:
            report.fail(f"it {outcome.problem()} It should return right after client {n} (n = {n}): accept exactly "
                        "n times, read one message from each")
        elif not outcome.ok:
            report.fail(f"it {outcome.problem()}")
        replies = [m.upper() for m in messages]
        _check_clients(report, sessions, replies, "its message back upper-cased", outcome)
        if outcome.ok:
            _check_count(report, outcome.value, sessions, replies)
            _check_file_gone(report, path)


@checker("Exercise: serve_until_stopped(path, stop_after)")
def check_serve_until_stopped(report: Report, serve_until_stopped) -> None:
    stop_after, slack = round(report.rng.uniform(1.0, 1.4), 2), 0.5
    late = round(stop_after * report.rng.uniform(0.55, 0.7), 2)  # a client that comes while the server waits
    schedule = [(0, None), (0, None), (late, None)]
    with scratch_path("srv") as path:
        outcome, sessions, most_threads = _run_with_clients(report, serve_until_stopped, path, (stop_after,),
                                                            schedule, timeout=limit(stop_after + slack))
        if outcome.timed_out:
            report.fail(f"it was still running {outcome.timeout:.1f} s after it started, long after the stop at "
                        f"{stop_after} s: close() from another thread does not wake a blocked accept() on Linux; "
                        "shutdown(socket.SHUT_RDWR) on the listening socket does")
        elif not outcome.ok:
            report.fail(f"it {outcome.problem()}" + (": after shutdown() a blocked accept() fails with OSError "
                                                     "(EINVAL): catch it, it is your signal to stop"
                                                     if isinstance(outcome.error, OSError) else ""))
        _check_clients(report, sessions, [b"bye"] * len(schedule), "b'bye'", outcome)
        if not outcome.ok:
            return
        after = outcome.seconds - stop_after
        report.check(0 <= after <= slack,
                     f"it returned {after:.2f} s after the stop (within {slack} s)",
                     f"it returned after {outcome.seconds:.2f} s; the stop came at {stop_after} s "
                     f"(the last client came at about {late} s): "
                     + ("stop when the second thread says so, not before" if after < 0 else
                        f"it must return within {slack} s of the stop, counted from the start, not from the last "
                        "client: a timer thread calls shutdown() on the listening socket, which wakes accept() at "
                        "once"))
        report.check(not busy(outcome), "it waited in accept() without spinning", spin_message(outcome))
        report.check(most_threads > 1, "a second thread stopped it",
                     "your server ran in one thread only: it stopped itself by its own clock. The exercise is to stop "
                     "it from a second thread (threading.Timer calling shutdown() on the listening socket)")
        _check_count(report, outcome.value, sessions, [b"bye"] * len(schedule))
        _check_file_gone(report, path)
