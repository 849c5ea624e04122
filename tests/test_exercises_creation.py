"""The checkers of 01-socket-creation: each passes the reference solution and explains typical mistakes.

The wrong solutions below are the ones students write: counting instead of looking for a hole,
listing every descriptor, guessing protocol numbers, letting the kernel's refusal escape.
"""

from __future__ import annotations

import pytest
from exercise_support import load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_default_protocol, check_next_fd, check_socket_fds

solution = load_solutions("01_socket_creation.py")


def failed(report) -> str:
    """The text of a report that must have failed (and not as a stub)."""
    assert not report.passed and not report.not_started, repr(report)
    return repr(report)


# -- reference solutions and stubs ------------------------------------------------------------------


@pytest.mark.parametrize("check, name", [
    (check_socket_fds, "socket_fds"), (check_next_fd, "next_fd"), (check_default_protocol, "default_protocol"),
])
def test_reference_solution_passes(check, name):
    report = check(getattr(solution, name))
    assert report.passed, repr(report)
    assert "All checks passed" in repr(report)


def test_stubs_are_not_solved_yet():
    def socket_fds(pid):
        """The descriptor numbers (sorted ints) of process `pid` that refer to sockets."""
        ...  # your code here

    def next_fd(pid):
        """doc"""
        ...

    def default_protocol(family, type):
        pass

    for check, stub in ((check_socket_fds, socket_fds), (check_next_fd, next_fd),
                        (check_default_protocol, default_protocol)):
        report = check(stub)
        assert report.not_started and not report.passed
        assert "Not solved yet" in repr(report)


def test_not_a_function():
    assert "pass the function's name without calling it" in failed(check_socket_fds([3, 4]))


# -- socket_fds -----------------------------------------------------------------------------------


def test_socket_fds_listing_every_descriptor():
    def socket_fds(pid):
        return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))  # noqa: F821 (runner imports os)

    text = failed(check_socket_fds(socket_fds))
    assert "not sockets: fd 0 (pipe)" in text
    assert "fd 100 (pipe)" in text
    assert "starts with 'socket:'" in text


def test_socket_fds_reading_its_own_process():
    def socket_fds(pid):
        found = []
        for name in os.listdir("/proc/self/fd"):  # noqa: F821
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):  # noqa: F821
                    found.append(int(name))
            except OSError:
                pass
        return sorted(found)

    text = failed(check_socket_fds(socket_fds))
    assert "missed the socket(s) at [" in text


def test_socket_fds_returning_strings():
    def socket_fds(pid):
        return [n for n in os.listdir(f"/proc/{pid}/fd")  # noqa: F821
                if os.readlink(f"/proc/{pid}/fd/{n}").startswith("socket:")]  # noqa: F821

    assert "return numbers, e.g. int(name)" in failed(check_socket_fds(socket_fds))


def test_socket_fds_that_hangs_is_stopped():
    def socket_fds(pid):
        while True:
            pass

    text = failed(check_socket_fds(socket_fds))
    assert "did not return within" in text and "wait forever" in text


# -- next_fd -----------------------------------------------------------------------------------------


def test_next_fd_one_past_the_highest():
    def next_fd(pid):
        return max(int(n) for n in os.listdir(f"/proc/{pid}/fd")) + 1  # noqa: F821

    text = failed(check_next_fd(next_fd))
    assert "in a new process" in text and "you said 102 (int), but socket() gave 3" in text
    assert "one past the highest" in text and "LOWEST free number" in text


def test_next_fd_counting_descriptors():
    def next_fd(pid):
        return len(os.listdir(f"/proc/{pid}/fd"))  # noqa: F821

    text = failed(check_next_fd(next_fd))
    assert "but socket() gave 3" in text
    assert "the number of open descriptors" in text


def test_next_fd_ignoring_holes():
    def next_fd(pid):
        low = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd") if int(n) < 100)  # noqa: F821
        return low[-1] + 1

    text = failed(check_next_fd(next_fd))
    assert "✓ in a new process: you said 3, and socket() gave 3" in text
    assert "✗ after a few opens and closes (a hole)" in text and "but socket() gave" in text


def test_next_fd_that_raises():
    def next_fd(pid):
        return int(open(f"/proc/{pid}/next_fd").read())

    assert "raised FileNotFoundError" in failed(check_next_fd(next_fd))


# -- default_protocol --------------------------------------------------------------------------------


def test_default_protocol_guessed_from_the_type():
    def default_protocol(family, type):
        return 6 if type == socket.SOCK_STREAM else 17  # noqa: F821

    text = failed(check_default_protocol(default_protocol))
    assert "the kernel says" in text


def test_default_protocol_letting_the_refusal_escape():
    def default_protocol(family, type):
        with socket.socket(family, type, 0) as s:  # noqa: F821
            return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)  # noqa: F821

    text = failed(check_default_protocol(default_protocol))
    assert "raised OSError" in text or "raised PermissionError" in text
    assert "catch OSError and return None" in text


def test_default_protocol_leaving_sockets_open():
    def default_protocol(family, type):
        global kept
        try:
            s = socket.socket(family, type, 0)  # noqa: F821
        except OSError:
            return None
        kept = s
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)  # noqa: F821

    assert "socket(s) open when it returned" in failed(check_default_protocol(default_protocol))


def test_default_protocol_returning_the_socket():
    def default_protocol(family, type):
        try:
            return socket.socket(family, type, 0)  # noqa: F821
        except OSError:  # noqa: F821
            return None

    text = failed(check_default_protocol(default_protocol))
    assert "returned the socket itself, the kernel says" in text
    assert "return its protocol number (an int)" in text
