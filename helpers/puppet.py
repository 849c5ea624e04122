"""A process the notebook drives one socket call at a time, and watches while it blocks.

    srv = Puppet("server")                      # a child Python process, dies with the kernel
    s = srv.socket(AF_UNIX, SOCK_STREAM)        # a remote socket: same methods as socket.socket
    s.bind(path); s.listen(2)                   # plain results, real OSError subclasses on failure
    call = s.accept()                           # blocks in the puppet, not in the notebook:
    call                                        #   server: accept() blocked in accept4(fd=3), ...
    call.result(timeout=2)                      # (<remote socket fd=4>, '') once a client connected

A call returns only when the puppet has finished it, or has been *seen* sleeping in the kernel
(`observe`), never in between: what a cell prints does not depend on timing. A blocked call comes
back as a `PendingCall` (`helpers.pending`); its card turns into the result by itself when the kernel lets the
puppet go (the puppet's reader thread resolves it, see `wire.Channel`). `srv.thread()` adds a
second thread acting on the same sockets, `srv.on_signal()` and `srv.signal()` deliver signals
with a chosen handler, and `child = srv.fork()` forks the puppet: its child is a puppet too (08).
The sockets are `helpers.remote.RemoteSocket`s. Introduced in 00-start-here.
"""

from __future__ import annotations

import atexit
import errno
import os
import pwd
import signal as signals
import subprocess
import time
from concurrent.futures import Future
from socket import AF_INET, AF_UNIX, SOCK_STREAM

from helpers import observe, processes, puppet_process, wire
from helpers.explain import Teaching, call_text
from helpers.pending import PendingCall, finished
from helpers.remote import CCalls, RemoteSocket
from helpers.socket_dir import workspace

__all__ = ["PendingCall", "Puppet", "PuppetBusy", "PuppetExited", "PuppetThread", "RemoteSocket", "finished",
           "puppets", "stop_all"]

START_TIMEOUT = 10.0
CALL_TIMEOUT = 10.0
QUICK = 0.001  # most calls finish well within a millisecond: only then is /proc read
# Strong references: a puppet whose variable was reassigned (a cell run twice) must still be
# stopped by stop_all(); with weak ones it would be forgotten and run on until the kernel exits.
_live: set[Puppet] = set()


class PuppetExited(ChildProcessError):
    """The puppet process is gone (it exited, or a signal killed it)."""


class PuppetBusy(RuntimeError):
    """The thread asked to make a call is still inside an earlier call."""


def puppets() -> list[Puppet]:
    """The puppets of this kernel that are still running."""
    return [p for p in _live if p.alive]


def stop_all() -> int:
    """Stop every puppet of this kernel (the last cell of a lesson); returns how many were running."""
    running = list(_live)
    for puppet in running:
        puppet.stop()
    return len(running)


# Before processes' own atexit terminates every child: a puppet stopped here stops its forked
# children first and reaps them, where a terminated one would leave them to init as zombies.
atexit.register(stop_all)


class _Lane:
    """One thread of the puppet: where its calls go, and how to see it from /proc."""

    def __init__(self, puppet: Puppet, name: str, tid: int, worker: int | None = None):
        self.puppet, self.name, self.tid, self.worker = puppet, name, tid, worker
        self.busy: PendingCall | None = None

    def call(self, handle: int, method: str, args: tuple = (), kwargs: dict | None = None, label: str = ""):
        """Run one call and return its value, or a PendingCall once the thread is seen blocked."""
        puppet = self.puppet
        if self.busy is not None and not self.busy.done():
            raise PuppetBusy(
                f"{self.name} is still inside {self.busy.label} ({self.busy.blocked_in}). One thread "
                f"makes one call at a time: wait with .result(), or act from a second thread: "
                f"t = {puppet.name_hint}.thread(); t.use(sock).method(...)"
            )
        sent = time.monotonic()
        future = puppet._channel.send(handle, method, args, kwargs or {}, self.worker)
        try:
            blocked, snap = self._watch(future)
        except BaseException:  # e.g. the Stop button while we watch: the call goes on in the puppet
            times = (sent, None)
            self.busy = PendingCall(self, label or call_text(method, args, kwargs), future, None, times)
            raise
        if not blocked:
            return future.result()
        times = (sent, time.monotonic())
        self.busy = PendingCall(self, label or call_text(method, args, kwargs), future, snap, times)
        return self.busy

    def _watch(self, future: Future) -> tuple[bool, observe.ThreadSnapshot | None]:
        """(False, None) once the call finishes; (True, snapshot) once the thread is seen asleep in the
        same call twice; (True, None) where /proc shows no system calls and the call goes on."""
        if wire.settled(future, QUICK):
            return False, None
        puppet = self.puppet
        if not puppet.syscalls_visible:
            return (not wire.settled(future, 0.2)), None
        previous = None
        deadline = time.monotonic() + CALL_TIMEOUT
        interval = 0.0005
        while time.monotonic() < deadline:
            snap = observe.blocked_in_call(puppet.pid, self.tid, puppet.own_fds)
            if snap is not None and snap == previous:
                return (not future.done()), snap
            previous = snap
            if wire.settled(future, interval):
                return False, None
            interval = min(interval * 1.5, 0.005)
        raise TimeoutError(f"{self.name} neither finished nor blocked within {CALL_TIMEOUT:.0f} s")


class PuppetThread(Teaching):
    """A second thread in a puppet, acting on the same sockets (`t.use(sock).shutdown(...)`)."""

    def __init__(self, lane: _Lane):
        self.puppet, self._lane = lane.puppet, lane

    @property
    def tid(self) -> int:
        return self._lane.tid

    def use(self, sock: RemoteSocket) -> RemoteSocket:
        """The same socket, with calls made from this thread."""
        if sock.puppet is not self.puppet:
            raise ValueError(f"{sock!r} lives in another process; a thread can only use its own process's sockets")
        return sock._view_from(self._lane)

    def __repr__(self) -> str:
        return f"<thread {self._lane.name} of {self.puppet.name}>"


class Puppet(Teaching):
    """A child process that runs socket calls on command. Use as a context manager, or `stop()`.

    `user="nobody"` runs it as another user (the notebook must run as root for that). `fork()` makes
    another, the puppet's child; `parent` is then the puppet it was forked from (else None).
    """

    def __init__(self, name: str = "puppet", user: str | None = None):
        self.name = name
        if user is not None:
            _check_user(user)
        (cmd_r, cmd_w), (reply_r, reply_w), (side_r, side_w), (events_r, events_w) = (os.pipe() for _ in range(4))
        launch = wire.Launch(cmd_r, reply_w, side_r, events_w, user or "")
        try:
            proc = processes.start(
                "puppet_child", *launch.argv(), pass_fds=launch[:4], cwd=workspace().dir, skip_site=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in (*launch[:4], cmd_w, reply_r, side_w, events_r):
                os.close(fd)
            raise
        for fd in launch[:4]:
            os.close(fd)
        self._start(puppet_process.Spawned(proc), None, (cmd_w, reply_r, side_w, events_r))

    def _start(self, process: puppet_process.Spawned | puppet_process.Forked, parent: Puppet | None,
               ends: tuple[int, int, int, int]) -> None:
        """Everything after the kernel's ends of the pipes (cmd, reply, side, events) exist: spawned or forked."""
        self._process, self.parent, self.pid = process, parent, process.pid
        self.children: list[Puppet] = []  # the puppets forked from this one
        self.waiting: list[PendingCall] = []  # its waitpid() calls still asleep
        self.name_hint = "srv" if "serv" in self.name else "p"
        cmd_w, reply_r, side_w, events_r = ends
        self._channel = wire.Channel(self.name, cmd_w, side_w, reply_r, events_r, self._adopt, self._exit_error)
        try:
            if not wire.settled(self._channel.hello, START_TIMEOUT):
                raise TimeoutError(f"puppet {self.name} did not start within {START_TIMEOUT:.0f} s")
            hello: wire.Hello = self._channel.hello.result()
        except BaseException:
            self.stop()
            raise
        self._main = _Lane(self, self.name, hello.tid)
        self._lanes = [self._main]  # the threads the notebook drives, for threads()
        self.own_fds = hello.own_fds  # its plumbing, never a call to show
        self.uid = hello.uid
        self.syscalls_visible = observe.syscalls_visible(self.pid)
        _live.add(self)

    def _adopt(self, value):
        """A result from the puppet, its sockets made RemoteSockets: done once, by the reader thread."""
        if isinstance(value, wire.SocketRef):
            return RemoteSocket(self, value, self._main)
        if type(value) in (tuple, list):
            return type(value)(self._adopt(v) for v in value)
        return value

    def _exit_error(self) -> PuppetExited:
        rc = self._process.wait(1.0)
        if rc is not None and rc < 0:
            how = f"was killed by {signals.Signals(-rc).name} (signal {-rc})"
        else:
            how = self._process.unknown_end if rc is None else f"exited (status {rc})"
        return PuppetExited(f"puppet {self.name} (pid {self.pid}) {how}; start a new Puppet to go on")

    def _process_call(self, method: str, *args, label: str = ""):
        return self._main.call(0, method, args, label=label)

    # -- the process ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._process.alive()

    @property
    def returncode(self) -> int | None:
        return self._process.returncode()

    @property
    def c(self) -> CCalls:
        """The same process calling libc directly: `srv.c.accept(listener)` (see helpers.c_calls)."""
        return CCalls(self, self._main)

    def state(self) -> observe.ThreadSnapshot:
        """What the main thread does right now (state, system call, wchan)."""
        return observe.snapshot(self.pid, self._main.tid)

    def socket(self, family=AF_INET, type=SOCK_STREAM, proto=0) -> RemoteSocket:
        """socket(family, type, proto) in the puppet.  C: int socket(int domain, int type, int protocol)"""
        return self._process_call("socket", family, type, proto, label=call_text("socket", (family, type)))

    def socketpair(self, family=AF_UNIX, type=SOCK_STREAM, proto=0):
        """socketpair(): two connected sockets.  C: int socketpair(int domain, int type, int protocol, int sv[2])"""
        return self._process_call("socketpair", family, type, proto)

    def unlink(self, path: str) -> None:
        """unlink(path) in the puppet: remove a name (e.g. a socket file) from its directory."""
        return self._process_call("unlink", path, label=f"unlink({path!r})")

    def umask(self, mask: int) -> int:
        """umask(mask) in the puppet; returns the old mask. Socket files get 0777 & ~umask."""
        return self._process_call("umask", mask, label=f"umask(0o{mask:03o})")

    def chmod(self, path: str, mode: int) -> None:
        """chmod(path, mode) in the puppet: who may connect to a socket file (write permission)."""
        return self._process_call("chmod", path, mode, label=f"chmod({path!r}, 0o{mode:o})")

    def getrlimit(self, which: int) -> tuple[int, int]:
        """The puppet's (soft, hard) limit, e.g. resource.RLIMIT_NOFILE: how many descriptors it may hold."""
        return self._process_call("getrlimit", which)

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        """Set the puppet's (soft, hard) limit; e.g. a low RLIMIT_NOFILE makes socket() fail with EMFILE."""
        return self._process_call("setrlimit", which, limits)

    def send_fds(self, sock: RemoteSocket, data: bytes, socks: list[RemoteSocket]):
        """Pass sockets to the peer process over an AF_UNIX socket (SCM_RIGHTS)."""
        return self._process_call("send_fds", sock._ref, [data], [s._ref for s in socks])

    def recv_fds(self, sock: RemoteSocket, bufsize: int = 1024, maxfds: int = 4):
        """Receive data and sockets sent with send_fds; the sockets come back as remote sockets."""
        return self._process_call("recv_fds", sock._ref, bufsize, maxfds)

    def on_signal(self, sig: int, action: str) -> None:
        """Choose what `sig` does to the puppet: "default", "ignore", "return" or "raise".

        "return": a handler runs and returns (Python then retries an interrupted call, PEP 475);
        "raise": the handler raises RuntimeError, which comes out of the call it interrupted.
        """
        sig = _signal_number(sig)
        return self._process_call("on_signal", sig, action, label=f"on_signal({sig.name}, {action!r})")

    def handled_signals(self) -> list[str]:
        """Names of the signals that reached a handler set with on_signal(), oldest first.

        The evidence that a signal the kernel raised by itself (SIGPIPE on a write to a closed peer)
        was delivered and caught, not merely survived. A handler's event is read before the reply
        of the call it interrupted, so it is here once that call has returned. Introduced in 06.
        """
        return [signals.Signals(event.signum).name for event in self._channel.events if event.kind == "signal"]

    def signal(self, sig, timeout: float = 2.0) -> str:
        """Send `sig` to the puppet and wait until its effect is seen; returns what happened."""
        sig = _signal_number(sig)
        if not self.alive or self._channel.closed:
            raise self._exit_error()
        events = self._channel.events
        seen = len(events)
        busy = self._main.busy if self._main.busy and not self._main.busy.done() else None
        os.kill(self.pid, sig)

        def effect():
            # Look at the call first: a puppet that dies right now resolves it too (PuppetExited),
            # and then its death, checked second, must win, whichever moment it happened at.
            returned = busy is not None and busy.done()
            if not self.alive or self._channel.closed:
                return "exited"
            if returned:
                return "returned"
            return "handled" if len(events) > seen else None

        what = observe.wait_until(effect, timeout)
        if what == "exited":
            self._process.wait(timeout)
            return f"{sig.name} delivered: {self._exit_error()}"
        if what == "returned":
            # The reader takes a handler's event before the reply of the call it ended, so by now
            # the event is counted: the sentence is the same whatever the timing.
            ran = "the handler ran; " if len(events) > seen else ""
            return f"{sig.name} delivered: {ran}{busy.outcome()}"
        if what == "handled":
            if busy is None:
                return f"{sig.name} delivered: the handler ran"
            again = observe.wait_until(
                lambda: busy.done() or observe.blocked_in_call(self.pid, self._main.tid, self.own_fds), timeout
            )
            if busy.done():
                return f"{sig.name} delivered: the handler ran; {busy.outcome()}"
            state = again.describe() if isinstance(again, observe.ThreadSnapshot) else "still pending"
            return f"{sig.name} delivered: the handler ran and returned; {busy.label} is {state} again"
        return f"{sig.name} delivered: no visible effect within {timeout} s (ignored or blocked?)"

    def thread(self, name: str | None = None) -> PuppetThread:
        """Start a second thread in the puppet; use it to act on sockets the main thread waits on."""
        worker = len(self._lanes) - 1  # the puppet numbers its workers in the order they start
        future = self._channel.start_thread()
        if not wire.settled(future, CALL_TIMEOUT):
            raise TimeoutError(f"{self.name} did not start a thread within {CALL_TIMEOUT:.0f} s")
        lane = _Lane(self, name or f"{self.name}-thread-{worker + 1}", future.result(), worker)
        self._lanes.append(lane)
        return PuppetThread(lane)

    def threads(self) -> list[tuple[str, int]]:
        """(name, thread id) of each thread the notebook drives: the main one, then each thread()."""
        return [(lane.name, lane.tid) for lane in self._lanes]

    def stop(self, timeout: float = 2.0) -> int | None:
        """Close the command pipes (the puppet exits), kill it if it does not; return its exit status.

        The puppets forked from it are stopped first, so that it reaps them on its way out. A forked
        puppet stays a zombie of its parent until the parent reaps it (`waitpid`) or ends.
        """
        for child in self.children:
            child.stop(timeout)
        self._channel.close()
        rc = self._process.stop(timeout)
        self._channel.join(timeout)  # the reader ends at end of file, failing calls still pending
        _live.discard(self)
        return rc

    def __enter__(self) -> Puppet:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        status = "running" if self.alive else f"exited ({self.returncode})"
        return f"<Puppet {self.name} pid={self.pid}{self.origin} {status}>"

    @property
    def origin(self) -> str:
        """`, forked from server (pid 1234)` for a forked puppet, else empty: what its card and repr add."""
        return "" if self.parent is None else f", forked from {self.parent.name} (pid {self.parent.pid})"

    # -- fork ------------------------------------------------------------------------------------
    def fork(self, name: str | None = None) -> Puppet:
        """fork() in the puppet: its child, a copy of its process, driven from here as a Puppet of its own.

        C: pid_t fork(void). Fork copies every descriptor: the child holds the parent's sockets under
        the same fd numbers (`child.copy_of(sock)`), and a socket is closed for good only once every
        copy is. Only the calling thread lives on in a child, so it has its main thread alone (no
        `thread()`s); the signal dispositions set with on_signal() are kept. It dies with its parent
        (PR_SET_PDEATHSIG), and its exit status is the parent's: once ended it is a zombie (state Z)
        until `parent.waitpid(child.pid, 0)`. Named f"{parent name}-child" unless `name` is given.
        """
        pid, fds, copied = finished(self._process_call("fork", label="fork()"), CALL_TIMEOUT)
        try:
            ends = puppet_process.open_ends(self.pid, fds)
        finally:
            self._process_call("handed_over", pid, label=f"handed_over({pid})")  # it closes its copies
        child = Puppet.__new__(Puppet)
        child.name, child._copied, child._copies = name or f"{self.name}-child", copied, {}
        child._start(puppet_process.Forked(pid, self), self, ends)
        self.children.append(child)
        return child

    def copy_of(self, sock: RemoteSocket) -> RemoteSocket:
        """This forked puppet's copy of `sock`, a socket its parent held when it forked: fork copies
        every descriptor, so it is the same socket under the same fd number, in a descriptor of this
        process's own (closing one copy leaves the other open)."""
        if self.parent is None or sock.puppet is not self.parent or sock._ref.handle >= self._copied:
            raise ValueError(f"{sock!r} was not copied into {self.name} by fork(): copy_of() takes a socket "
                             f"its parent puppet held when it forked")
        if sock._ref.handle not in self._copies:
            self._copies[sock._ref.handle] = RemoteSocket(self, sock._ref, self._main)
        return self._copies[sock._ref.handle]

    def waitpid(self, pid: int, options: int = 0):
        """waitpid(pid, options) -> (pid, status): collect an ended child's exit status, which removes
        its zombie. C: pid_t waitpid(pid_t pid, int *status, int options); os.WNOHANG: (0, 0) at once
        if it has not ended; without it the call sleeps until it has."""
        result = self._process_call("waitpid", pid, options, label=call_text("waitpid", (pid, options)))
        if isinstance(result, PendingCall):
            self.waiting.append(result)
            result.add_done_callback(self._waited)
        else:
            self._reaped(*result)
        return result

    def _waited(self, call: PendingCall) -> None:
        if call.status == "returned":
            self._reaped(*call.result(0))
        self.waiting.remove(call)  # last: once no call waits, every status collected is kept

    def _reaped(self, pid: int, status: int) -> None:
        """Keep a forked puppet's exit status, which only its parent can collect (the kernel cannot)."""
        for child in self.children:
            if child.pid == pid and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                child._process.status = os.waitstatus_to_exitcode(status)


def _check_user(user: str) -> None:
    """Refuse at once what the child could only fail at, with the reason."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"there is no user named {user!r} on this machine (try 'nobody')") from None
    if os.geteuid() != 0:
        raise PermissionError(errno.EPERM, f"only root may start a puppet as another user ({user!r}); "
                                           "leave out user= to run it as yourself")


def _signal_number(sig) -> signals.Signals:
    try:
        if isinstance(sig, str):
            return signals.Signals[sig if sig.startswith("SIG") else f"SIG{sig}"]
        return signals.Signals(sig)
    except (KeyError, ValueError):
        raise ValueError(f"{sig!r} is not a signal; try signal.SIGALRM, signal.SIGTERM, signal.SIGUSR1") from None
