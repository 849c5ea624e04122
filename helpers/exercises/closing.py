"""Checkers for the exercises of 06-close-semantics: ending a conversation on a stream socket.

Each checker runs the student's function in a child process (`run_student`, in a thread of ours)
while a puppet plays the other end, driven call by call from here:

    checker thread                    student's process               puppet (the peer)
    start run_student ------------->  serve_one(path): bind, listen
    wait until `path` listens
                                      accept  <---------------------  connect, send, SHUT_WR
    watch what the puppet receives    recv ... b'' (EOF), reply, close
    join, then judge the Outcome

A student function that hangs is stopped at its timeout; one that raises is reported; the puppet
is stopped whatever happens.
"""

from __future__ import annotations

import os
import socket
import time

from helpers.exercises.report import checker
from helpers.exercises.runner import Background, Outcome
from helpers.kernel_view import accept_queue
from helpers.observe import wait_until
from helpers.puppet import PendingCall, Puppet, PuppetExited
from helpers.socket_dir import workspace

__all__ = ["check_ask", "check_serve_one"]

STUDENT_TIMEOUT = 5.0
EARLY = 0.3  # how long we watch for an answer that should not come yet


def _read_to_eof(sock, timeout: float) -> tuple[bytes, bool]:
    """What the puppet reads from `sock` until end of file: (bytes, True), or (bytes so far, False)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        call = sock.recv(65536)
        if isinstance(call, PendingCall):
            if not wait_until(call.done, max(0.0, deadline - time.monotonic())):
                return data, False
            call = call.result(0)
        if not call:
            return data, True
        data += call


def _arrived(sock) -> bool:
    """Has anything (bytes or end of file) arrived on `sock`? Looks without taking it, never waits."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    return True


def _value_problem(outcome: Outcome, expected: bytes) -> str:
    if not outcome.ok:
        return outcome.problem()
    if not isinstance(outcome.value, bytes):
        return f"returned {type(outcome.value).__name__} {outcome.value!r}, not bytes"
    if outcome.value != expected:
        return f"returned {outcome.value!r}, expected {expected!r}"
    return ""


@checker("Exercise: serve one request, read until end of file")
def check_serve_one(report, serve_one) -> None:
    path = workspace().fresh_path("ex-serve.sock")
    request, reply = b"hello, server", b"HELLO, SERVER"
    run = Background(serve_one, path)
    client = Puppet("client")
    try:
        listening = wait_until(lambda: accept_queue(path) is not None or run.done(), 3.0) and accept_queue(path) is not None
        if not report.check(listening, "a listening socket appeared at the path (ss -xl sees it)",
                            "no listening socket appeared at `path` within 3 s: bind(path), then listen()"):
            report.note_problem(run.join())
            return
        sock = client.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.sendall(request[:7])
        early = wait_until(lambda: _arrived(sock), EARLY)
        report.check(not early, "no answer while the request was incomplete (you waited for end of file)",
                     "you answered after the first piece of the request: a stream has no message boundaries, "
                     "so keep reading until recv returns b'' (the client shut down writing)")
        got, ended = b"", False
        if not early:
            sock.sendall(request[7:])
            sock.shutdown(socket.SHUT_WR)
            got, ended = _read_to_eof(sock, STUDENT_TIMEOUT + 1)
        outcome = run.join()
        if outcome.timed_out and not (got == reply and ended):
            report.check(False, "", "your function never returned, and the client never got its answer: a loop "
                                    "that ignores b'' (end of file) spins forever; stop reading when recv returns b''")
            return
        if not early:
            report.check(got == reply, f"the client got the answer {reply!r}",
                         f"the client got {got!r}, expected {reply!r} (the request, upper-cased)")
            report.check(ended, "then end of file: you closed the connection",
                         "the reply never ended: close the connected socket after answering, so the client "
                         "reads b''")
        if outcome.timed_out:
            report.check(False, "", "you answered and closed the connection, but your function never returned: "
                                    "serve this one client, then close the listening socket and return")
            return
        problem = _value_problem(outcome, request)
        report.check(not problem, f"it returned the whole request {request!r}",
                     f"it {problem}: return every byte the client sent, joined")
        report.check(not outcome.left_open, "no socket left open",
                     f"sockets left open when it returned: {', '.join(outcome.left_open)}; close the connected "
                     "and the listening socket (or use `with`)")
    finally:
        client.stop()
        if os.path.lexists(path):
            os.unlink(path)


@checker("Exercise: ask, then half-close")
def check_ask(report, ask) -> None:
    path = workspace().fresh_path("ex-ask.sock")
    request, reply = b"what time is it?", b"half past two"
    server = Puppet("server")
    try:
        listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        accepting = listener.accept()
        run = Background(ask, path, request)
        wait_until(lambda: accepting.done() or run.done(), 3.0)
        if not report.check(accepting.done(), "you connected to the server",
                            "your function never connected to `path`: socket(AF_UNIX, SOCK_STREAM), then "
                            "connect(path)"):
            report.note_problem(run.join())
            return
        conn, _ = accepting.result(0)
        got, ended = _read_to_eof(conn, 2.0)
        report.check(got == request, f"the server received the request {request!r}",
                     f"the server received {got!r}, expected {request!r}")
        if not report.check(ended, "then end of file: your request was complete",
                            "the server waited 2 s for the end of your request and it never came: after "
                            "sendall, call shutdown(socket.SHUT_WR); the server answers only after end of file"):
            server.stop()  # its recv is still waiting; ending the process closes the connection
            run.join()
            return
        answered = True
        try:
            conn.sendall(reply[:6])
            returned_early = wait_until(run.done, EARLY)
            if not returned_early:
                conn.sendall(reply[6:])
        except (OSError, PuppetExited) as error:
            answered = False
            returned_early = False
            report.check(False, "", f"the server could not answer ({type(error).__name__}: {error}): did you "
                                    "close() the socket instead of shutdown(SHUT_WR)? close gives up reading too")
        conn.close()
        outcome = run.join()
        if answered:
            report.check(not returned_early, "you kept reading while the reply came in pieces",
                         "you returned after the first piece of the reply: keep calling recv until it returns b''")
        problem = _value_problem(outcome, reply)
        report.check(not problem, f"it returned the whole reply {reply!r}", f"it {problem}")
        report.check(not outcome.left_open, "no socket left open",
                     f"sockets left open when it returned: {', '.join(outcome.left_open)}; close your socket")
    finally:
        server.stop()
        if os.path.lexists(path):
            os.unlink(path)
