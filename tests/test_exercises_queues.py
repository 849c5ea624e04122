"""The checkers of 03-listen-and-backlog pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import socket
import time

import pytest
from exercise_support import assert_caught, load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_connect_with_deadline, check_queued_connections

solutions = load_solutions("03_listen_and_backlog.py")


text = repr


# -- queued_connections -------------------------------------------------------------------------

def queued_connections_stub(port):
    """How many connections wait."""
    ...  # your code here


def queued_connections_backlog(port):
    import subprocess

    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split()[2])  # Send-Q: for a listening socket that is the backlog


def queued_connections_by_connecting(port):
    import subprocess

    with socket.socket() as probe:
        probe.connect(("127.0.0.1", port))  # "is anybody there?": now one more is waiting
    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split()[1])


def queued_connections_decimal_port(port):
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and fields[1].endswith(f":{port}"):  # the port is hex there, not decimal
                return int(fields[4].split(":")[1], 16)
    return 0


def queued_connections_text(port):
    import subprocess

    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
    return out.split()[1]  # '3', a str


def test_queued_connections_reference_passes():
    report = check_queued_connections(solutions.queued_connections)
    assert report.passed, text(report)


def test_queued_connections_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_queued_connections(queued_connections_stub))


MISTAKES_QUEUED_CONNECTIONS = [
    pytest.param(queued_connections_backlog, ["that is the backlog"], id="backlog_instead_of_queue_is_caught"),
    pytest.param(queued_connections_by_connecting, ["it connected to the port"], id="connecting_to_count_is_caught"),
    pytest.param(queued_connections_decimal_port, ["Recv-Q"], id="decimal_port_is_caught"),
    pytest.param(queued_connections_text, ["return the number as an int"], id="text_instead_of_int_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_QUEUED_CONNECTIONS)
def test_queued_connections_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_queued_connections(solution), phrases)


# -- connect_with_deadline ----------------------------------------------------------------------

def connect_with_deadline_stub(path, seconds):
    """Connect within the deadline."""
    ...  # your code here


def connect_with_settimeout(path, seconds):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(seconds)  # does not bound the wait on a full AF_UNIX queue: EAGAIN at once
        s.connect(path)
        return True


def connect_once_non_blocking(path, seconds):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        try:
            s.connect(path)
            return True
        except BlockingIOError:
            return False  # gives up at the first EAGAIN


def connect_blocking(path, seconds):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)  # sleeps in the kernel until the server accepts: maybe forever
        return True


def connect_leaking(path, seconds, _tries=[]):  # noqa: B006 - the bug under test: every try kept open
    deadline = time.monotonic() + seconds
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        _tries.append(s)  # a new socket per try, none closed
        s.setblocking(False)
        try:
            s.connect(path)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def test_connect_with_deadline_reference_passes():
    report = check_connect_with_deadline(solutions.connect_with_deadline)
    assert report.passed, text(report)


def test_connect_with_deadline_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_connect_with_deadline(connect_with_deadline_stub))


MISTAKES_CONNECT_WITH_DEADLINE = [
    pytest.param(connect_with_settimeout, ["settimeout() does not make connect wait"], id="settimeout_is_caught"),
    pytest.param(connect_blocking, ["a blocking connect to a full AF_UNIX queue sleeps"], id="blocking_connect_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_CONNECT_WITH_DEADLINE)
def test_connect_with_deadline_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_connect_with_deadline(solution), phrases)


def test_giving_up_at_once_is_caught():
    report = check_connect_with_deadline(connect_once_non_blocking)
    assert not report.passed
    assert "keep retrying until the deadline" in text(report)
    assert "instead of giving up at the first EAGAIN" in text(report)


def test_leaking_sockets_is_caught():
    report = check_connect_with_deadline(connect_leaking)
    assert not report.passed
    assert "socket(s) open when it returned" in text(report)
