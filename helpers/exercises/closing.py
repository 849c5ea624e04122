"""Checkers for the exercises of 06-close-semantics: ending a conversation on a stream socket.

Each checker runs the student's function in a child process (`report.background`) while a puppet
plays the other end, driven call by call from here; the request and the reply change from run to
run and travel in 3 to 5 pieces, with a pause after each:

    checker thread                    student's process               puppet (the peer)
    start run_isolated ------------->  serve_one(path): bind, listen
    wait until `path` listens
                                      accept  <---------------------  connect, send, SHUT_WR
    watch what the puppet receives    recv ... b'' (EOF), reply, close
    join, then judge the Outcome

A student function that hangs is stopped at its timeout; one that raises is reported; the puppet
is stopped whatever happens.
"""

from __future__ import annotations

import socket
import time

from helpers.exercises.kit import limit, scratch_path, shown, started
from helpers.exercises.report import checker
from helpers.exercises.runner import Outcome
from helpers.kernel_view import accept_queue
from helpers.observe import wait_until
from helpers.puppet import PendingCall, Puppet, PuppetExited

__all__ = ["check_ask", "check_serve_one"]
LESSON = "06"  # the lesson whose exercises these are: the progress view in 00 counts them there

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
        return f"returned {shown(outcome.value)}, not bytes"
    if outcome.value != expected:
        return f"returned {outcome.value!r}, expected {expected!r}"
    return ""


def _pieces(rng, data: bytes, count: int) -> list[bytes]:
    """`data` cut at `count - 1` random places."""
    cuts = sorted(rng.sample(range(1, len(data)), count - 1))
    return [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]


_WORDS = [b"hello", b"server", b"socket", b"stream", b"bytes", b"peer", b"kernel", b"close"]


@checker("Exercise: serve one request, read until end of file")
def check_serve_one(report, serve_one) -> None:
    rng = report.rng
    request = b", ".join(rng.sample(_WORDS, 4))
    reply = request.upper()
    pieces = _pieces(rng, request, rng.randint(3, 5))
    with scratch_path("srv") as path, Puppet("client") as client:
        run = report.background(serve_one, path, timeout=limit(EARLY * (len(pieces) + 1) + 1.0))
        listening = started(run) and wait_until(lambda: accept_queue(path) is not None or run.done(), limit()) \
            and accept_queue(path) is not None
        if not report.check(listening, "a listening socket appeared at the path (ss -xl sees it)",
                            "no listening socket appeared at `path`: bind(path), then listen()"):
            report.note_problem(run.join())
            return
        sock = client.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        early = False
        for piece in pieces:  # each piece, then a pause: no answer may come before the end of file
            sock.sendall(piece)
            early = wait_until(lambda: _arrived(sock), EARLY)
            if early:
                break
        report.check(not early, f"no answer while the request came in {len(pieces)} pieces, before end of file",
                     "you answered before the request was complete: a stream has no message boundaries, "
                     "so keep reading until recv returns b'' (the client shut down writing)")
        got, ended = b"", False
        if not early:
            sock.shutdown(socket.SHUT_WR)
            got, ended = _read_to_eof(sock, limit())
        outcome = run.join()
        if outcome.timed_out and not (got == reply and ended):
            report.fail("your function never returned, and the client never got its answer: a loop "
                        "that ignores b'' (end of file) spins forever; stop reading when recv returns b''")
            return
        if not early:
            report.check(got == reply, f"the client got the answer {reply!r}",
                         f"the client got {got!r}, expected {reply!r} (the request, upper-cased)")
            report.check(ended, "then end of file: you closed the connection",
                         "the reply never ended: close the connected socket after answering, so the client "
                         "reads b''")
        if outcome.timed_out:
            report.fail("you answered and closed the connection, but your function never returned: "
                        "serve this one client, then close the listening socket and return")
            return
        problem = _value_problem(outcome, request)
        report.check(not problem, f"it returned the whole request {request!r}",
                     f"it {problem}: return every byte the client sent, joined")


@checker("Exercise: ask, then half-close")
def check_ask(report, ask) -> None:
    rng = report.rng
    request = b" ".join(rng.sample(_WORDS, 3)) + b"?"
    reply = b"-".join(rng.sample(_WORDS, 4))
    with scratch_path("srv") as path, Puppet("server") as server:
        listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        accepting = listener.accept()
        run = report.background(ask, path, request, timeout=limit(EARLY * 4 + 1.0))
        started(run) and wait_until(lambda: accepting.done() or run.done(), limit())
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
        answered, returned_early = True, False
        pieces = _pieces(rng, reply, rng.randint(3, 4))
        try:
            for piece in pieces:
                conn.sendall(piece)
                returned_early = piece is not pieces[-1] and wait_until(run.done, EARLY)
                if returned_early:
                    break
        except (OSError, PuppetExited) as error:
            answered = False
            partial = run.join()
            if partial.ok and isinstance(partial.value, bytes) and partial.value and reply.startswith(partial.value):
                returned_early, answered = True, True  # it took a piece or two, then returned and closed
            else:
                report.fail(f"the server could not answer ({type(error).__name__}: {error}): did you close() the "
                            "socket, or shutdown(SHUT_RDWR), instead of shutdown(SHUT_WR)? Both give up reading too")
        conn.close()
        outcome = run.join()
        if answered:
            report.check(not returned_early, f"you kept reading while the reply came in {len(pieces)} pieces",
                         "you returned before the whole reply had come: keep calling recv until it returns b''")
        problem = _value_problem(outcome, reply)
        report.check(not problem, f"it returned the whole reply {reply!r}", f"it {problem}")
