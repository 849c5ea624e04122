"""Checkers for the exercises of 07-datagrams: request and reply without a connection.

As in `closing`, the student's function runs in a child process (in a thread of ours) while puppets
play the other side, driven call by call from here. Datagrams make the checks exact: every
datagram the student sends is one `recvfrom` on the puppet's side, so we count them.

    checker                       student's process                      puppet server (UDP)
    start the run  ---------->    request_reply(address, b"ping")
                                  sendto  ------------------------------>  1st datagram: dropped
                                  (0.5 s timeout) sendto  -------------->  2nd datagram, about 0.5 s
                                                                           later: answered
                                  <-------------------------------------   b"pong: ping"
"""

from __future__ import annotations

import contextlib
import socket
import time

from helpers.exercises.kit import busy, limit, scratch_path, shown, spin_message, started
from helpers.exercises.report import checker
from helpers.kernel_view import unix_sockets
from helpers.observe import wait_until
from helpers.puppet import Puppet, PuppetExited

__all__ = ["check_echo_server", "check_request_reply"]
LESSON = "07"  # the lesson whose exercises these are: the progress view in 00 counts them there


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
    request = b"ping " + str(report.rng.randint(1, 999)).encode()
    answer = b"pong: " + request
    # 1. The first datagram is lost (the server drops it); the retry, about 0.5 s later, is answered.
    with Puppet("server") as server:
        sock = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        run = report.background(request_reply, sock.getsockname(), request, timeout=limit(1.0))
        first = _next_datagram(sock, limit()) if started(run) else None
        if not report.check(first is not None and first[0] == request,
                            f"your request {request!r} arrived at the server",
                            f"the server received {first[0]!r} instead of {request!r}" if first else
                            "no datagram reached the server: sendto(request, address) on a "
                            "socket(AF_INET, SOCK_DGRAM)"):
            report.note_problem(run.join())
            return
        dropped = time.monotonic()
        second = _next_datagram(sock, 2.0) if server.alive else None
        gap = time.monotonic() - dropped
        retried = report.check(second is not None and second[0] == request,
                               "we dropped it, and you sent it again: the retry arrived",
                               "we dropped your first datagram (UDP may lose any datagram), and no second one came "
                               "within 2 s: wait for the reply with a timeout (settimeout(0.5)), then send once more")
        if retried:
            report.check(0.4 <= gap <= 0.75, f"the retry came {gap:.2f} s after the first try: you waited 0.5 s",
                         f"the retry came {gap:.2f} s after the first try: wait 0.5 s for the reply "
                         "(settimeout(0.5)), and send again only when that wait timed out")
            sock.sendto(answer, second[1])
        outcome = run.join()
        if outcome.timed_out:
            report.fail("your function waited forever for a reply that never came: set a timeout "
                        "(settimeout(0.5)) before recvfrom, and catch socket.timeout (TimeoutError)")
            return
        if retried:
            report.check(outcome.ok and outcome.value == answer, f"you returned the reply to the retry, {answer!r}",
                         f"your function {outcome.problem() or f'returned {shown(outcome.value)}'}, expected "
                         f"{answer!r}")
            extra = _extra_datagrams(sock) if server.alive else 0
            report.check(not extra, "no datagram after the answered retry",
                         f"{extra} more datagram(s) came after the reply: stop once you have it")
    # 2. Nobody ever answers: two datagrams, two timeouts of 0.5 s, then None.
    with Puppet("server") as server:
        sock = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        run = report.background(request_reply, sock.getsockname(), request, timeout=limit(1.0))
        got = [_next_datagram(sock, limit()) if started(run) else None]
        got.append(_next_datagram(sock, 2.0) if got[0] and server.alive else None)
        outcome = run.join()
        sent = sum(1 for g in got if g) + (_extra_datagrams(sock) if server.alive else 0)
        report.check(sent == 2, "with no answer at all, you sent exactly two datagrams (one retry)",
                     f"with no answer at all, you sent {sent} datagram(s): one retry means two in all")
        if outcome.timed_out:
            report.fail("with no answer at all, your function never returned: give up after the retry "
                        "times out, and return None")
            return
        report.check(outcome.ok and outcome.value is None, "then you gave up and returned None",
                     f"with no answer at all, your function {outcome.problem() or f'returned {shown(outcome.value)}'}; "
                     "return None after the retry times out")
        report.check(0.85 <= outcome.seconds <= 1.5,
                     f"it gave up after {outcome.seconds:.2f} s: two waits of 0.5 s",
                     f"it gave up after {outcome.seconds:.2f} s; expected about 1 s (0.5 s per try, two tries)")
        report.check(not busy(outcome), "it waited for the reply without spinning", spin_message(outcome))


def _bound_datagram_socket(path: str) -> bool:
    return any(s["path"] == path and s["type"] == "SOCK_DGRAM" for s in unix_sockets().values())


def _messages(rng) -> list[tuple[str, bytes]]:
    """4 to 6 datagrams from two clients, one of them about 20 KB; the last one is nothing special."""
    words = [b"hello", b"datagram", b"boundary", b"peer", b"kernel", b"unix"]
    count = rng.randint(4, 6)
    senders = ["alice", "bob"] + [rng.choice(("alice", "bob")) for _ in range(count - 2)]
    rng.shuffle(senders)  # both write, in an order of their own
    messages = [(sender, b" ".join(rng.sample(words, 2))) for sender in senders]
    big = rng.randrange(count - 1)
    messages[big] = (messages[big][0], b"big: " + bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(18000, 22000))))
    return messages


@checker("Exercise: an echo server for datagrams")
def check_echo_server(report, echo_server) -> None:
    messages = _messages(report.rng)
    with contextlib.ExitStack() as stack:
        path = stack.enter_context(scratch_path("srv"))
        run = report.background(echo_server, path, len(messages), timeout=limit(0.5 * len(messages)))
        clients: dict[str, tuple[Puppet, object]] = {}
        bound = started(run) and wait_until(lambda: _bound_datagram_socket(path) or run.done(), limit()) \
            and _bound_datagram_socket(path)
        if not report.check(bound, "a datagram socket was bound at the path",
                            "no datagram socket appeared at `path`: socket(AF_UNIX, SOCK_DGRAM), then bind(path)"):
            report.note_problem(run.join())
            return
        for name in ("alice", "bob"):
            puppet = stack.enter_context(Puppet(name))
            sock = puppet.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(stack.enter_context(scratch_path("cli")))  # a name, so that the server can answer
            clients[name] = (puppet, sock)
        complete = False
        for name, data in messages:
            puppet, sock = clients[name]
            try:
                sock.sendto(data, path)
            except (OSError, PuppetExited) as error:
                report.fail(f"{name} could not send datagram {data[:16]!r}...: {type(error).__name__}: "
                            f"{error} (did your function stop receiving too early?)")
                break
            answer = _next_datagram(sock, 2.0)
            shown_data = data if len(data) <= 20 else data[:12] + b"..."
            if answer is None:
                report.fail(f"{name} sent {shown_data!r} and got no answer within 2 s: answer each datagram "
                            "to the address recvfrom gave you, with sendto(reply, address)")
                break
            if not report.check(answer[0] == data.upper(), f"{name} sent {shown_data!r} ({len(data)} bytes) and got "
                                f"it back upper-cased", f"{name} sent {shown_data!r} ({len(data)} bytes) and got "
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
        if outcome.timed_out:
            report.fail(f"your function answered all {len(messages)} datagrams but did not return: receive exactly "
                        "`count` datagrams, then return")
            return
        if not outcome.ok:
            report.fail(f"your function {outcome.problem()}")
            return
        expected = [data for _, data in messages]
        report.check(outcome.value == expected, f"it returned the {len(expected)} datagrams it received, in order",
                     f"it returned {_short(outcome.value)}; expected the list of the {len(expected)} datagrams "
                     "received, whole, in order")


def _short(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(repr(v[:12]) + "..." if isinstance(v, bytes) and len(v) > 20 else repr(v)
                               for v in value) + "]"
    return shown(value, 80)
