"""helpers.c_calls through `Puppet.c`: libc's accept() and signal set-up, against real sockets and signals.

What C gets is not what Python shows (signal(7), socket(7)): a handler installed without SA_RESTART
makes a blocked accept() fail with EINTR, one installed with SA_RESTART (glibc's signal() does
that) leaves it asleep, and SO_RCVTIMEO ends it with EAGAIN. Also here: a pending call refuses to
be unpacked, with a message that says what to do.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from socket import AF_UNIX, SOCK_STREAM

import psutil
import pytest

from helpers import PendingCall, Puppet, observe, workspace
from helpers.c_calls import CResult

pytestmark = pytest.mark.skipif(not observe.syscalls_visible(), reason="/proc does not show system calls here")


@pytest.fixture
def server():
    """A puppet with an AF_UNIX listening socket, its path, and a client puppet; none left afterwards."""
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    path = workspace().fresh_path("c-calls.sock")
    srv, cli = Puppet("server"), Puppet("client")
    listener = srv.socket(AF_UNIX, SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    yield srv, listener, path, cli
    srv.stop()
    cli.stop()
    os.unlink(path)
    assert {c.pid for c in psutil.Process().children(recursive=True)} <= before


def _connect(cli: Puppet, path: str):
    sock = cli.socket(AF_UNIX, SOCK_STREAM)
    sock.connect(path)
    return sock


def _pending_signals(pid: int) -> int:
    """The process's pending signal mask (ShdPnd: sent with kill(), not yet delivered to a thread)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1], 16) for line in status if line.startswith("ShdPnd:"))


def test_c_accept_sleeps_in_accept_and_returns_the_new_descriptor(server):
    srv, listener, path, cli = server
    call = srv.c.accept(listener)
    assert isinstance(call, PendingCall)
    assert call.snapshot.syscall == "accept" and call.snapshot.fd == listener.fileno()
    _connect(cli, path)
    fd = call.result(timeout=2)
    assert isinstance(fd, CResult) and fd.value > listener.fileno() and not fd.errno
    assert os.path.exists(f"/proc/{srv.pid}/fd/{fd.value}")
    assert srv.c.accept(fd.value) == CResult(-1, "EINVAL")  # a descriptor number, as in C: not listening
    assert srv.c.close(fd.value) == CResult(0)
    assert srv.c.close(fd.value) == CResult(-1, "EBADF")


def test_a_handler_without_sa_restart_makes_accept_fail_with_eintr(server):
    srv, listener, _, _ = server
    srv.on_signal(signal.SIGUSR1, "return")
    assert srv.c.restarts(signal.SIGUSR1) is False  # CPython's own sigaction() leaves SA_RESTART out
    assert srv.c.sigaction(signal.SIGUSR1, restart=False) == CResult(0)
    call = srv.c.accept(listener)
    assert isinstance(call, PendingCall)
    report = srv.signal(signal.SIGUSR1)
    assert call.result(timeout=2) == CResult(-1, "EINTR"), report
    assert "EINTR" in repr(call.result(timeout=0)) and "Interrupted system call" in repr(call.result(timeout=0))
    assert srv.handled_signals() == ["SIGUSR1"]


@pytest.mark.parametrize("install", ["signal", "sigaction"])
def test_a_handler_with_sa_restart_leaves_accept_asleep(server, install):
    srv, listener, path, cli = server
    srv.on_signal(signal.SIGUSR1, "return")
    if install == "signal":
        assert srv.c.signal(signal.SIGUSR1) is None  # glibc's signal(): BSD semantics, SA_RESTART
    else:
        assert srv.c.sigaction(signal.SIGUSR1, restart=True) == CResult(0)
    assert srv.c.restarts(signal.SIGUSR1) is True
    call = srv.c.accept(listener)
    os.kill(srv.pid, signal.SIGUSR1)
    bit = 1 << (signal.SIGUSR1 - 1)
    assert observe.wait_until(lambda: not _pending_signals(srv.pid) & bit, 2), "the signal was never delivered"
    again = observe.wait_until_blocked(srv.pid, timeout=2, own_fds=srv.own_fds)
    assert not call.done() and again.syscall == "accept", again
    _connect(cli, path)
    assert call.result(timeout=2).value > listener.fileno()
    # The handler did run: CPython's C handler noted it at once, its Python part ran when accept returned.
    assert srv.handled_signals() == ["SIGUSR1"]


@pytest.mark.parametrize("caller", ["c", "python"])
def test_so_rcvtimeo_ends_a_blocking_accept_with_eagain(server, caller):
    srv, listener, _, _ = server
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, 500_000))
    assert listener.gettimeout() is None  # Python's own timeout is off: the kernel's option acts alone
    start = time.monotonic()
    call = srv.c.accept(listener) if caller == "c" else listener.accept()
    assert isinstance(call, PendingCall)
    assert call.snapshot.syscall == ("accept" if caller == "c" else "accept4")
    if caller == "c":
        assert call.result(timeout=3) == CResult(-1, "EAGAIN")
    else:
        with pytest.raises(BlockingIOError):
            call.result(timeout=3)
    assert time.monotonic() - start >= 0.5


def test_the_signal_calls_refuse_a_signal_without_a_handler(server):
    srv = server[0]
    with pytest.raises(ValueError, match=r"SIGUSR2 has no handler.*on_signal"):
        srv.c.sigaction(signal.SIGUSR2, restart=True)
    with pytest.raises(AttributeError, match="offers accept"):
        srv.c.fork  # noqa: B018 (the attribute access is the test)


def test_a_c_call_refuses_another_puppets_socket(server):
    srv, _, _, cli = server
    with pytest.raises(ValueError, match="another process"):
        srv.c.accept(cli.socket(AF_UNIX, SOCK_STREAM))


def test_a_pending_call_refuses_unpacking_and_says_what_to_do(server):
    srv, listener, path, cli = server
    call = listener.accept()
    with pytest.raises(TypeError, match=r"still blocked in accept4\(fd=3\).*call\.result\(timeout="):
        conn, peer = call
    _connect(cli, path)
    conn, peer = call.result(timeout=2)
    with pytest.raises(TypeError, match=r"has finished.*call\.result\(timeout="):
        conn, peer = call
