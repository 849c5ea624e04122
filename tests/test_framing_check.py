"""The framing checker of 07-datagrams passes the reference solution and fails typical wrong ones, saying why."""

from __future__ import annotations

import socket
import struct

import pytest
from exercise_support import assert_caught, load_solutions

from helpers.capstone.framing_check import check_framing

pytestmark = pytest.mark.usefixtures("short_allowance")
solutions = load_solutions("07_framing.py")
ref = (solutions.recv_exactly, solutions.send_message, solutions.recv_message)


def recv_exactly_once(sock, n):
    return sock.recv(n)  # one recv: fewer bytes when they come in pieces


def recv_exactly_greedy(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(4096)  # takes the start of the next message too
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_exactly_short_at_eof(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break  # a short message passed off as whole
        data += chunk
    return data


def recv_exactly_spins_at_eof(sock, n):
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))  # b'' forever once the peer has closed
    return data


def send_message_with_send(sock, message):
    sock.send(struct.pack("!I", len(message)) + message)  # may take only part


def send_message_little_endian(sock, message):
    sock.sendall(struct.pack("<I", len(message)) + message)


def recv_message_no_none(sock, limit=65536):
    (length,) = struct.unpack("!I", recv_exactly(sock, 4))  # EOFError at a clean end too
    if length > limit:
        raise ValueError(length)
    return recv_exactly(sock, length)


def recv_message_no_limit(sock, limit=65536):
    first = sock.recv(1)
    if not first:
        return None
    (length,) = struct.unpack("!I", first + recv_exactly(sock, 3))
    return recv_exactly(sock, length)  # waits for a body of any length


def recv_exactly(sock, n):  # what the two recv_message above call, as in the student's notebook
    return solutions.recv_exactly(sock, n)


def recv_exactly_stub(sock, n):
    """Exactly n bytes."""
    ...  # your code here


CASES = [
    ("one recv", (recv_exactly_once, ref[1], ref[2]), ["keep calling recv until you have n bytes"]),
    ("greedy recv", (recv_exactly_greedy, ref[1], ref[2]), ["took bytes beyond the 10 asked for"]),
    ("short at EOF", (recv_exactly_short_at_eof, ref[1], ref[2]), ["recv_exactly returned b'012', expected EOFError"]),
    ("spins at EOF", (recv_exactly_spins_at_eof, ref[1], ref[2]),
     ["did not return within 3 s", "recv returns b'' at end of file"]),
    ("send, not sendall", (ref[0], send_message_with_send, ref[2]), ["send may take fewer bytes", "sendall"]),
    ("little-endian length", (ref[0], send_message_little_endian, ref[2]), ["big-endian: struct.pack('!I'"]),
    ("no None at a clean end", (ref[0], ref[1], recv_message_no_none), ["raised EOFError", "expected None"]),
    ("no limit", (ref[0], ref[1], recv_message_no_limit), ["waited for the body"]),
]


def test_reference_passes():
    report = check_framing(*ref)
    assert report.passed, repr(report)


@pytest.mark.parametrize("functions, phrases", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_solution_fails_saying_why(functions, phrases):
    assert_caught(check_framing(*functions), phrases)


def test_stub_is_not_solved_yet():
    assert "Not solved yet" in repr(check_framing(recv_exactly_stub, *ref[1:]))


def test_not_functions():
    assert "pass the three functions themselves" in repr(check_framing(b"x", socket, None))
