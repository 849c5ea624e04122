"""helpers.puppet: real processes driven one socket call at a time, against real sockets.

Every expectation here is something Linux does: the puppet must show it, not paper over it
(docs/architecture.md draws the machinery). A call that blocks must come back as a PendingCall
seen asleep in the right system call, and resolve by itself when the kernel lets it go.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from socket import AF_INET, AF_UNIX, SHUT_RDWR, SOCK_STREAM

import psutil
import pytest

import helpers as helpers_package
from helpers import PendingCall, Puppet, PuppetBusy, PuppetExited, RemoteSocket, observe, workspace

pytestmark = pytest.mark.skipif(not observe.syscalls_visible(), reason="/proc does not show system calls here")

FAMILIES = [pytest.param(AF_UNIX, id="unix"), pytest.param(AF_INET, id="tcp")]


def _children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def make():
    """Start puppets for a test; all are stopped afterwards, and none may be left running."""
    before = _children()
    started: list[Puppet] = []

    def start(name: str = "puppet", **kwargs) -> Puppet:
        puppet = Puppet(name, **kwargs)
        started.append(puppet)
        return puppet

    yield start
    for puppet in started:
        puppet.stop()
    assert _children() <= before, "a test left puppet processes running"


@pytest.fixture
def paths():
    """Socket paths in the kernel's workspace, unlinked after the test."""
    made: list[str] = []

    def path(name: str) -> str:
        made.append(workspace().path(name))
        return made[-1]

    yield path
    for p in made:
        if os.path.lexists(p):
            os.unlink(p)


def _listener(puppet: Puppet, family: int, path: str, backlog: int = 1):
    """A listening socket in `puppet` and the address a client connects to."""
    sock = puppet.socket(family, SOCK_STREAM)
    sock.bind(path if family == AF_UNIX else ("127.0.0.1", 0))
    sock.listen(backlog)
    return sock, (path if family == AF_UNIX else sock.getsockname())


def _assert_blocked_in_accept(call, listener: RemoteSocket) -> None:
    assert isinstance(call, PendingCall), call
    assert call.snapshot.syscall == "accept4"
    assert call.snapshot.fd == listener.fileno()
    assert call.snapshot.state == "S" and call.snapshot.wchan
    assert not call.done()


def _still_blocked(call: PendingCall, seconds: float = 0.3) -> bool:
    """The call has not finished within `seconds` and its thread still sleeps in the same call."""
    if observe.wait_until(call.done, seconds):
        return False
    now = observe.snapshot(call.puppet.pid, call.tid)
    return now.syscall == call.snapshot.syscall and now.sleeping


# -- plain calls ------------------------------------------------------------------------------
def test_socket_bind_listen_return_plain_values(make, paths):
    p = make("server")
    s = p.socket(AF_UNIX, SOCK_STREAM)
    assert isinstance(s, RemoteSocket)
    assert s.fileno() == 3  # the puppet's own pipes live high up: the first socket is fd 3, as in C
    assert (s.family, s.type) == (AF_UNIX, SOCK_STREAM)
    assert os.readlink(f"/proc/{p.pid}/fd/3").startswith("socket:[")
    path = paths("plain.sock")
    assert s.bind(path) is None
    assert s.listen(2) is None
    assert s.getsockname() == path
    assert s.gettimeout() is None
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert repr(s) == "<remote socket fd=3 AF_UNIX SOCK_STREAM in server>"


def test_a_large_result_is_returned_not_shown_as_blocked(make):
    # A result bigger than a pipe makes the puppet wait in write() on its reply pipe for a moment.
    p = make()
    a, b = p.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    for _ in range(5):
        sent = a.send(b"x" * (1 << 22))
        got = b.recv(1 << 22)
        assert isinstance(got, bytes) and len(got) == sent > 65536


def test_a_blocked_send_of_much_data_shows_a_short_label(make):
    p = make()
    a, b = p.socketpair()
    call = a.sendall(b"x" * 1_000_000)
    assert isinstance(call, PendingCall)
    assert call.snapshot.syscall in ("sendto", "write") and call.snapshot.fd == a.fileno()
    assert call.label == f"sendall({b'x' * 64!r}...(1000000 bytes))"
    assert len(repr(call)) < 300
    p.thread().use(b).close()  # the reader goes away: the writer wakes with EPIPE
    with pytest.raises(BrokenPipeError):
        call.result(timeout=2)
    assert len(call.outcome()) < 300


def test_accept_blocks_and_a_client_unblocks_it(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("accept.sock"))
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    assert srv.state().syscall == "accept4"
    assert repr(call).startswith(f"<server: accept() blocked in accept4(fd={listener.fileno()})")

    client = cli.socket(AF_UNIX, SOCK_STREAM)
    assert client.connect(address) is None
    assert observe.wait_until(call.done, 2)
    conn, peer = call.result(timeout=2)
    assert isinstance(conn, RemoteSocket) and conn.puppet is srv
    assert conn.fileno() == listener.fileno() + 1 and peer == ""
    assert "returned (<remote socket fd=4" in call.outcome()

    assert client.send(b"ping") == 4
    assert conn.recv(10) == b"ping"


def test_the_listening_socket_stays_free_for_the_next_client(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("again.sock"))
    for _ in range(2):
        call = listener.accept()
        _assert_blocked_in_accept(call, listener)
        cli.socket(AF_UNIX, SOCK_STREAM).connect(address)
        conn, _ = call.result(timeout=2)
        assert conn.fileno() > listener.fileno()


def test_result_times_out_while_the_call_is_still_blocked(make, paths):
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("slow.sock"))
    call = listener.accept()
    with pytest.raises(TimeoutError, match=r"accept\(\) still not finished after 0.1 s \(blocked in accept4"):
        call.result(timeout=0.1)
    with pytest.raises(ValueError, match="timeout"):
        call.result(timeout=None)
    assert not call.done()


def test_a_thread_that_is_busy_refuses_a_second_call(make, paths):
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("busy.sock"))
    call = listener.accept()
    with pytest.raises(PuppetBusy, match=r"server is still inside accept\(\) \(blocked in accept4"):
        listener.getsockname()
    with pytest.raises(PuppetBusy):
        srv.socket(AF_UNIX, SOCK_STREAM)
    assert not call.done()


def test_a_second_thread_acts_while_the_main_thread_is_blocked(make, paths):
    srv = make("server")
    path = paths("second.sock")
    listener, _ = _listener(srv, AF_UNIX, path)
    call = listener.accept()
    t = srv.thread()
    assert t.tid != srv.state().tid
    assert t.use(listener).getsockname() == path
    assert not call.done()


# -- errors ---------------------------------------------------------------------------------
def _note(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", []))


def test_second_bind_to_the_same_path_raises_eaddrinuse(make, paths):
    p, q = make("first"), make("second")
    path = paths("taken.sock")
    p.socket(AF_UNIX, SOCK_STREAM).bind(path)
    with pytest.raises(OSError) as info:
        q.socket(AF_UNIX, SOCK_STREAM).bind(path)
    assert type(info.value) is OSError and info.value.errno == errno.EADDRINUSE
    assert "EADDRINUSE (98): the address is taken" in _note(info.value)
    assert "Try:" in _note(info.value)
    assert f"in second: bind({path!r})" in _note(info.value)


def test_connect_to_a_stale_socket_file_is_refused(make, paths):
    srv, cli = make("server"), make("client")
    path = paths("stale.sock")
    s = srv.socket(AF_UNIX, SOCK_STREAM)
    s.bind(path)
    s.close()
    assert s.fileno() == -1
    assert stat.S_ISSOCK(os.stat(path).st_mode)  # the file stays after close
    with pytest.raises(ConnectionRefusedError) as info:
        cli.socket(AF_UNIX, SOCK_STREAM).connect(path)
    assert info.value.errno == errno.ECONNREFUSED
    assert "ECONNREFUSED (111)" in _note(info.value) and "Try:" in _note(info.value)


def test_connect_to_a_missing_path_raises_file_not_found(make, paths):
    cli = make("client")
    with pytest.raises(FileNotFoundError) as info:
        cli.socket(AF_UNIX, SOCK_STREAM).connect(paths("nobody-here.sock"))
    assert info.value.errno == errno.ENOENT
    assert "ENOENT (2)" in _note(info.value)


def test_a_path_too_long_is_refused_by_python_without_errno(make):
    p = make()
    with pytest.raises(OSError, match="AF_UNIX path too long") as info:
        p.socket(AF_UNIX, SOCK_STREAM).bind("/tmp/" + "x" * 103)
    assert info.value.errno is None
    assert "without an errno" in _note(info.value)


# -- what unblocks accept, and what does not ---------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_shutdown_from_a_second_thread_wakes_accept_with_einval(make, paths, family):
    srv = make("server")
    listener, _ = _listener(srv, family, paths("shut.sock"))
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    assert srv.thread().use(listener).shutdown(SHUT_RDWR) is None
    with pytest.raises(OSError) as info:
        call.result(timeout=2)
    assert info.value.errno == errno.EINVAL
    assert call.done()
    assert "raised OSError: [Errno 22]" in call.outcome()


@pytest.mark.parametrize("family", FAMILIES)
def test_close_from_a_second_thread_does_not_wake_accept(make, paths, family):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, family, paths("close.sock"))
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    assert srv.thread().use(listener).close() is None
    assert listener.fileno() == -1  # closed everywhere the socket is shown
    assert not os.path.exists(f"/proc/{srv.pid}/fd/3")  # the descriptor is really gone
    assert _still_blocked(call)
    # The "closed" socket still accepts the next client.
    assert cli.socket(family, SOCK_STREAM).connect(address) is None
    conn, _ = call.result(timeout=2)
    assert isinstance(conn, RemoteSocket)


def test_a_signal_handler_that_returns_leaves_accept_blocked(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("pep475.sock"))
    srv.on_signal(signal.SIGALRM, "return")
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    what = srv.signal(signal.SIGALRM)
    assert what.startswith("SIGALRM delivered: the handler ran and returned; accept() is blocked in accept4")
    assert _still_blocked(call)
    cli.socket(AF_UNIX, SOCK_STREAM).connect(address)
    conn, _ = call.result(timeout=2)
    assert isinstance(conn, RemoteSocket)


def test_a_signal_handler_that_raises_ends_accept(make, paths):
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("raise.sock"))
    srv.on_signal(signal.SIGALRM, "raise")
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    what = srv.signal(signal.SIGALRM)
    assert "RuntimeError: raised by the SIGALRM handler" in what
    with pytest.raises(RuntimeError, match="raised by the SIGALRM handler"):
        call.result(timeout=2)
    assert srv.alive
    assert listener.getsockname()  # the puppet goes on


def test_sigalrm_with_its_default_action_kills_the_puppet(make, paths):
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("alarm.sock"))
    srv.on_signal(signal.SIGALRM, "default")
    call = listener.accept()
    _assert_blocked_in_accept(call, listener)
    what = srv.signal(signal.SIGALRM)
    assert "killed by SIGALRM (signal 14)" in what
    with pytest.raises(PuppetExited, match="SIGALRM"):
        call.result(timeout=2)
    assert srv.returncode == -signal.SIGALRM
    assert not srv.alive


def test_accept_with_a_timeout_waits_in_poll_and_times_out(make, paths):
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("timeout.sock"))
    listener.settimeout(0.5)
    call = listener.accept()
    assert isinstance(call, PendingCall)
    assert call.snapshot.syscall in ("poll", "ppoll")
    assert call.snapshot.poll_fds == (listener.fileno(),)
    assert call.blocked_in.startswith(f"blocked in {call.snapshot.syscall}(fds=[{listener.fileno()}])")
    with pytest.raises(TimeoutError, match="timed out") as info:
        call.result(timeout=3)
    assert info.value.errno is None
    assert "settimeout" in _note(info.value)


# -- the accept queue ----------------------------------------------------------------------
def test_full_unix_accept_queue_blocks_a_connect_and_refuses_a_nonblocking_one(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("queue.sock"), backlog=1)
    for _ in range(2):  # listen(1): backlog + 1 connections fit
        assert cli.socket(AF_UNIX, SOCK_STREAM).connect(address) is None
    third, fourth = cli.socket(AF_UNIX, SOCK_STREAM), cli.socket(AF_UNIX, SOCK_STREAM)
    waiting = third.connect(address)
    assert isinstance(waiting, PendingCall)
    assert waiting.snapshot.syscall == "connect" and waiting.snapshot.fd == third.fileno()
    assert waiting.snapshot.wchan == "unix_wait_for_peer"

    side = cli.thread().use(fourth)  # the main thread is busy: a non-blocking try from a second one
    side.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        side.connect(address)
    assert info.value.errno == errno.EAGAIN

    accepted = listener.accept()  # returns at once (the queue is full) and frees a slot
    assert isinstance(accepted, tuple)
    assert waiting.result(timeout=2) is None  # the waiting connect goes through


# -- processes ------------------------------------------------------------------------------
_HOLDER = """
import socket, threading
from helpers import Puppet, workspace
a, b = Puppet("a"), Puppet("b")
s = a.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(workspace().path("held.sock"))
s.listen(1)
call = s.accept()
b.thread()
print(a.pid, b.pid, type(call).__name__, flush=True)
threading.Event().wait()
"""


def test_kill_9_of_the_process_holding_puppets_leaves_none(tmp_path):
    tmpdir = tmp_path / "t"
    tmpdir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=str(tmpdir)))
    try:
        a, b, kind = holder.stdout.readline().split()
        assert kind == "PendingCall"
        pids = [int(a), int(b)]
        assert not any(_gone(pid) for pid in pids)
        holder.kill()
        holder.wait(5)
        assert observe.wait_until(lambda: all(_gone(pid) for pid in pids), 2), "puppets outlived their kernel"
    finally:
        holder.kill()
        holder.wait(5)
        holder.stdout.close()


def test_stop_leaves_no_process_and_no_descriptor(paths):
    fds_before = sorted(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    p = Puppet("leaky?")
    pid = p.pid
    try:
        listener, _ = _listener(p, AF_UNIX, paths("fds.sock"))
        call = listener.accept()  # a pending call: its watcher thread reads replies
        p.thread().use(listener).getsockname()
    finally:
        assert p.stop() == 0
    assert _gone(pid) and not p.alive
    with pytest.raises(PuppetExited):
        call.result(timeout=1)
    assert observe.wait_until(lambda: threading.active_count() == threads_before, 2)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


def test_calls_on_a_stopped_or_killed_puppet_raise_puppet_exited(make):
    p, q = make("stopped"), make("killed")
    s = p.socket(AF_UNIX, SOCK_STREAM)
    p.stop()
    with pytest.raises(PuppetExited, match=r"puppet stopped \(pid \d+\) exited"):
        s.listen(1)
    with pytest.raises(PuppetExited):
        p.socket()

    r = q.socket(AF_UNIX, SOCK_STREAM)
    os.kill(q.pid, signal.SIGKILL)
    assert observe.wait_until(lambda: not q.alive, 2)
    with pytest.raises(PuppetExited, match=r"killed by SIGKILL \(signal 9\)"):
        r.listen(1)


def test_context_manager_stops_the_puppet():
    with Puppet("scoped") as p:
        pid = p.pid
        assert p.alive
    assert _gone(pid) and p.returncode == 0


# -- passing sockets, users, the workspace ------------------------------------------------------
def test_send_fds_passes_a_listening_socket_to_another_puppet(make, paths):
    a, b, c = make("a"), make("b"), make("c")
    link, link_address = _listener(a, AF_UNIX, paths("link.sock"))
    passed, passed_address = _listener(a, AF_UNIX, paths("passed.sock"))
    b_end = b.socket(AF_UNIX, SOCK_STREAM)
    b_end.connect(link_address)
    a_end, _ = link.accept()

    assert a.send_fds(a_end, b"take this", [passed]) == len(b"take this")
    data, socks, _flags, _addr = b.recv_fds(b_end, 1024, 4)
    assert data == b"take this"
    [received] = socks
    assert isinstance(received, RemoteSocket) and received.puppet is b
    assert received.getsockname() == passed_address  # the very same listening socket, now in b too
    inode = os.stat(f"/proc/{a.pid}/fd/{passed.fileno()}").st_ino
    assert os.stat(f"/proc/{b.pid}/fd/{received.fileno()}").st_ino == inode

    call = received.accept()
    _assert_blocked_in_accept(call, received)
    c.socket(AF_UNIX, SOCK_STREAM).connect(passed_address)
    conn, _ = call.result(timeout=2)
    assert conn.puppet is b


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a puppet as another user")
def test_a_puppet_can_run_as_nobody(make):
    p = make("guest", user="nobody")
    assert p.uid == 65534
    assert psutil.Process(p.pid).uids().real == 65534
    # The kernel's workspace is private: nobody cannot even create a socket file in it.
    with pytest.raises(PermissionError) as info:
        p.socket(AF_UNIX, SOCK_STREAM).bind("guest.sock")
    assert info.value.errno == errno.EACCES


def test_sockets_bound_by_puppets_live_in_the_private_workspace(make):
    p = make()
    ws = workspace()
    assert psutil.Process(p.pid).cwd() == ws.dir
    assert stat.S_IMODE(os.stat(ws.dir).st_mode) == 0o700
    s = p.socket(AF_UNIX, SOCK_STREAM)
    s.bind("relative.sock")  # a relative name lands in the workspace
    try:
        assert s.getsockname() == "relative.sock"
        assert "relative.sock" in ws.sockets()
        assert stat.S_ISSOCK(os.stat(os.path.join(ws.dir, "relative.sock")).st_mode)
    finally:
        p.unlink("relative.sock")
    assert "relative.sock" not in ws.sockets()


def test_signal_says_the_same_whichever_pipe_delivers_first(make, paths):
    """The handler's event and the call's reply (or the puppet's death) race through two pipes; the
    sentence must not depend on which one the notebook reads first: notebooks compare it."""
    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("race.sock"))
    srv.on_signal(signal.SIGALRM, "raise")
    said = set()
    for _ in range(30):
        listener.accept()
        said.add(srv.signal(signal.SIGALRM))
    assert said == {"SIGALRM delivered: the handler ran; server: accept() raised RuntimeError: raised by the "
                    "SIGALRM handler"}
    for round_ in range(10):
        victim = make(f"victim-{round_}")
        doomed, _ = _listener(victim, AF_UNIX, paths(f"doomed-{round_}.sock"))
        victim.on_signal(signal.SIGALRM, "default")
        doomed.accept()
        assert victim.signal(signal.SIGALRM).startswith(f"SIGALRM delivered: puppet victim-{round_} (pid ")


def test_the_command_channel_is_private_pipes_and_no_socket(make):
    """Nobody else can reach a puppet: it talks to the kernel over anonymous pipes and holds no socket."""
    p = make("quiet")
    table = {fd: os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in map(int, os.listdir(f"/proc/{p.pid}/fd"))}
    assert not [t for t in table.values() if t.startswith("socket:")], table
    channel = {fd: target for fd, target in table.items() if fd > 2}
    assert len(channel) == 4 and all(t.startswith("pipe:[") for t in channel.values()), channel
    holders = {}  # pipe -> the processes that hold it open
    for process in psutil.process_iter():
        try:
            fds = os.listdir(f"/proc/{process.pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{process.pid}/fd/{fd}")
            except OSError:  # closed meanwhile (e.g. the descriptor listdir used)
                continue
            if target in channel.values():
                holders.setdefault(target, set()).add(process.pid)
    assert all(pids == {os.getpid(), p.pid} for pids in holders.values()), holders  # the two ends: us, it


def test_without_syscalls_in_proc_a_blocked_call_is_pending_with_a_notice(make, paths):
    """Where /proc/<pid>/syscall cannot be read, a call that does not finish comes back as pending."""
    srv, cli = make("server"), make("client")
    srv.syscalls_visible = False  # what Puppet() finds on such a system
    listener, address = _listener(srv, AF_UNIX, paths("blind.sock"))
    call = listener.accept()
    assert isinstance(call, PendingCall) and call.snapshot is None
    assert "pending (this system does not show system calls in /proc)" in repr(call)
    cli.socket(AF_UNIX).connect(address)
    conn, _ = call.result(timeout=2)
    assert conn.fileno() == listener.fileno() + 1


# -- one reader per puppet; results wrapped once --------------------------------------------------
def _pipe_ends_shared_with(pid: int) -> set[int]:
    """Our descriptors that are the other ends of the pipes `pid` holds: a puppet's reply and event pipes."""
    theirs = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    ours = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            ours[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used
            continue
    return {fd for fd, target in ours.items() if target.startswith("pipe:") and target in theirs}


def test_no_thread_but_the_puppets_reader_reads_its_pipes(make, paths, monkeypatch):
    srv, cli = make("server"), make("client")
    watched = _pipe_ends_shared_with(srv.pid) | _pipe_ends_shared_with(cli.pid)
    readers: list[tuple[str, int]] = []
    real_read = os.read

    def spying_read(fd, size):
        if fd in watched:
            readers.append((threading.current_thread().name, fd))
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", spying_read)
    # Everything that waits for the puppet: a call that returns, one that blocks, its card's
    # callback, a second thread, a handled signal, result(), and the puppet's end.
    listener, address = _listener(srv, AF_UNIX, paths("readers.sock"))
    srv.on_signal(signal.SIGUSR1, "return")
    call = listener.accept()
    assert isinstance(call, PendingCall)
    call.add_done_callback(lambda call: call.outcome())
    assert srv.thread().use(listener).getsockname() == address
    assert srv.signal(signal.SIGUSR1).startswith("SIGUSR1 delivered: the handler ran and returned")
    assert srv.handled_signals() == ["SIGUSR1"]
    cli.socket(AF_UNIX).connect(address)
    call.result(timeout=2)
    srv.stop()
    assert readers, "the pipes were never read"
    assert {name for name, _ in readers} == {"read-server", "read-client"}, readers


def test_a_result_is_one_object_that_keeps_its_state(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("identity.sock"))
    call = listener.accept()
    cli.socket(AF_UNIX).connect(address)
    conn, _ = call.result(timeout=2)
    assert conn.fileno() == 4
    conn.close()
    again, _ = call.result(timeout=2)
    assert again is conn and again.fileno() == -1
    assert repr(conn) in repr(call) and "fd=-1" in repr(call)


def test_a_done_callback_runs_once_even_when_added_while_the_call_finishes(make, paths):
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("callbacks.sock"))
    call = listener.accept()
    ran: list[str] = []

    def first(call):
        ran.append("first")
        call.add_done_callback(lambda call: ran.append("added while finishing"))  # the window

    call.add_done_callback(first)
    cli.socket(AF_UNIX).connect(address)
    call.result(timeout=2)
    call.add_done_callback(lambda call: ran.append("added after"))
    assert observe.wait_until(lambda: len(ran) >= 3, 2)
    assert sorted(ran) == ["added after", "added while finishing", "first"]
    assert call.status == "returned" and call.outcome(with_name=False).startswith("accept() returned (<remote")


def test_a_card_flips_to_the_result_by_itself_through_public_api_only(make, paths, monkeypatch):
    from helpers import widgets

    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("card.sock"))
    call = listener.accept()
    shown: list[tuple] = []
    monkeypatch.setattr(widgets, "show", lambda widget, plain: shown.append((widget, plain)))
    widgets.show_call(call)
    [(widget, plain)] = shown
    # what nbval compares: the state when displayed, with the moment it was seen asleep
    assert re.fullmatch(rf"server: accept\(\) {re.escape(call.blocked_in)} at \d+\.\d\d s", plain), plain
    assert "blocked in accept4" in widget.value
    cli.socket(AF_UNIX).connect(address)
    assert observe.wait_until(lambda: "returned (&lt;remote socket fd=4" in widget.value, 2), widget.value
    conn, _ = call.result(timeout=2)
    conn.close()  # the card, repr(call) and result() agree on the socket as it is now
    assert "returned (&lt;remote socket fd=-1" in widget.value and "fd=-1" in repr(call)
    # widgets.py reaches no private attribute of anything but itself
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(widgets))
    private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__") and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert private == [], private


def test_a_card_keeps_the_story_of_a_blocked_accept_with_its_times(make, paths, monkeypatch):
    from helpers import widgets

    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("story.sock"))
    sent = time.monotonic()
    call = listener.accept()
    assert _still_blocked(call)  # at least 0.3 s asleep before anyone connects
    cli.socket(AF_UNIX).connect(address)
    conn, _ = call.result(timeout=2)
    elapsed = time.monotonic() - sent
    asleep, woke = call.timeline()
    seen = re.fullmatch(r"accept\(\) blocked in accept4\(fd=3\).* at (\d+\.\d\d) s", asleep)
    ended = re.fullmatch(r"-> returned \(<remote socket fd=4.*\) at (\d+\.\d\d) s", woke)
    assert seen and ended, (asleep, woke)
    assert 0 <= float(seen[1]) < 0.3 <= float(ended[1]) <= elapsed + 0.01, (asleep, woke, elapsed)
    shown: list[tuple] = []
    monkeypatch.setattr(widgets, "show", lambda widget, plain: shown.append((widget, plain)))
    widgets.show_call(call)  # shown again once finished: the text tells both moments, like the widget
    [(widget, plain)] = shown
    assert plain == f"server: {asleep}\n        {woke}", plain
    assert "blocked in accept4" in widget.value and "at " + ended[1] + " s" in widget.value
    conn.close()


def test_duration_is_the_calls_own_time_however_late_a_cell_asks(make, paths):
    """A later cell's `time.monotonic() - started` also counts the student's reading; `duration` does not."""
    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("duration.sock"))
    sent = time.monotonic()
    call = listener.accept()
    assert _still_blocked(call) and call.duration is None  # asleep: no duration yet
    cli.socket(AF_UNIX).connect(address)
    conn, _ = call.result(timeout=2)
    answered = time.monotonic() - sent
    time.sleep(0.3)  # the student reads before running the next cell
    took = call.duration
    assert 0.3 <= took <= answered, (took, answered)
    assert call.timeline()[-1].endswith(f" at {took:.2f} s") and call.duration == took
    conn.close()


def test_a_process_card_outlives_its_puppet_and_says_how_it_ended(make, paths, monkeypatch):
    from helpers import widgets

    srv = make("server")
    listener, _ = _listener(srv, AF_UNIX, paths("epitaph.sock"))
    call = listener.accept()
    assert isinstance(call, PendingCall)
    shown: list[tuple] = []
    monkeypatch.setattr(widgets, "show", lambda widget, plain: shown.append((widget, plain)))
    card = widgets.ProcessCard(srv)
    card._ipython_display_()  # shown: its table refreshes in a daemon thread
    assert "exited" not in shown[0][1] and "accept4(fd=3)" in shown[0][1]
    assert srv.signal(signal.SIGKILL).startswith("SIGKILL delivered")
    assert observe.wait_until(lambda: "killed by SIGKILL" in card.widget.value, 3), card.widget.value
    assert "last seen: server  accept4(fd=3)" in card.widget.value
    later = widgets.ProcessCard(srv).plain()  # a card made after the end tells the same story
    assert re.search(r"\n  exited at \d+\.\d\d s \(killed by SIGKILL\)\n  last seen: server  accept4\(fd=3\)$",
                     later), later


def test_a_cell_tells_of_a_card_above_that_flipped_while_it_ran(make, paths, monkeypatch, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from helpers import widgets

    srv, cli = make("server"), make("client")
    listener, address = _listener(srv, AF_UNIX, paths("note.sock"))
    monkeypatch.setattr(widgets._FlipNotes, "watched", [])
    monkeypatch.setattr(widgets._FlipNotes, "cell", None)
    shell = InteractiveShell.instance()
    try:
        shell.user_ns.update(listener=listener, cli=cli, address=address, AF_UNIX=AF_UNIX)
        shell.run_cell("call = listener.accept(); call")  # its card, shown while it sleeps
        shell.run_cell("x = 1")  # a cell that changes nothing: no line
        before = capsys.readouterr().out
        shell.run_cell("cli.socket(AF_UNIX).connect(address)")  # the accept above returns now
        note = capsys.readouterr().out
        shell.run_cell("call.result(timeout=2)[0].close()")  # told by result(): no line, and no second one
        after = capsys.readouterr().out
    finally:
        shell.events.unregister("pre_run_cell", widgets._FlipNotes.before_cell)
        shell.events.unregister("post_run_cell", widgets._FlipNotes.after_cell)
        InteractiveShell.clear_instance()
    assert "blocked in accept4(fd=3)" in before and "shown above" not in before, before
    assert re.fullmatch(r"\(the accept\(\) shown above, in server's card, returned \(<remote socket fd=4 .*\) "
                        r"at \d+\.\d\d s\)\n", note), note
    assert "shown above" not in after, after


def test_the_puppet_process_imports_only_its_own_side():
    """A puppet starts quickly: no notebook side (puppet, observe, widgets, ipywidgets), no site hooks."""
    code = ("import sys, helpers.puppet_child\n"
            "print(sorted(m for m in sys.modules if m.startswith(('helpers', 'ipywidgets', 'concurrent'))))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(helpers_package.__file__)))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=root)).stdout
    assert out.strip() == "['helpers', 'helpers.processes', 'helpers.puppet_child', 'helpers.wire']"
