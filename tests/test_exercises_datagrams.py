"""The checkers of 07-datagrams pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import socket

from exercise_support import load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_echo_server, check_request_reply

solutions = load_solutions("07_datagrams.py")


# -- request_reply ------------------------------------------------------------------------------

def request_reply_no_timeout(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(request, address)
        return sock.recvfrom(65536)[0]  # waits forever if the datagram was lost


def request_reply_no_retry(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(request, address)
        try:
            return sock.recvfrom(65536)[0]
        except TimeoutError:
            return None


def request_reply_retries_forever(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        for _ in range(8):
            sock.sendto(request, address)
            try:
                return sock.recvfrom(65536)[0]
            except TimeoutError:
                pass
    return None


def request_reply_raises_timeout(address, request):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(request, address)
        try:
            return sock.recvfrom(65536)[0]
        except TimeoutError:
            sock.sendto(request, address)
            return sock.recvfrom(65536)[0]  # the second timeout escapes


def test_request_reply_reference_passes():
    report = check_request_reply(solutions.request_reply)
    assert report.passed, repr(report)


def test_request_reply_stub_is_not_solved_yet():
    def request_reply(address, request):
        """Ask."""
        ...  # your code here

    assert "Not solved yet" in repr(check_request_reply(request_reply))


def test_request_reply_without_timeout_fails():
    text = repr(check_request_reply(request_reply_no_timeout))
    assert "✗ we dropped your first datagram" in text
    assert "waited forever" in text and "settimeout(0.5)" in text


def test_request_reply_without_retry_fails():
    text = repr(check_request_reply(request_reply_no_retry))
    assert "✗ we dropped your first datagram" in text and "send once more" in text
    assert "you sent 1 datagram(s): one retry means two in all" in text


def test_request_reply_retrying_too_often_fails():
    text = repr(check_request_reply(request_reply_retries_forever))
    assert "✓ we dropped it, and you sent it again" in text
    assert "one retry means two in all" in text and "✓ with no answer" not in text


def test_request_reply_raising_fails():
    text = repr(check_request_reply(request_reply_raises_timeout))
    assert "raised TimeoutError" in text and "return None" in text


# -- echo_server --------------------------------------------------------------------------------

def echo_server_small_buffer(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            data, sender = sock.recvfrom(1024)  # too small for a 3005-byte datagram
            received.append(data)
            sock.sendto(data.upper(), sender)
    return received


def echo_server_first_sender_only(path, count):
    received = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        first = None
        for _ in range(count):
            data, sender = sock.recvfrom(65536)
            first = first or sender  # answers whoever came first
            received.append(data)
            sock.sendto(data.upper(), first)
    return received


def echo_server_returns_count(path, count):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        for _ in range(count):
            data, sender = sock.recvfrom(65536)
            sock.sendto(data.upper(), sender)
    return count


def test_echo_server_reference_passes():
    report = check_echo_server(solutions.echo_server)
    assert report.passed, repr(report)


def test_echo_server_small_buffer_fails():
    text = repr(check_echo_server(echo_server_small_buffer))
    assert "got 1024 bytes back (cut short)" in text and "MSG_TRUNC" in text


def test_echo_server_wrong_address_fails():
    text = repr(check_echo_server(echo_server_first_sender_only))
    assert "✗ " in text and "got no answer within 2 s" in text and "recvfrom" in text


def test_echo_server_wrong_return_fails():
    text = repr(check_echo_server(echo_server_returns_count))
    assert "✓ " in text and " (int); expected the list of the" in text


def test_echo_server_stub_is_not_solved_yet():
    def echo_server(path, count):
        """Echo."""
        ...  # your code here

    assert "Not solved yet" in repr(check_echo_server(echo_server))
