"""A catalogue of wrong calls a student can make, and what each must give back.

For every entry: the real Python exception class (the one plain `socket` code would raise, where
one exists), a short notebook traceback that names the call and explains the error (never the
frames of the helper machinery), no hang, and no process left behind.
"""

from __future__ import annotations

import os
import signal
import socket
from socket import AF_INET, AF_UNIX, SOCK_DGRAM, SOCK_STREAM

import pytest

from helpers import Puppet, PuppetBusy, PuppetExited, workspace
from helpers.exercises import run_isolated

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("no_process_left", "no_fd_left")]  # tests/conftest.py


@pytest.fixture
def srv():
    with Puppet("server") as puppet:
        yield puppet


@pytest.fixture
def other():
    with Puppet("other") as puppet:
        yield puppet


_made: list[str] = []


def path(name: str) -> str:
    """A socket path of this module's own ("bad-..."), removed after each test."""
    _made.append(workspace().fresh_path(f"bad-{name}"))
    return _made[-1]


@pytest.fixture(autouse=True)
def remove_socket_files():
    yield
    while _made:
        p = _made.pop()
        if os.path.lexists(p) and not os.path.isdir(p):
            os.unlink(p)


def listening_unix(srv, name):
    s = srv.socket(AF_UNIX, SOCK_STREAM)
    p = path(name)
    s.bind(p)
    s.listen(1)
    return s, p


def assert_teaches(excinfo, *words):
    """The error renders as: its class and message, then where, then what it means (no helper frames)."""
    error = excinfo.value
    lines = error._render_traceback_()
    text = "\n".join(lines)
    assert lines[0].endswith(f"{type(error).__name__}\x1b[0m: {error}")
    assert "helpers/" not in text and "Traceback" not in text
    assert len(lines) >= 2, "no explanation beside the error"
    for word in words:
        assert word in text, f"{word!r} missing from:\n{text}"


# Each case: (id, how to make the mistake, expected exception class, words the explanation must hold)
def bogus_family(srv, other):
    srv.socket(12345, SOCK_STREAM)


def bogus_type(srv, other):
    srv.socket(AF_INET, 999)


def family_as_text(srv, other):
    srv.socket("AF_UNIX", SOCK_STREAM)


def tcp_socketpair(srv, other):
    srv.socketpair(AF_INET, SOCK_STREAM)


def path_too_long(srv, other):
    srv.socket(AF_UNIX).bind("/tmp/" + "x" * 200)


def path_in_missing_directory(srv, other):
    srv.socket(AF_UNIX).bind(path("no-such-dir") + "/s.sock")


def bind_twice(srv, other):
    s = srv.socket(AF_UNIX)
    s.bind(path("twice-1.sock"))
    s.bind(path("twice-2.sock"))


def bind_taken_path(srv, other):
    _, taken = listening_unix(srv, "taken.sock")
    srv.socket(AF_UNIX).bind(taken)


def bind_taken_port(srv, other):
    a = srv.socket()
    a.bind(("127.0.0.1", 0))
    a.listen()
    srv.socket().bind(a.getsockname())


def bind_tuple_to_unix(srv, other):
    srv.socket(AF_UNIX).bind(("127.0.0.1", 0))


def bind_path_to_tcp(srv, other):
    srv.socket(AF_INET).bind(path("tcp.sock"))


def listen_unbound_unix(srv, other):
    srv.socket(AF_UNIX).listen(1)


def listen_closed(srv, other):
    s = srv.socket(AF_UNIX)
    s.close()
    s.listen(1)


def listen_datagram(srv, other):
    s = srv.socket(AF_INET, SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)


def huge_backlog(srv, other):
    srv.socket().listen(2**40)


def accept_not_listening(srv, other):
    s = srv.socket(AF_UNIX)
    s.bind(path("quiet.sock"))
    s.accept()


def accept_datagram(srv, other):
    srv.socket(AF_UNIX, SOCK_DGRAM).accept()


def send_after_close(srv, other):
    a, b = srv.socketpair()
    a.close()
    a.send(b"x")


def send_text(srv, other):
    a, b = srv.socketpair()
    a.send("text, not bytes")


def sendall_none(srv, other):
    a, b = srv.socketpair()
    a.sendall(None)


def recv_negative(srv, other):
    a, b = srv.socketpair()
    a.recv(-1)


def recv_on_listener(srv, other):
    s, _ = listening_unix(srv, "listener.sock")
    s.recv(10)


def getpeername_unconnected(srv, other):
    srv.socket(AF_UNIX).getpeername()


def shutdown_unconnected(srv, other):
    srv.socket().shutdown(socket.SHUT_RDWR)


def shutdown_bad_how(srv, other):
    a, b = srv.socketpair()
    a.shutdown(7)


def negative_timeout(srv, other):
    srv.socket().settimeout(-1)


def zero_timeout_accept(srv, other):
    s, _ = listening_unix(srv, "zero.sock")
    s.settimeout(0)
    s.accept()


def connect_missing(srv, other):
    other.socket(AF_UNIX).connect(path("nobody-here.sock"))


def connect_tuple_to_unix(srv, other):
    other.socket(AF_UNIX).connect(("127.0.0.1", 1))


def connect_twice(srv, other):
    _, p = listening_unix(srv, "twice.sock")
    c = other.socket(AF_UNIX)
    c.connect(p)
    c.connect(p)


def bogus_sockopt(srv, other):
    srv.socket().getsockopt(socket.SOL_SOCKET, 9999)


def unlink_missing(srv, other):
    srv.unlink(path("never-made.sock"))


def signal_that_does_not_exist(srv, other):
    srv.signal("SIGNOPE")


def signal_number_zero(srv, other):
    srv.signal(0)


def handler_for_sigkill(srv, other):
    srv.on_signal(signal.SIGKILL, "raise")


def handler_unknown_action(srv, other):
    srv.on_signal(signal.SIGALRM, "explode")


def result_negative_timeout(srv, other):
    s, _ = listening_unix(srv, "neg.sock")
    s.accept().result(timeout=-1)


def result_zero_timeout_still_blocked(srv, other):
    s, _ = listening_unix(srv, "still.sock")
    s.accept().result(timeout=0)


def call_while_blocked(srv, other):
    s, _ = listening_unix(srv, "busy.sock")
    s.accept()
    s.getsockname()


def thread_uses_foreign_socket(srv, other):
    srv.thread().use(other.socket())


def call_on_stopped_puppet(srv, other):
    s = srv.socket()
    srv.stop()
    s.listen(1)


def call_on_killed_puppet(srv, other):
    s = srv.socket()
    srv.signal(signal.SIGKILL)
    s.getsockname()


def workspace_name_with_slash(srv, other):
    workspace().path("a/b.sock")


def workspace_name_too_long(srv, other):
    workspace().path("n" * 200)


def unknown_user(srv, other):
    Puppet("ghost", user="no-such-user-here")


CASES = [
    (bogus_family, OSError, ["EAFNOSUPPORT", "socket(12345"]),
    (bogus_type, OSError, ["in server"]),
    (family_as_text, TypeError, ["in server"]),
    (tcp_socketpair, OSError, ["EOPNOTSUPP"]),
    (path_too_long, OSError, ["sun_path", "Try:"]),
    (path_in_missing_directory, FileNotFoundError, ["ENOENT"]),
    (bind_twice, OSError, ["EINVAL"]),
    (bind_taken_path, OSError, ["EADDRINUSE", "Try:"]),
    (bind_taken_port, OSError, ["EADDRINUSE"]),
    (bind_tuple_to_unix, TypeError, ["bind("]),
    (bind_path_to_tcp, TypeError, ["bind("]),
    (listen_unbound_unix, OSError, ["EINVAL"]),
    (listen_closed, OSError, ["EBADF"]),
    (listen_datagram, OSError, ["EOPNOTSUPP"]),
    (huge_backlog, OverflowError, ["listen("]),
    (accept_not_listening, OSError, ["EINVAL"]),
    (accept_datagram, OSError, ["EOPNOTSUPP"]),
    (send_after_close, OSError, ["EBADF"]),
    (send_text, TypeError, ["bytes"]),
    (sendall_none, TypeError, ["sendall("]),
    (recv_negative, ValueError, ["recv(-1)"]),
    (recv_on_listener, OSError, ["EINVAL"]),  # Linux AF_UNIX says EINVAL, not ENOTCONN
    (getpeername_unconnected, OSError, ["ENOTCONN"]),
    (shutdown_unconnected, OSError, ["ENOTCONN"]),
    (shutdown_bad_how, OSError, ["EINVAL"]),
    (negative_timeout, ValueError, ["settimeout(-1)"]),
    (zero_timeout_accept, BlockingIOError, ["EAGAIN"]),
    (connect_missing, FileNotFoundError, ["ENOENT", "Try:"]),
    (connect_tuple_to_unix, TypeError, ["connect("]),
    (connect_twice, OSError, ["EISCONN"]),
    (bogus_sockopt, OSError, ["ENOPROTOOPT"]),
    (unlink_missing, FileNotFoundError, ["ENOENT"]),
    (signal_that_does_not_exist, ValueError, ["SIGNOPE", "signal.SIGALRM"]),
    (signal_number_zero, ValueError, ["not a signal"]),
    (handler_for_sigkill, OSError, ["EINVAL"]),
    (handler_unknown_action, ValueError, ["'raise'"]),
    (result_negative_timeout, ValueError, ["timeout"]),
    (result_zero_timeout_still_blocked, TimeoutError, ["accept4"]),
    (call_while_blocked, PuppetBusy, ["accept()", "thread()"]),
    (thread_uses_foreign_socket, ValueError, ["another process"]),
    (call_on_stopped_puppet, PuppetExited, ["start a new Puppet"]),
    (call_on_killed_puppet, PuppetExited, ["SIGKILL"]),
    (workspace_name_with_slash, ValueError, ["plain file name"]),
    (workspace_name_too_long, ValueError, ["sun_path"]),
    (unknown_user, ValueError, ["no-such-user-here"]),
]


def test_the_catalogue_is_long_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize(("mistake", "expected", "words"), [pytest.param(*c, id=c[0].__name__) for c in CASES])
def test_wrong_call_gives_the_real_exception_and_an_explanation(mistake, expected, words, srv, other):
    with pytest.raises(expected) as excinfo:
        mistake(srv, other)
    assert type(excinfo.value) is expected or expected is OSError and isinstance(excinfo.value, OSError)
    assert_teaches(excinfo, *words)


def test_result_awaited_twice_gives_the_same_answer(srv, other):
    s, p = listening_unix(srv, "again.sock")
    call = s.accept()
    other.socket(AF_UNIX).connect(p)
    first = call.result(timeout=2)
    second = call.result(timeout=2)
    assert first[1] == second[1] and first[0].fileno() == second[0].fileno()


def test_result_awaited_twice_raises_the_same_error_twice(srv):
    s, _ = listening_unix(srv, "again-err.sock")
    s.settimeout(0.05)
    call = s.accept()
    for _ in range(2):
        with pytest.raises(TimeoutError):
            call.result(timeout=2)


def test_negative_backlog_is_clamped_to_zero_like_python_does(srv):
    s = srv.socket(AF_UNIX)
    p = path("negative.sock")
    s.bind(p)
    s.listen(-5)
    from helpers.kernel_view import accept_queue

    assert accept_queue(p).backlog == 0


# The exercise runner: a student function that misbehaves must not take the checker down.
def hangs():
    while True:
        pass


def raises():
    raise KeyError("oops")


def wrong_type():
    return "a string where a number was expected"


def leaves_a_socket_open():
    global kept
    kept = socket.socket(socket.AF_UNIX)
    return 1


def test_runner_survives_a_function_that_hangs():
    outcome = run_isolated(hangs, timeout=0.5)
    assert outcome.timed_out and "did not return" in outcome.problem()


def test_runner_brings_back_an_exception():
    outcome = run_isolated(raises)
    assert isinstance(outcome.error, KeyError) and "KeyError" in outcome.problem()


def test_runner_brings_back_a_wrong_type_as_it_is():
    assert run_isolated(wrong_type).value == "a string where a number was expected"


def test_runner_reports_sockets_left_open():
    outcome = run_isolated(leaves_a_socket_open)
    assert outcome.value == 1 and len(outcome.left_open) == 1 and "socket:" in outcome.left_open[0]


def test_runner_refuses_something_that_is_not_a_function():
    with pytest.raises(TypeError, match="expected a function"):
        run_isolated(42)
