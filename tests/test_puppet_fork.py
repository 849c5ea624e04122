"""Puppet.fork(): a puppet's child process, driven from the notebook as a puppet of its own.

Real fork(), real sockets: the child must hold the parent's descriptors under the same numbers, a
connection must stay open while either copy of it is open, and an ended child must be a zombie of
its parent (state Z in /proc) until the parent reaps it. Nothing may outlive the test: no process,
no zombie of ours, no descriptor in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from socket import AF_UNIX, SOCK_STREAM

import psutil
import pytest

from helpers import PendingCall, Puppet, PuppetExited, observe, stop_all, workspace
from helpers.widgets import ProcessCard

pytestmark = [
    pytest.mark.skipif(not observe.syscalls_visible(), reason="/proc does not show system calls here"),
    pytest.mark.usefixtures("nothing_left_behind"),
]


@pytest.fixture
def srv():
    """A puppet with a listening socket at a fresh path, its socket file removed afterwards."""
    server = Puppet("server")
    path = workspace().path("fork.sock")
    server.listener = server.socket(AF_UNIX, SOCK_STREAM)
    server.listener.bind(path)
    server.listener.listen(4)
    server.path = path
    yield server
    server.stop()
    if os.path.lexists(path):
        os.unlink(path)


@pytest.fixture
def client(srv):
    """A client in this process, connected to `srv` and accepted there: (client socket, srv's connected socket)."""
    sock = socket.socket(AF_UNIX, SOCK_STREAM)
    sock.connect(srv.path)
    conn, _ = srv.listener.accept()
    yield sock, conn
    sock.close()


def _stat(pid: int) -> tuple[str, int]:
    """(state letter, parent pid) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _fd_targets(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def _no_eof_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(10) != b""
    except TimeoutError:
        return True


def test_the_child_is_a_process_whose_parent_is_the_puppet(srv):
    child = srv.fork()
    named = srv.fork(name="child 2")
    assert _stat(child.pid) == ("S", srv.pid) and child.pid not in (srv.pid, os.getpid())
    assert psutil.Process(child.pid).ppid() == srv.pid
    assert child.parent is srv and srv.children == [child, named] and srv.parent is None
    assert (child.name, named.name) == ("server-child", "child 2")
    assert repr(child) == f"<Puppet server-child pid={child.pid}, forked from server (pid {srv.pid}) running>"
    assert ProcessCard(child).plain() == (f"server-child (pid {child.pid}), forked from server (pid {srv.pid})\n"
                                          f"  server-child  S (sleeping)  idle, waiting for the next call")
    assert ProcessCard(srv).plain().splitlines()[0] == f"server (pid {srv.pid})"
    assert child.socket().getsockname() == ("0.0.0.0", 0)  # it runs calls of its own


def test_the_child_holds_the_parents_sockets_under_the_same_numbers(srv, client):
    _, conn = client
    child = srv.fork()
    parent_fds, child_fds = _fd_targets(srv.pid), _fd_targets(child.pid)
    for sock in (srv.listener, conn):
        copy = child.copy_of(sock)
        assert copy.fileno() == sock.fileno() and copy.puppet is child
        assert child_fds[sock.fileno()] == parent_fds[sock.fileno()]  # the same socket: socket:[inode]
        assert copy.getsockname() == sock.getsockname()
    assert child.copy_of(conn) is child.copy_of(conn)  # one view per socket, so its close shows everywhere
    child.copy_of(srv.listener).close()
    assert child.socket(AF_UNIX, SOCK_STREAM).fileno() == srv.listener.fileno()  # the lowest free number, as in C
    assert srv.listener.getsockname() == srv.path  # the parent's copy is untouched


def test_a_connection_stays_open_until_both_copies_are_closed(srv, client):
    sock, conn = client
    child = srv.fork()
    conn.close()  # the parent's copy: the forking server's second close()
    assert _no_eof_within(sock, 0.3), "the client read the end of stream while the child still held the connection"
    child.copy_of(conn).sendall(b"from the child")
    sock.settimeout(2)
    assert sock.recv(100) == b"from the child"
    child.copy_of(conn).close()
    assert sock.recv(10) == b""


def test_an_ended_child_is_a_zombie_until_its_parent_reaps_it(srv):
    child = srv.fork()
    waiting = srv.waitpid(child.pid, 0)  # the parent sleeps until its child ends
    assert isinstance(waiting, PendingCall) and waiting.snapshot.syscall == "wait4"
    assert child.stop() == 0
    assert waiting.result(timeout=2) == (child.pid, 0) and not os.path.exists(f"/proc/{child.pid}")

    second = srv.fork()
    assert srv.waitpid(second.pid, os.WNOHANG) == (0, 0)  # still running: nothing to collect
    assert second.stop() == 0 and not second.alive and second.returncode == 0
    assert _stat(second.pid) == ("Z", srv.pid)  # ended, its status kept for its parent
    assert srv.waitpid(second.pid, os.WNOHANG) == (second.pid, 0)
    assert not os.path.exists(f"/proc/{second.pid}") and second.returncode == 0
    with pytest.raises(PuppetExited, match=rf"puppet server-child \(pid {second.pid}\) exited \(status 0\)"):
        second.socket()
    with pytest.raises(ChildProcessError):
        srv.waitpid(second.pid, os.WNOHANG)  # reaped once, gone for good


def test_a_child_killed_by_a_signal_says_so_and_is_reaped_with_that_status(srv):
    child = srv.fork()
    os.kill(child.pid, signal.SIGKILL)
    assert observe.wait_until(lambda: not child.alive, 2)
    assert child.returncode == -signal.SIGKILL
    assert srv.waitpid(child.pid) == (child.pid, signal.SIGKILL)
    with pytest.raises(PuppetExited, match=r"killed by SIGKILL \(signal 9\)"):
        child.socket()


def test_stopping_the_parent_first_stops_and_reaps_its_children(srv):
    child = srv.fork()
    grandchild = child.fork()
    assert _stat(grandchild.pid)[1] == child.pid
    pids = (srv.pid, child.pid, grandchild.pid)
    assert srv.stop() == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids), "a zombie left behind"  # none for init
    assert (child.returncode, grandchild.returncode) == (0, 0)
    with pytest.raises(PuppetExited):
        grandchild.socket()


def test_a_parent_asleep_in_a_call_still_reaps_its_children_when_stopped(srv):
    child = srv.fork()
    call = srv.listener.accept()  # the parent's main thread sleeps: only its exit path can reap
    assert isinstance(call, PendingCall)
    srv.stop()
    assert not os.path.exists(f"/proc/{child.pid}") and child.returncode == 0
    with pytest.raises(PuppetExited):
        call.result(timeout=1)


def test_a_child_dies_with_its_parent_puppet(srv):
    child = srv.fork()
    os.kill(srv.pid, signal.SIGKILL)
    assert observe.wait_until(lambda: not child.alive, 2), "the child outlived its parent puppet"
    with pytest.raises(PuppetExited):
        child.socket()
    assert child.stop() in (None, -signal.SIGKILL)  # its status went to whoever adopted it


def test_fork_keeps_only_the_calling_thread_and_the_signal_dispositions(srv, client):
    sock, _ = client
    waiter = srv.thread().use(srv.listener).accept()  # a second puppet thread, asleep in accept
    assert isinstance(waiter, PendingCall)
    srv.on_signal(signal.SIGUSR1, "return")
    child = srv.fork()
    assert [name for name, _ in child.threads()] == ["server-child"]
    assert psutil.Process(child.pid).num_threads() == 2  # its main thread and its own router
    assert child.signal(signal.SIGUSR1) == "SIGUSR1 delivered: the handler ran"
    assert child.handled_signals() == ["SIGUSR1"] and srv.handled_signals() == []  # its own event pipe
    listener_fd = srv.listener.fileno()
    assert repr(child.c.close(listener_fd)) == "0"  # libc in the child: its own descriptor table
    assert child.c.close(listener_fd).errno == "EBADF"
    late = socket.socket(AF_UNIX, SOCK_STREAM)
    late.connect(srv.path)  # the parent's listener still works, and its thread still waits in accept
    conn, _ = waiter.result(timeout=2)
    assert conn.fileno() > 0
    late.close()
    sock.close()


def test_copy_of_takes_only_what_fork_copied(srv):
    child = srv.fork()
    later = srv.socket(AF_UNIX, SOCK_STREAM)
    with pytest.raises(ValueError, match="not copied into server-child by fork"):
        child.copy_of(later)
    with pytest.raises(ValueError, match="not copied"):
        srv.copy_of(srv.listener)  # not a forked puppet
    with pytest.raises(ValueError, match="not copied"):
        child.copy_of(child.socket())


def test_stop_all_stops_forked_puppets_too(srv):
    child = srv.fork()
    assert stop_all() >= 2
    assert not child.alive and not srv.alive and not os.path.exists(f"/proc/{child.pid}")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may start a puppet as another user")
def test_a_puppet_running_as_nobody_forks_a_child_running_as_nobody():
    with Puppet("guest", user="nobody") as guest:
        child = guest.fork()
        assert child.uid == 65534 and psutil.Process(child.pid).uids().real == 65534
        left, right = child.socketpair()
        left.sendall(b"hi")
        assert right.recv(10) == b"hi"


_HOLDER = """
import threading
from helpers import Puppet
srv = Puppet("server")
child = srv.fork()
print(srv.pid, child.pid, flush=True)
threading.Event().wait()
"""


def test_kill_9_of_the_kernel_takes_the_puppet_and_its_child(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        pids = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(pids) == 2 and _stat(pids[1])[1] == pids[0]
        holder.kill()
        holder.wait(5)

        def gone(pid: int) -> bool:
            try:
                return _stat(pid)[0] in "ZX"
            except OSError:
                return True

        assert observe.wait_until(lambda: all(gone(pid) for pid in pids), 2), "puppet or child outlived the kernel"
    finally:
        holder.kill()
        holder.wait(5)
        holder.stdout.close()


def test_a_kernel_that_exits_leaves_neither_process_nor_zombie(tmp_path):
    """At exit the puppets are stopped children first, so each parent reaps its own: none is left for init."""
    code = ("import atexit\n"
            "atexit.register(lambda: print(srv.returncode, child.returncode))  # runs after the helpers' hooks\n"
            "from helpers import Puppet\nsrv = Puppet('server')\nchild = srv.fork()\nprint(srv.pid, child.pid)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                         env=dict(os.environ, TMPDIR=str(tmp_path))).stdout
    pids_line, statuses = out.splitlines()
    pids = [int(pid) for pid in pids_line.split()]
    assert statuses == "0 0", "not stopped in order: the parent was terminated, its child killed with it"
    assert observe.wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), 2), \
        [_stat(pid) for pid in pids if os.path.exists(f"/proc/{pid}")]
