"""Checkers for the accept-queue exercises: reading a listener's queue from the kernel, and a connect
with a deadline to an AF_UNIX server whose queue is full. Introduced in 03-listen-and-backlog.

`queued_connections(port)` is asked three times about a TCP listener on 127.0.0.1 (backlog 8) while
a decoy listener on another port holds a different number; the answer must match `ss` each time,
and asking must not change the queue (connecting to find out would add a connection).

`connect_with_deadline(path, seconds)` meets three servers:

    a queue with room             connect at once: True
    a queue full for good         give up when the deadline passes, not before and not much later: False
    a queue freed half-way        the server accepts one connection after 0.5 s: retry, get in: True
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, run_student
from helpers.kernel_view import accept_queue
from helpers.puppet import Puppet
from helpers.socket_dir import workspace

__all__ = ["check_connect_with_deadline", "check_queued_connections"]

BACKLOG = 8
SLACK = 0.15  # seconds of scheduling and interpreter noise we forgive around a deadline


def _tcp_listener(puppet: Puppet, backlog: int):
    sock = puppet.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock, sock.getsockname()


def _connect(client: Puppet, address, count: int) -> list:
    """`count` connected client sockets in `client` (their connects complete: the queue has room)."""
    socks = [client.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    for sock in socks:
        sock.connect(address)
    return socks


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@checker("Exercise 1: queued_connections(port)")
def check_queued_connections(report: Report, queued_connections) -> None:
    with Puppet("exercise-server") as server, Puppet("exercise-clients") as clients:
        decoy, decoy_address = _tcp_listener(server, BACKLOG)
        _connect(clients, decoy_address, 5)  # another listener, another number: the port must matter
        listener, address = _tcp_listener(server, BACKLOG)
        port = address[1]
        left_open: list[str] = []
        for step, (connect, accept) in enumerate([(0, 0), (3, 0), (0, 1)]):
            _connect(clients, address, connect)
            for _ in range(accept):
                listener.accept()
            truth = accept_queue(address).queued
            outcome = run_student(queued_connections, port)
            left_open += outcome.left_open
            after = accept_queue(address).queued
            where = f"with {truth} connection{'s' if truth != 1 else ''} waiting (backlog {BACKLOG})"
            if after != truth:
                report.check(False, "", f"{where} the queue held {after} after your function ran: it connected to the "
                                        "port, and that connection now waits in the queue too. Read the count from the "
                                        "kernel (ss, /proc/net/tcp) instead of connecting")
                return
            if not outcome.ok:
                report.check(False, "", f"{where}: your function {outcome.problem()}")
                return
            value = outcome.value
            if not _is_count(value):
                report.check(False, "", f"{where} you returned {value!r:.60} ({type(value).__name__}): return the "
                                        "number as an int")
                return
            if value == truth:
                report.check(True, f"{where} you returned {value}", "")
                continue
            if value == BACKLOG:
                why = ("that is the backlog (ss: Send-Q of a listening socket); the connections waiting are its "
                       "Recv-Q (in /proc/net/tcp: rx_queue, in hex)")
            elif value == 5 or (step == 0 and value):
                why = ("that is another listener's queue: pick the line whose local port is yours (in /proc/net/tcp "
                       "the port is in hex)")
            elif value == 2 * truth or value > truth:
                why = ("you may be counting established connections on the port, or both of their ends; count only "
                       "the listening socket's queue (Recv-Q of the LISTEN line)")
            else:
                why = "read Recv-Q of the LISTEN line with this port (ss -Htln), or rx_queue in /proc/net/tcp (hex)"
            report.check(False, "", f"{where} you returned {value}: {why}")
            return
        report.check(not left_open, "no socket left open",
                     f"sockets left open ({len(left_open)}): close what you open")


def _unix_path() -> str:
    return workspace().path(f"deadline-{uuid.uuid4().hex[:6]}.sock")


def _full_unix_server(puppet: Puppet, client: Puppet, path: str):
    """A listener with backlog 0 whose queue already holds the one connection Linux lets in."""
    listener = puppet.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    client.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path)
    return listener


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _describe_failure(outcome: Outcome, seconds: float) -> str:
    if outcome.timed_out:
        return ("did not return: a blocking connect to a full AF_UNIX queue sleeps until the server accepts, "
                "with no limit. Make the socket non-blocking and retry until the deadline")
    if isinstance(outcome.error, BlockingIOError):
        return ("raised BlockingIOError (EAGAIN) at once: that is what a full queue answers a non-blocking connect, "
                "and settimeout() does not make connect wait for it. Catch it, wait a little, and try again until "
                f"the {seconds} s are up")
    return outcome.problem()


@checker("Exercise 2: connect_with_deadline(path, seconds)")
def check_connect_with_deadline(report: Report, connect_with_deadline) -> None:
    paths = [_unix_path() for _ in range(3)]
    left_open: list[str] = []
    try:
        with Puppet("exercise-server") as server, Puppet("exercise-client") as other:
            # 1. room in the queue
            listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(paths[0])
            listener.listen(4)
            outcome = run_student(connect_with_deadline, paths[0], 2.0, timeout=5.0)
            left_open += outcome.left_open
            if not outcome.ok:
                report.check(False, "", f"a server with room in its queue: your function {outcome.problem()}")
                return
            report.check(outcome.value is True, "a server with room in its queue: you connected and returned True",
                         f"a server with room in its queue: you returned {outcome.value!r:.60}, expected True")

            # 2. full for good
            seconds = 1.0
            _full_unix_server(server, other, paths[1])
            outcome = run_student(connect_with_deadline, paths[1], seconds, timeout=seconds + 3.0)
            left_open += outcome.left_open
            where = f"a queue that stays full, deadline {seconds} s"
            if not outcome.ok:
                report.check(False, "", f"{where}: your function {_describe_failure(outcome, seconds)}")
                return
            if outcome.value is not False:
                report.check(False, "", f"{where}: you returned {outcome.value!r:.60}, expected False")
            elif outcome.seconds < seconds - SLACK:
                report.check(False, "", f"{where}: you returned False after {outcome.seconds:.2f} s: keep retrying "
                                        "until the deadline, the server may accept in the meantime")
            elif outcome.seconds > seconds + 1.0:
                report.check(False, "", f"{where}: you returned False only after {outcome.seconds:.2f} s: check the "
                                        "clock (time.monotonic()) before each wait, and never sleep past the deadline")
            else:
                report.check(True, f"{where}: you gave up at the deadline and returned False", "")

            # 3. the server accepts one connection half-way through
            seconds, frees_after = 3.0, 0.5
            busy = _full_unix_server(server, other, paths[2])
            box: dict[str, Outcome] = {}
            runner = threading.Thread(
                target=lambda: box.update(outcome=run_student(connect_with_deadline, paths[2], seconds,
                                                              timeout=seconds + 2.0)),
                daemon=True, name="exercise-deadline")
            runner.start()
            time.sleep(frees_after)  # the scenario's schedule: the server catches up after half a second
            busy.accept()
            runner.join(seconds + 4.0)
            outcome = box.get("outcome") or Outcome(timed_out=True, seconds=seconds + 4.0)
            left_open += outcome.left_open
            where = f"a full queue where the server accepts one connection after {frees_after} s (deadline {seconds} s)"
            if not outcome.ok:
                report.check(False, "", f"{where}: your function {_describe_failure(outcome, seconds)}")
            elif outcome.value is True:
                report.check(True, f"{where}: you got in and returned True", "")
            else:
                report.check(False, "", f"{where}: you returned {outcome.value!r:.60} after {outcome.seconds:.2f} s: a "
                                        "slot was free from 0.5 s on; retry until the deadline instead of giving up "
                                        "at the first EAGAIN")
    finally:
        for path in paths:
            _remove(path)
    report.check(not left_open, "every socket you opened was closed",
                 f"sockets left open ({len(left_open)}): close each socket you try, also when connect fails "
                 "(`with socket.socket(...) as s:`)")
