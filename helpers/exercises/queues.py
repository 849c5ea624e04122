"""Checkers for the accept-queue exercises: reading a listener's queue from the kernel, and a connect
with a deadline to an AF_UNIX server whose queue is full. Introduced in 03-listen-and-backlog.

`queued_connections(port)` is asked four times about a TCP listener on 127.0.0.1 (backlog 32) while
a decoy listener on another port holds a different number; the counts vary from run to run and
reach 10 or more (hex and decimal differ); the answer must match `ss` each time, and asking must
not change the queue (connecting to find out would add a connection).

`connect_with_deadline(path, seconds)` meets three servers:

    a queue with room             connect at once: True
    a queue full for good         give up when the deadline (0.5 to 1.8 s) passes, not before and not
                                  much later, without spinning: False
    a queue freed half-way        the server accepts one connection after 1.0 to 1.3 s: retry, get in
                                  within 0.35 s of that, without spinning: True
"""

from __future__ import annotations

import socket
import time

from helpers.exercises.kit import SLACK, busy, is_int, limit, ran, scratch_path, shown, spin_message, started
from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome
from helpers.kernel_view import AcceptQueue, accept_queue
from helpers.observe import wait_until
from helpers.puppet import Puppet

__all__ = ["check_connect_with_deadline", "check_queued_connections"]
LESSON = "03"  # the lesson whose exercises these are: the progress view in 00 counts them there

BACKLOG = 32
OVERSHOOT = 0.3  # seconds past the deadline we forgive (one short sleep, and a loaded machine)
PROMPT = 0.35  # seconds after a slot frees by which a retrying client should be in


def _tcp_listener(puppet: Puppet, backlog: int):
    sock = puppet.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock, sock.getsockname()


def _tcp_listener_ports() -> list[int]:
    """The local ports of the LISTEN lines of /proc/net/tcp, in the table's order (which follows the
    kernel's hash table of listening sockets: it depends on the port)."""
    with open("/proc/net/tcp") as table:
        next(table)
        return [int(fields[1].rsplit(":", 1)[1], 16) for fields in map(str.split, table) if fields[3] == "0A"]


def _decoy_and_listener(puppet: Puppet, backlog: int):
    """Two listeners: the one listed first in /proc/net/tcp is the decoy, the other is the student's.
    "Take the first listener" then never reads the student's, on any run, whatever listeners of other
    programs come and go meanwhile: both stay, and so does their order (the table's order follows the
    kernel's hash of the port, not the port)."""
    pair = [_tcp_listener(puppet, backlog) for _ in range(2)]
    ports = _tcp_listener_ports()
    pair.sort(key=lambda listener: ports.index(listener[1][1]))
    return pair


def _connect(client: Puppet, address, count: int) -> list:
    """`count` connected client sockets in `client` (their connects complete: the queue has room)."""
    socks = [client.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    for sock in socks:
        sock.connect(address)
    return socks


@checker("Exercise 1: queued_connections(port)")
def check_queued_connections(report: Report, queued_connections) -> None:
    rng = report.rng
    with Puppet("exercise-server") as server, Puppet("exercise-clients") as clients:
        (decoy, decoy_address), (listener, address) = _decoy_and_listener(server, BACKLOG)
        decoy_count = rng.randint(2, 6)
        _connect(clients, decoy_address, decoy_count)  # another listener, another number: the port must matter
        port = address[1]
        # counts of 10 and more read differently in hex and in decimal; they change from run to run
        for connect, accept in [(0, 0), (rng.randint(10, 13), 0), (0, rng.randint(1, 2)), (rng.randint(4, 8), 0)]:
            _connect(clients, address, connect)
            for _ in range(accept):
                listener.accept()
            truth = accept_queue(address).queued
            outcome = report.run(queued_connections, port, timeout=limit())
            after = accept_queue(address).queued
            where = f"with {truth} connection{'s' if truth != 1 else ''} waiting (backlog {BACKLOG})"
            if after != truth:
                report.fail(f"{where} the queue held {after} after your function ran: it connected to the port, and "
                            "that connection now waits in the queue too. Read the count from the kernel (ss, "
                            "/proc/net/tcp) instead of connecting")
                return
            if isinstance(outcome.error, ValueError) and "base 10" in str(outcome.error):
                report.fail(f"{where}: your function {outcome.problem()}: the queue lengths in /proc/net/tcp are in "
                            "hex: int(rx_queue, 16)")
                return
            if not ran(report, outcome, where):
                return
            value = outcome.value
            if not is_int(value):
                report.fail(f"{where} you returned {shown(value)}: return the number as an int")
                return
            if value == truth:
                report.ok(f"{where} you returned {value}")
                continue
            if value == BACKLOG:
                why = ("that is the backlog (ss: Send-Q of a listening socket); the connections waiting are its "
                       "Recv-Q (in /proc/net/tcp: rx_queue, in hex)")
            elif value == decoy_count:
                why = ("that is another listener's queue: pick the line whose local port is yours (in /proc/net/tcp "
                       "the port is in hex)")
            elif f"{truth:x}".isdigit() and value == int(f"{truth:x}"):  # hex digits read as decimal
                why = "the queue lengths in /proc/net/tcp are in hex: int(rx_queue, 16)"
            elif value > truth:
                why = ("you may be counting established connections on the port, or both of their ends; count only "
                       "the listening socket's queue (Recv-Q of the LISTEN line)")
            else:
                why = "read Recv-Q of the LISTEN line with this port (ss -Htln), or rx_queue in /proc/net/tcp (hex)"
            report.fail(f"{where} you returned {value}: {why}")
            return


def _full_unix_server(puppet: Puppet, client: Puppet, path: str):
    """A listener with backlog 0 whose queue already holds the one connection Linux lets in."""
    listener = puppet.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    client.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path)
    return listener


def _describe_failure(outcome: Outcome, seconds: float) -> str:
    if outcome.timed_out:
        return ("did not return: a blocking connect to a full AF_UNIX queue sleeps until the server accepts, "
                "with no limit. Make the socket non-blocking and retry until the deadline")
    if isinstance(outcome.error, BlockingIOError):
        return ("raised BlockingIOError (EAGAIN) at once: that is what a full queue answers a non-blocking connect, "
                "and settimeout() does not make connect wait for it. Catch it, wait a little, and try again until "
                f"the {seconds} s are up")
    return outcome.problem()


def _room(report: Report, connect_with_deadline, server: Puppet, path: str) -> bool:
    listener = server.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    seconds = round(report.rng.uniform(1.0, 2.0), 1)
    outcome = report.run(connect_with_deadline, path, seconds, timeout=limit(seconds))
    where = "a server with room in its queue"
    if not outcome.ok:
        return report.fail(f"{where}: your function {_describe_failure(outcome, seconds)}")
    return report.check(outcome.value is True, f"{where}: you connected and returned True",
                        f"{where}: you returned {shown(outcome.value)}, expected True")


def _full_for_good(report: Report, connect_with_deadline, server: Puppet, other: Puppet, path: str) -> bool:
    seconds = report.rng.choice([0.5, 0.6, 1.5, 1.8])  # far from 1 s: a deadline of its own is seen
    _full_unix_server(server, other, path)
    outcome = report.run(connect_with_deadline, path, seconds, timeout=limit(seconds))
    where = f"a queue that stays full, deadline {seconds} s"
    if not outcome.ok:
        return report.fail(f"{where}: your function {_describe_failure(outcome, seconds)}")
    if outcome.value is not False:
        return report.fail(f"{where}: you returned {shown(outcome.value)}, expected False")
    if outcome.seconds < seconds - SLACK:
        return report.fail(f"{where}: you returned False after {outcome.seconds:.2f} s: keep retrying until the "
                           "deadline, the server may accept in the meantime")
    if outcome.seconds > seconds + OVERSHOOT:
        return report.fail(f"{where}: you returned False only after {outcome.seconds:.2f} s: check the clock "
                           "(time.monotonic()) before each wait, and never sleep past the deadline")
    if busy(outcome):
        return report.fail(f"{where}: {spin_message(outcome)}")
    return report.ok(f"{where}: you gave up at the deadline and returned False, without spinning")


def _freed(report: Report, connect_with_deadline, server: Puppet, other: Puppet, path: str) -> None:
    seconds, frees_after = 2.5, round(report.rng.uniform(1.0, 1.3), 2)
    busy_listener = _full_unix_server(server, other, path)
    run = report.background(connect_with_deadline, path, seconds, timeout=limit(seconds))
    started(run)
    time.sleep(frees_after)  # the scenario's schedule: the server catches up after a while
    busy_listener.accept()
    freed = time.monotonic()
    got_in = wait_until(lambda: (accept_queue(path) or AcceptQueue(0, 0)).queued > 0 or run.done(), seconds)
    late = time.monotonic() - freed
    outcome = run.join()
    where = f"a full queue where the server accepts one connection after {frees_after} s (deadline {seconds} s)"
    if not outcome.ok:
        report.fail(f"{where}: your function {_describe_failure(outcome, seconds)}")
    elif outcome.value is not True:
        report.fail(f"{where}: you returned {shown(outcome.value)} after {outcome.seconds:.2f} s: a slot was free "
                    f"from {frees_after} s on; retry until the deadline instead of giving up at the first EAGAIN")
    elif not got_in or late > PROMPT:
        report.fail(f"{where}: you got in {late:.2f} s after a slot was free: retry often (every 10 to 100 ms), "
                    "not once after a long sleep")
    elif busy(outcome):
        report.fail(f"{where}: {spin_message(outcome)}")
    else:
        report.ok(f"{where}: you got in {late:.2f} s after the slot was free and returned True")


@checker("Exercise 2: connect_with_deadline(path, seconds)")
def check_connect_with_deadline(report: Report, connect_with_deadline) -> None:
    with Puppet("exercise-server") as server, Puppet("exercise-client") as other, \
            scratch_path("srv") as room, scratch_path("srv") as full, scratch_path("srv") as freed:
        if _room(report, connect_with_deadline, server, room):
            _full_for_good(report, connect_with_deadline, server, other, full)
            _freed(report, connect_with_deadline, server, other, freed)
