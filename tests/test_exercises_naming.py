"""The checkers of 02-bind-and-unlink pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import errno
import os
import socket
import struct

import pytest
from exercise_support import assert_caught, load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_peer_uid, check_remove_if_stale

solutions = load_solutions("02_bind_and_unlink.py")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the client must run as another user (nobody)")


text = repr


# -- remove_if_stale ----------------------------------------------------------------------------

def remove_if_stale_stub(path):
    """Unlink `path` if it is a stale socket file."""
    ...  # your code here


def remove_if_stale_always(path):
    if os.path.exists(path):  # "just unlink it": also a live server's path, also someone's file
        os.unlink(path)
        return True
    return False


def remove_if_stale_without_stat(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        try:
            s.connect(path)
            return False
        except (FileNotFoundError, BlockingIOError):
            return False
        except ConnectionRefusedError:  # a regular file says ECONNREFUSED too
            os.unlink(path)
            return True


def remove_if_stale_ignoring_enoent(path):
    import stat

    if not stat.S_ISSOCK(os.stat(path).st_mode):  # raises FileNotFoundError on a missing path
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        if s.connect_ex(path) == errno.ECONNREFUSED:
            os.unlink(path)
            return True
    return False


def remove_if_stale_leaking(path, _probes=[]):  # noqa: B006 - the bug under test: probes kept, never closed
    import stat

    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    _probes.append(s)  # "for later": still open when the function returns
    if s.connect_ex(path) == errno.ECONNREFUSED:
        os.unlink(path)
        return True
    return False


def remove_if_stale_saying_words(path):
    return "removed" if os.path.exists(path) else "nothing"


def remove_if_stale_hanging(path):
    while True:
        pass


def test_remove_if_stale_reference_passes():
    report = check_remove_if_stale(solutions.remove_if_stale)
    assert report.passed, text(report)


def test_remove_if_stale_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_remove_if_stale(remove_if_stale_stub))


def test_remove_if_stale_not_a_function():
    report = check_remove_if_stale(remove_if_stale_stub("x"))
    assert not report.passed
    assert "pass the function's name" in text(report)


def test_unlinking_whatever_is_there_is_caught():
    report = check_remove_if_stale(remove_if_stale_always)
    assert not report.passed
    assert "its socket file was removed: a server still listens there" in text(report)
    assert "a regular file was removed" in text(report)


def test_unlinking_a_regular_file_is_caught():
    report = check_remove_if_stale(remove_if_stale_without_stat)
    assert not report.passed
    assert "stat.S_ISSOCK" in text(report)
    assert "the socket file was left alone (you returned False)" in text(report)


MISTAKES_REMOVE_IF_STALE = [
    pytest.param(remove_if_stale_ignoring_enoent, ["raise FileNotFoundError"], id="raising_on_a_missing_path_is_caught"),
    pytest.param(remove_if_stale_leaking, ["socket(s) open when it returned"], id="leaking_sockets_is_caught"),
    pytest.param(remove_if_stale_saying_words, [
        "return True if you removed the file, else False",
    ], id="wrong_type_is_caught"),
    pytest.param(remove_if_stale_hanging, ["did not return"], id="hanging_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_REMOVE_IF_STALE)
def test_remove_if_stale_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_remove_if_stale(solution), phrases)


# -- peer_uid -----------------------------------------------------------------------------------

def peer_uid_stub(name):
    """Return the peer's uid."""
    ...  # your code here


def peer_uid_own(name):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        conn.close()
    return os.getuid()  # our own uid, not the peer's


def peer_uid_first_field(name):
    import struct

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]  # the pid


def peer_uid_whole_struct(name):
    import struct

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))


def peer_uid_no_listen(name):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        conn, _ = listener.accept()  # EINVAL: not a listening socket
        return 0


def test_peer_uid_reference_passes():
    report = check_peer_uid(solutions.peer_uid)
    assert report.passed, text(report)


def test_peer_uid_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_peer_uid(peer_uid_stub))


MISTAKES_PEER_UID = [
    pytest.param(peer_uid_own, ["your own uid"], id="own_uid_is_caught", marks=as_root),  # as root the client is nobody
    pytest.param(peer_uid_first_field, ["the client's pid"], id="pid_instead_of_uid_is_caught"),
    pytest.param(peer_uid_whole_struct, ["return only the uid"], id="whole_struct_is_caught"),
    pytest.param(peer_uid_no_listen, ["nothing listened on the abstract name"], id="no_listen_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_PEER_UID)
def test_peer_uid_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_peer_uid(solution), phrases)


def test_struct_layout_matches_the_kernel():
    """The checker's hint ('3i' = pid, uid, gid) is what the kernel really returns."""
    a, b = socket.socketpair()
    with a, b:
        assert struct.unpack("3i", a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)) == \
            (os.getpid(), os.getuid(), os.getgid())
