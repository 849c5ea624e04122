"""Checkers for the exercises of 07-datagrams: request and reply without a connection.

As in `closing`, the student's function runs in a child process (in a thread of ours) while puppets
play the other side, driven call by call from here. Datagrams make the checks exact: every
datagram the student sends is one `recvfrom` on the puppet's side, so we count them.

    checker                       student's process                      puppet server (UDP)
    start the run  ---------->    request_reply(address, b"ping")
                                  sendto  ------------------------------>  1st datagram: dropped
                                  (0.5 s timeout) sendto  -------------->  2nd datagram: answered
                                  <-------------------------------------   b"pong: ping"
"""

from __future__ import annotations

import os
import socket

from helpers.exercises.report import checker
from helpers.exercises.runner import Background
from helpers.kernel_view import unix_sockets
from helpers.observe import wait_until
from helpers.puppet import Puppet, PuppetExited
from helpers.socket_dir import workspace

__all__ = ["check_echo_server", "check_request_reply"]


def _next_datagram(sock, timeout: float):
    """(data, address) of the next datagram the puppet's socket receives within `timeout`, else None."""
    call = sock.recvfrom(65536)
    if not hasattr(call, "result"):
        return call
    if not wait_until(call.done, timeout):
        sock.puppet.stop()  # its recvfrom would wait forever; the socket goes with the process
        return None
    return call.result(0)


def _extra_datagrams(sock) -> int:
    """How many more datagrams wait on the puppet's socket (taken without waiting)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            sock.recvfrom(65536)
        except BlockingIOError:
            return count
        count += 1


@checker("Exercise: request and reply over UDP, with a timeout and one retry")
def check_request_reply(report, request_reply) -> None:
    request = b"ping"
    # 1. The first datagram is lost (the server drops it); the retry is answered.
    with Puppet("server") as server:
        sock = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        run = Background(request_reply, sock.getsockname(), request)
        first = _next_datagram(sock, 3.0)
        if not report.check(first is not None and first[0] == request,
                            f"your request {request!r} arrived at the server",
                            f"the server received {first[0]!r} instead of {request!r}" if first else
                            "no datagram reached the server within 3 s: sendto(request, address) on a "
                            "socket(AF_INET, SOCK_DGRAM)"):
            report.note_problem(run.join())
            return
        second = _next_datagram(sock, 2.0) if server.alive else None
        retried = report.check(second is not None and second[0] == request,
                               "we dropped it, and you sent it again: the retry arrived",
                               "we dropped your first datagram (UDP may lose any datagram), and no second one came "
                               "within 2 s: wait for the reply with a timeout (settimeout(0.5)), then send once more")
        if retried:
            sock.sendto(b"pong: " + request, second[1])
        outcome = run.join()
        if outcome.timed_out:
            report.check(False, "", "your function waited forever for a reply that never came: set a timeout "
                                    "(settimeout(0.5)) before recvfrom, and catch socket.timeout (TimeoutError)")
            return
        if retried:
            report.check(outcome.ok and outcome.value == b"pong: " + request,
                         "you returned the reply to the retry, b'pong: ping'",
                         f"your function {outcome.problem() or f'returned {outcome.value!r}'}, expected b'pong: ping'")
        if retried:
            extra = _extra_datagrams(sock) if server.alive else 0
            report.check(not extra, "no datagram after the answered retry",
                         f"{extra} more datagram(s) came after the reply: stop once you have it")
    # 2. Nobody ever answers: two datagrams, about two timeouts, then None.
    with Puppet("server") as server:
        sock = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        run = Background(request_reply, sock.getsockname(), request)
        got = [_next_datagram(sock, 3.0)]
        got.append(_next_datagram(sock, 2.0) if got[0] and server.alive else None)
        outcome = run.join()
        sent = sum(1 for g in got if g) + (_extra_datagrams(sock) if server.alive else 0)
        report.check(sent == 2, "with no answer at all, you sent exactly two datagrams (one retry)",
                     f"with no answer at all, you sent {sent} datagram(s): one retry means two in all")
        if outcome.timed_out:
            report.check(False, "", "with no answer at all, your function never returned: give up after the retry "
                                    "times out, and return None")
            return
        report.check(outcome.ok and outcome.value is None, "then you gave up and returned None",
                     f"with no answer at all, your function {outcome.problem() or f'returned {outcome.value!r}'}; "
                     "return None after the retry times out")
        report.check(0.8 <= outcome.seconds <= 3.0,
                     f"it gave up after {outcome.seconds:.1f} s: two waits of about 0.5 s",
                     f"it gave up after {outcome.seconds:.1f} s; expected about 1 s (0.5 s per try, two tries)")
        report.check(not outcome.left_open, "no socket left open",
                     f"sockets left open when it returned: {', '.join(outcome.left_open)}; close your socket")


def _bound_datagram_socket(path: str) -> bool:
    return any(s["path"] == path and s["type"] == "SOCK_DGRAM" for s in unix_sockets().values())


@checker("Exercise: an echo server for datagrams")
def check_echo_server(report, echo_server) -> None:
    ws = workspace()
    path = ws.fresh_path("ex-echo.sock")
    messages = [("alice", b"hello from alice"), ("bob", b"bob: " + b"x" * 3000), ("alice", b"bye")]
    run = Background(echo_server, path, len(messages))
    clients: dict[str, tuple[Puppet, object]] = {}
    try:
        bound = wait_until(lambda: _bound_datagram_socket(path) or run.done(), 3.0) and _bound_datagram_socket(path)
        if not report.check(bound, "a datagram socket was bound at the path",
                            "no datagram socket appeared at `path` within 3 s: socket(AF_UNIX, SOCK_DGRAM), "
                            "then bind(path)"):
            report.note_problem(run.join())
            return
        for name in ("alice", "bob"):
            puppet = Puppet(name)
            sock = puppet.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(ws.fresh_path(f"ex-{name}.sock"))  # a name, so that the server can answer
            clients[name] = (puppet, sock)
        complete = False
        for name, data in messages:
            puppet, sock = clients[name]
            try:
                sock.sendto(data, path)
            except (OSError, PuppetExited) as error:
                report.check(False, "", f"{name} could not send datagram {data[:16]!r}...: {type(error).__name__}: "
                                        f"{error} (did your function stop receiving too early?)")
                break
            answer = _next_datagram(sock, 2.0)
            shown = data if len(data) <= 20 else data[:12] + b"..."
            if answer is None:
                report.check(False, "", f"{name} sent {shown!r} and got no answer within 2 s: answer each datagram "
                                        "to the address recvfrom gave you, with sendto(reply, address)")
                break
            if not report.check(answer[0] == data.upper(), f"{name} sent {shown!r} ({len(data)} bytes) and got "
                                f"it back upper-cased", f"{name} sent {shown!r} ({len(data)} bytes) and got "
                                f"{len(answer[0])} bytes back{' (cut short)' if len(answer[0]) < len(data) else ''}: "
                                "a datagram longer than your buffer is truncated and the rest is lost (MSG_TRUNC); "
                                "receive with a buffer of 65536 bytes"):
                break
        else:
            complete = True
        outcome = run.join()
        if outcome.timed_out and not complete:
            report.note("we sent nothing more after that, so your function was still waiting when we stopped it")
            return
        if not outcome.ok:
            report.check(False, "", f"your function {outcome.problem()}")
            return
        expected = [data for _, data in messages]
        report.check(outcome.value == expected, f"it returned the {len(expected)} datagrams it received, in order",
                     f"it returned {_short(outcome.value)}; expected the list of the {len(expected)} datagrams "
                     "received, whole, in order")
        report.check(not outcome.left_open, "no socket left open",
                     f"sockets left open when it returned: {', '.join(outcome.left_open)}; close your socket")
    finally:
        for puppet, _ in clients.values():
            puppet.stop()
        for name in ("echo", "alice", "bob"):
            stale = ws.path(f"ex-{name}.sock")
            if os.path.lexists(stale):
                os.unlink(stale)


def _short(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(repr(v[:12]) + "..." if isinstance(v, bytes) and len(v) > 20 else repr(v)
                               for v in value) + "]"
    return f"{type(value).__name__} {value!r}"[:80]
