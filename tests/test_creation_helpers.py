"""The helpers lessons 00 to 02 added, against real processes: fd_flags, umask_of, a puppet's resource
limits and threads, the error context, and the process card's text."""

from __future__ import annotations

import gc
import os
import resource
import socket
import stat

import psutil
import pytest

from helpers import Puppet, stop_all, workspace
from helpers.kernel_view import fd_flags, umask_of
from helpers.widgets import ProcessCard


@pytest.fixture
def srv():
    with Puppet("server") as puppet:
        yield puppet


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027])
def test_umask_of_reads_what_the_socket_file_mode_follows(srv, mask):
    srv.umask(mask)
    assert umask_of(srv.pid) == mask
    path = workspace().fresh_path(f"umask-{mask:o}.sock")
    srv.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~mask
    os.unlink(path)


def test_umask_of_defaults_to_this_process():
    mine = os.umask(0o022)
    os.umask(mine)
    assert umask_of() == mine


def test_fd_flags_access_mode_and_cloexec():
    r, w = os.pipe()
    try:
        assert fd_flags(os.getpid(), r) == ["O_RDONLY", "O_CLOEXEC"]
        assert fd_flags(os.getpid(), w) == ["O_WRONLY", "O_CLOEXEC"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            assert fd_flags(os.getpid(), s.fileno()) == ["O_RDWR", "O_CLOEXEC"]
            s.setblocking(False)
            assert fd_flags(os.getpid(), s.fileno()) == ["O_RDWR", "O_NONBLOCK", "O_CLOEXEC"]
            s.set_inheritable(True)
            assert "O_CLOEXEC" not in fd_flags(os.getpid(), s.fileno())
    finally:
        os.close(r)
        os.close(w)


def test_fd_flags_of_a_puppet_socket(srv):
    s = srv.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    assert fd_flags(srv.pid, s.fileno()) == ["O_RDWR", "O_CLOEXEC"]


def test_setrlimit_makes_socket_fail_with_emfile(srv):
    srv.setrlimit(resource.RLIMIT_NOFILE, (6, 6))
    assert srv.getrlimit(resource.RLIMIT_NOFILE) == (6, 6)
    made = [srv.socket(socket.AF_UNIX) for _ in range(3)]
    assert [s.fileno() for s in made] == [3, 4, 5]
    with pytest.raises(OSError) as info:
        srv.socket(socket.AF_UNIX)
    assert info.value.errno == 24
    made[0].close()
    assert srv.socket(socket.AF_UNIX).fileno() == 3
    # the puppet's own pipes, opened before the limit, still carry calls
    assert srv.getrlimit(resource.RLIMIT_NOFILE) == (6, 6)


def test_error_context_names_constants(srv):
    with pytest.raises(OSError) as info:
        srv.socket(socket.AF_UNIX, socket.SOCK_RDM)
    assert "in server: socket(AF_UNIX, SOCK_RDM)" in info.value.__notes__[0]
    assert "ESOCKTNOSUPPORT (94)" in info.value.__notes__[0]


def test_threads_lists_the_driven_threads(srv):
    assert srv.threads() == [("server", srv.pid)]
    t = srv.thread()
    assert srv.threads() == [("server", srv.pid), ("server-thread-1", t.tid)]


def test_process_card_blocked_idle_and_exited(srv):
    listener = srv.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = workspace().fresh_path("card.sock")
    listener.bind(path)
    listener.listen(1)
    assert ProcessCard(srv).plain() == f"server (pid {srv.pid})\n  server  S (sleeping)  idle, waiting for the next call"

    call = listener.accept()
    srv.thread()
    rows = ProcessCard(srv).plain().splitlines()
    assert rows[1].split() == ["server", "S", "(sleeping)", "accept4(fd=3)", "wchan", "__skb_wait_for_more_packets"]
    assert rows[2].split()[:3] == ["server-thread-1", "S", "(sleeping)"]
    assert rows[2].endswith("idle, waiting for the next call")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        call.result(timeout=2)
        # right after a call returns, the card waits for the thread to settle back to idle
        assert ProcessCard(srv).plain().splitlines()[1].endswith("idle, waiting for the next call")
    srv.stop()
    os.unlink(path)  # the socket file outlives its server (lesson 02): leave the workspace clean
    assert ProcessCard(srv).plain().splitlines()[1].split() == ["server", "exited", "-"]


def test_process_card_of_any_pid_shows_every_thread(srv):
    srv.thread()
    card = ProcessCard(srv.pid)
    lines = card.plain().splitlines()
    assert lines[0].endswith(f"(pid {srv.pid})")
    assert len(lines) == 1 + len(os.listdir(f"/proc/{srv.pid}/task"))
    assert all("(tid " in line for line in lines[2:])


def test_stop_all_stops_a_puppet_nobody_refers_to_any_more():
    """A cell run twice reassigns `srv`: the first puppet must not run on until the kernel exits."""
    pid = Puppet("forgotten").pid
    gc.collect()
    assert psutil.pid_exists(pid)
    assert stop_all() == 1
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
