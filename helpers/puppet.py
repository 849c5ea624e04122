"""A process the notebook drives one socket call at a time, and watches while it blocks.

    srv = Puppet("server")                      # a child Python process, dies with the kernel
    s = srv.socket(AF_UNIX, SOCK_STREAM)        # a remote socket: same methods as socket.socket
    s.bind(path); s.listen(2)                   # plain results, real OSError subclasses on failure
    call = s.accept()                           # blocks in the puppet, not in the notebook:
    call                                        #   server: accept() blocked in accept4(fd=3), ...
    call.result(timeout=2)                      # (<remote socket fd=4>, '') once a client connected

A call returns only when the puppet has finished it, or has been *seen* sleeping in the kernel
(`observe`), never in between: what a cell prints does not depend on timing. A blocked call comes
back as a `PendingCall`; its card turns into the result by itself when the kernel lets the
puppet go. `srv.thread()` adds a second thread acting on the same sockets, `srv.on_signal()` and
`srv.signal()` deliver signals with a chosen handler. Introduced in 00-start-here.
"""

from __future__ import annotations

import enum
import errno
import functools
import os
import pwd
import select
import signal as signals
import socket
import subprocess
import threading
import time
from socket import AF_INET, AF_UNIX, SOCK_STREAM

from helpers import c_calls, observe, processes, wire
from helpers.explain import for_notebook
from helpers.workspace import workspace

__all__ = ["PendingCall", "Puppet", "PuppetBusy", "PuppetExited", "RemoteSocket", "finished", "puppets", "stop_all"]

START_TIMEOUT = 10.0
CALL_TIMEOUT = 10.0
# Strong references: a puppet whose variable was reassigned (a cell run twice) must still be
# stopped by stop_all(); with weak ones it would be forgotten and run on until the kernel exits.
_live: set[Puppet] = set()


def _teaching(method):
    """Errors leaving a public method get a short notebook traceback (see explain.for_notebook)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        __tracebackhide__ = True
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # the student's mistake, or the kernel's answer: both are lessons
            raise for_notebook(error, _context(self, method.__name__, args, kwargs)) from None

    return wrapper


def _context(obj, name: str, args, kwargs) -> str:
    shown = ", ".join([*(_arg(a) for a in args), *(f"{k}={_arg(v)}" for k, v in kwargs.items())])
    owner = getattr(obj, "puppet", obj)
    return f"in {getattr(owner, 'name', '?')}: {name}({shown})"


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


def finished(value, timeout: float = 5.0):
    """The value of a call whether or not it blocked: a PendingCall is waited for, anything else passes.

    For calls whose blocking depends on timing, not on the lesson (a large recv while the bytes are
    still arriving): the cell shows the same result either way. Introduced in 06-close-semantics.
    """
    __tracebackhide__ = True
    return value.result(timeout) if isinstance(value, PendingCall) else value


class _Future:
    """The outcome of one call: set once by whichever thread reads the reply."""

    def __init__(self):
        self._event = threading.Event()
        self.ok = None
        self.value = None
        self._callbacks = []

    def set(self, ok: bool, value) -> None:
        self.ok, self.value = ok, value
        self._event.set()
        for callback in self._callbacks:
            callback()

    def done(self) -> bool:
        return self._event.is_set()

    def on_done(self, callback) -> None:
        self._callbacks.append(callback)
        if self.done():
            callback()


class _Channel:
    """The kernel's end of the pipes: reads replies and events, resolves futures.

    Both the notebook thread (while it waits for a call) and a watcher thread (while calls are
    pending) may read; a lock makes each message handled exactly once.
    """

    def __init__(self, reply_fd: int, events_fd: int, on_eof):
        self.reply_fd, self.events_fd = reply_fd, events_fd
        for fd in (reply_fd, events_fd):
            os.set_blocking(fd, False)
        self._readers = {reply_fd: wire.Reader(), events_fd: wire.Reader()}
        self._lock = threading.Lock()
        self._futures: dict[int, _Future] = {}
        self._next_id = 1
        self.events: list[tuple] = []
        self.closed = False
        self._on_eof = on_eof

    def new_future(self, call_id: int | None = None) -> tuple[int, _Future]:
        with self._lock:
            if call_id is None:
                call_id, self._next_id = self._next_id, self._next_id + 1
            self._futures[call_id] = future = _Future()
        return call_id, future

    def close(self) -> None:
        """Stop reading for good; calls still pending get the puppet's exit error."""
        with self._lock:
            if not self.closed:
                self.closed = True
                for fd in (self.reply_fd, self.events_fd):
                    os.close(fd)
            orphans = list(self._futures.values())
            self._futures.clear()
        if orphans:
            error = self._on_eof()
            for future in orphans:
                future.set(False, error)

    def pending(self) -> int:
        return len(self._futures)

    def pump(self, timeout: float) -> None:
        """Wait up to `timeout` for data, then handle every complete message that has arrived."""
        if self.closed:
            return
        try:
            ready, _, _ = select.select([self.reply_fd, self.events_fd], [], [], timeout)
        except (OSError, ValueError):  # closed under us by stop()
            return
        if not ready:
            return
        with self._lock:
            if self.closed:
                return
            eof = False
            resolved = []
            for fd in ready:
                try:
                    data = os.read(fd, 1 << 20)
                except BlockingIOError:
                    continue  # the other reader got there first
                except OSError:
                    data = b""
                if not data:
                    if fd == self.reply_fd:
                        eof = True
                    continue
                for message in self._readers[fd].feed(data):
                    if fd == self.events_fd:
                        self.events.append((time.monotonic(), *message))
                    else:
                        call_id, ok, value = message
                        future = self._futures.pop(call_id, None)
                        if future:
                            resolved.append((future, ok, value))
        for future, ok, value in resolved:
            future.set(ok, value)
        if eof:
            self.close()


class _Lane:
    """One thread of the puppet: where its commands go, and how to see it from /proc."""

    def __init__(self, puppet: Puppet, name: str, tid: int | None, send):
        self.puppet, self.name, self.tid, self._send = puppet, name, tid, send
        self.busy: PendingCall | None = None

    def call(self, handle: int, method: str, args=(), kwargs=None, label: str = ""):
        """Run one call and return its value, or a PendingCall once the thread is seen blocked."""
        __tracebackhide__ = True
        puppet = self.puppet
        label = label or f"{method}()"
        if self.busy is not None and not self.busy.done():
            raise PuppetBusy(
                f"{self.name} is still inside {self.busy.label} ({self.busy.blocked_in}). One thread "
                f"makes one call at a time: wait with .result(), or act from a second thread: "
                f"t = {puppet.name_hint}.thread(); t.use(sock).method(...)"
            )
        puppet._require_alive()
        call_id, future = puppet._channel.new_future()
        self._send((call_id, handle, method, args, kwargs or {}))
        try:
            snap = self._wait(future)
        except BaseException:  # e.g. the Stop button while we watch: the call goes on in the puppet
            self._pending(label, future, None)
            raise
        if future.done():
            return puppet._unwrap(future, label)
        return self._pending(label, future, snap)

    def _pending(self, label: str, future: _Future, snap) -> PendingCall:
        pending = PendingCall(self.puppet, self, label, future, snap)
        self.busy = pending
        self.puppet._watch()
        return pending

    def _wait(self, future: _Future) -> observe.ThreadSnapshot | None:
        channel, pid = self.puppet._channel, self.puppet.pid
        channel.pump(0.002)  # most calls finish well within 2 ms: no /proc reading needed
        if future.done():
            return None
        if self.tid is None:  # a lane we cannot watch: only its reply counts
            if not observe.wait_until(lambda: channel.pump(0.005) or future.done(), CALL_TIMEOUT):
                raise TimeoutError(f"{self.name} did not answer within {CALL_TIMEOUT:.0f} s")
            return None
        if not self.puppet.syscalls_visible:
            return observe.wait_until(lambda: channel.pump(0.005) or future.done(), 0.2) and None
        previous = None
        deadline = time.monotonic() + CALL_TIMEOUT
        interval = 0.0005
        while time.monotonic() < deadline:
            snap = observe.blocked_in_call(pid, self.tid, self.puppet.own_fds)
            if snap is not None and snap == previous:
                return snap
            previous = snap
            channel.pump(interval)
            if future.done() or channel.closed:
                channel.pump(0)
                return None
            interval = min(interval * 1.5, 0.005)
        raise TimeoutError(f"{self.name} neither finished nor blocked within {CALL_TIMEOUT:.0f} s")


class PendingCall:
    """A call that the kernel put to sleep. Shows where it sleeps; resolves by itself.

    `done()` tells whether it has finished, `result(timeout)` waits for its value (or raises its
    error). Displayed in a notebook, it is a live card that flips to the result when it comes.
    """

    def __init__(self, puppet: Puppet, lane: _Lane, label: str, future: _Future, snap):
        self.puppet, self.lane, self.label, self._future, self.snapshot = puppet, lane, label, future, snap

    @property
    def blocked_in(self) -> str:
        if self.snapshot is None:
            return "pending (this system does not show system calls in /proc)"
        return self.snapshot.describe()

    def done(self) -> bool:
        self.puppet._channel.pump(0)
        return self._future.done()

    @_teaching
    def result(self, timeout: float = 5.0):
        """Wait up to `timeout` seconds for the call to finish; return its value or raise its error."""
        __tracebackhide__ = True
        if timeout is None or timeout < 0:
            raise ValueError("give result() a timeout in seconds (>= 0): the course never waits forever")
        channel = self.puppet._channel
        observe.wait_until(lambda: channel.pump(0.005) or self._future.done(), timeout)
        if not self._future.done():
            now = observe.snapshot(self.puppet.pid, self.lane.tid).describe()
            raise TimeoutError(f"{self.puppet.name}: {self.label} still not finished after {timeout} s ({now})")
        return self.puppet._unwrap(self._future, self.label)

    def __iter__(self):
        """Refuse unpacking (`conn, peer = listener.accept()`): a pending call is not its result."""
        if self.done():
            state = "has finished, but a pending call is the call, not its result"
        else:
            state = f"is still {self.blocked_in}: there is no result to unpack yet"
        raise for_notebook(TypeError(
            f"cannot unpack a pending call: {self.puppet.name}: {self.label} {state}. Keep the call "
            f"and unpack its result, which waits for it: conn, peer = call.result(timeout=5)"
        ))

    def outcome(self) -> str:
        """One line: where it is blocked, or what it returned or raised."""
        if not self._future.done():
            return f"{self.puppet.name}: {self.label} {self.blocked_in}"
        if self._future.ok:
            return f"{self.puppet.name}: {self.label} returned {self.puppet._wrap(self._future.value)!r}"
        error = self._future.value
        return f"{self.puppet.name}: {self.label} raised {type(error).__name__}: {error}"

    def __repr__(self) -> str:
        return f"<{self.outcome()}>"

    def _ipython_display_(self):
        from helpers import widgets

        widgets.show_call(self)


class RemoteSocket:
    """A socket living in a puppet. Methods mirror `socket.socket` and run in the puppet."""

    def __init__(self, puppet: Puppet, ref: wire.SocketRef, lane: _Lane | None = None):
        self.puppet, self._ref, self._lane = puppet, ref, lane or puppet._main
        self._fd_box = [ref.fd]  # shared with the views other threads use: close() anywhere shows

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AddressFamily(self._ref.family)

    @property
    def type(self) -> socket.SocketKind:
        return socket.SocketKind(self._ref.type & ~(socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC))

    def fileno(self) -> int:
        """The descriptor number inside the puppet (-1 once closed), like socket.fileno()."""
        return self._fd_box[0]

    def _call(self, method: str, *args, **kwargs):
        __tracebackhide__ = True
        shown = ", ".join([*(_arg(a) for a in args), *(f"{k}={_arg(v)}" for k, v in kwargs.items())])
        return self._lane.call(self._ref.handle, method, args, kwargs, label=f"{method}({shown})")

    @_teaching
    def close(self) -> None:
        """close(fd): release the descriptor. The socket object stays, with fileno() -1."""
        __tracebackhide__ = True
        result = self._call("close")
        self._fd_box[0] = -1
        return result

    def detach_view(self, lane: _Lane) -> RemoteSocket:
        view = RemoteSocket(self.puppet, self._ref, lane)
        view._fd_box = self._fd_box
        return view

    def __repr__(self) -> str:
        where = "" if self._lane is self.puppet._main else f", thread {self._lane.name}"
        return (f"<remote socket fd={self.fileno()} {self.family.name} {self.type.name} "
                f"in {self.puppet.name}{where}>")


# The methods of socket.socket a remote socket offers, each with the C call underneath.
_SOCKET_METHODS = {
    "bind": "bind(address): give the socket a name.  C: int bind(int s, const struct sockaddr *addr, socklen_t len)",
    "listen": "listen(backlog): make it a listening socket.  C: int listen(int s, int backlog)",
    "accept": "accept() -> (connected socket, peer address).  C: int accept(int s, struct sockaddr *addr, socklen_t *len)",
    "connect": "connect(address).  C: int connect(int s, const struct sockaddr *addr, socklen_t len)",
    "connect_ex": "connect_ex(address) -> errno number instead of an exception (0 = connected)",
    "send": "send(data[, flags]) -> bytes sent.  C: ssize_t send(int s, const void *buf, size_t len, int flags)",
    "sendall": "sendall(data[, flags]): send until everything is sent",
    "sendto": "sendto(data, address).  C: ssize_t sendto(int s, const void *buf, size_t len, int flags, ...)",
    "recv": "recv(bufsize[, flags]) -> bytes (b'' = EOF).  C: ssize_t recv(int s, void *buf, size_t len, int flags)",
    "recvfrom": "recvfrom(bufsize[, flags]) -> (bytes, address)",
    "recvmsg": "recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata, msg_flags, address)",
    "shutdown": "shutdown(how): SHUT_RD, SHUT_WR or SHUT_RDWR.  C: int shutdown(int s, int how)",
    "setsockopt": "setsockopt(level, option, value).  C: int setsockopt(int s, int level, int name, ...)",
    "getsockopt": "getsockopt(level, option[, buflen]).  C: int getsockopt(int s, int level, int name, ...)",
    "settimeout": "settimeout(seconds or None): later calls wait at most this long",
    "gettimeout": "gettimeout() -> seconds or None",
    "setblocking": "setblocking(flag): False = calls that would wait fail with BlockingIOError",
    "getblocking": "getblocking() -> bool",
    "getsockname": "getsockname() -> this socket's address.  C: int getsockname(int s, ...)",
    "getpeername": "getpeername() -> the peer's address.  C: int getpeername(int s, ...)",
}


def _remote_method(name: str, doc: str):
    def method(self, *args, **kwargs):
        __tracebackhide__ = True
        return self._call(name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return _teaching(method)


for _name, _doc in _SOCKET_METHODS.items():
    setattr(RemoteSocket, _name, _remote_method(_name, _doc))


class PuppetThread:
    """A second thread in a puppet, acting on the same sockets (`t.use(sock).shutdown(...)`)."""

    def __init__(self, lane: _Lane):
        self._lane = lane

    @property
    def tid(self) -> int:
        return self._lane.tid

    @_teaching
    def use(self, sock: RemoteSocket) -> RemoteSocket:
        """The same socket, with calls made from this thread."""
        if sock.puppet is not self._lane.puppet:
            raise ValueError(f"{sock!r} lives in another process; a thread can only use its own process's sockets")
        return sock.detach_view(self._lane)

    def __repr__(self) -> str:
        return f"<thread {self._lane.name} of {self._lane.puppet.name}>"


class CCalls:
    """`srv.c`: the puppet calling libc itself (helpers.c_calls), to show what C gets where Python hides it.

    `srv.c.accept(listener)` runs `accept(fd, NULL, NULL)` in the puppet's main thread and returns a
    `CResult` (the new fd, or -1 with errno's name), or a PendingCall while the kernel keeps it asleep.
    """

    def __init__(self, puppet: Puppet):
        self.puppet = puppet

    def __dir__(self):
        return list(c_calls.CALLS)

    def __getattr__(self, name: str):
        function = c_calls.CALLS.get(name)
        if function is None:
            raise AttributeError(f"{self.puppet.name_hint}.c has no {name}(); it offers {', '.join(c_calls.CALLS)}")

        def call(self, *args, **kwargs):
            __tracebackhide__ = True
            for arg in args:
                if isinstance(arg, RemoteSocket) and arg.puppet is not self.puppet:
                    raise ValueError(f"{arg!r} lives in another process; {self.puppet.name} can only use its own sockets")
            wired = tuple(a._ref if isinstance(a, RemoteSocket) else a for a in args)
            shown = [str(a.fileno()) if isinstance(a, RemoteSocket) else _arg(a) for a in args]
            label = f"{name}({', '.join([*shown, *(f'{k}={_arg(v)}' for k, v in kwargs.items())])})"
            return self.puppet._main.call(0, "c_call", (name, *wired), kwargs, label=label)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = function.__doc__
        return _teaching(call).__get__(self)


class Puppet:
    """A child process that runs socket calls on command. Use as a context manager, or `stop()`.

    `user="nobody"` runs it as another user (the notebook must run as root for that).
    """

    @_teaching
    def __init__(self, name: str = "puppet", user: str | None = None):
        self.name = name
        if user is not None:
            _check_user(user)
        self.name_hint = "srv" if "serv" in name else "p"
        self._threads = 0
        ws = workspace()
        cmd_r, cmd_w = os.pipe()
        reply_r, reply_w = os.pipe()
        side_r, side_w = os.pipe()
        events_r, events_w = os.pipe()
        child_ends = (cmd_r, reply_w, side_r, events_w)
        try:
            self._proc = processes.start(
                "puppet_child", *map(str, child_ends), user or "", pass_fds=child_ends, cwd=ws.dir,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        except BaseException:
            for fd in (cmd_r, cmd_w, reply_r, reply_w, side_r, side_w, events_r, events_w):
                os.close(fd)
            raise
        for fd in child_ends:
            os.close(fd)
        self._cmd_w, self._side_w = cmd_w, side_w
        self._channel = _Channel(reply_r, events_r, self._exit_error)
        self._watch_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.pid = self._proc.pid
        self._main = _Lane(self, name, self.pid, self._send_main)
        self._lanes = [self._main]  # the threads the notebook drives, for threads()
        try:
            hello = self._first_reply()
        except BaseException:
            self.stop()
            raise
        self._main.tid = hello["tid"]
        self.own_fds = (hello["cmd_fd"], hello["reply_fd"])  # its plumbing, never a call to show
        self.uid = hello["uid"]
        self.syscalls_visible = observe.syscalls_visible(self.pid)
        _live.add(self)

    def _first_reply(self) -> dict:
        channel = self._channel
        _, future = channel.new_future(call_id=0)  # the child says hello as call 0
        observe.wait_until(lambda: channel.pump(0.01) or future.done(), START_TIMEOUT)
        if not future.done():
            raise TimeoutError(f"puppet {self.name} did not start within {START_TIMEOUT:.0f} s")
        if not future.ok:
            raise future.value
        return future.value

    # -- sending -----------------------------------------------------------------------------
    def _send_main(self, message) -> None:
        self._write(self._cmd_w, message)

    def _write(self, fd: int, message) -> None:
        try:
            wire.write_message(fd, message)
        except (BrokenPipeError, OSError):
            raise self._exit_error() from None

    def _process_call(self, method: str, *args, lane: _Lane | None = None, label: str = ""):
        __tracebackhide__ = True
        return (lane or self._main).call(0, method, args, label=label or f"{method}()")

    # -- results -----------------------------------------------------------------------------
    def _wrap(self, value):
        if isinstance(value, wire.SocketRef):
            return RemoteSocket(self, value)
        if isinstance(value, tuple | list):
            return type(value)(self._wrap(v) for v in value)
        return value

    def _unwrap(self, future: _Future, label: str):
        __tracebackhide__ = True
        if future.ok:
            return self._wrap(future.value)
        raise future.value

    def _exit_error(self) -> PuppetExited:
        try:
            rc = self._proc.wait(1.0)
        except subprocess.TimeoutExpired:
            rc = None
        if rc is not None and rc < 0:
            sig = signals.Signals(-rc)
            how = f"was killed by {sig.name} (signal {-rc})"
        else:
            how = f"exited (status {rc})"
        return PuppetExited(f"puppet {self.name} (pid {self.pid}) {how}; start a new Puppet to go on")

    def _watch(self) -> None:
        """Make sure a thread reads replies while calls are pending, so cards update by themselves."""
        with self._watch_lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_loop, daemon=True, name=f"watch-{self.name}")
                self._watcher.start()

    def _watch_loop(self) -> None:
        while True:
            with self._watch_lock:
                if not self._channel.pending() or self._channel.closed:
                    self._watcher = None
                    return
            self._channel.pump(0.05)

    # -- the process ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def _require_alive(self) -> None:
        if not self.alive or self._channel.closed:
            raise self._exit_error()

    @property
    def c(self) -> CCalls:
        """The same process calling libc directly: `srv.c.accept(listener)` (see helpers.c_calls)."""
        return CCalls(self)

    def state(self) -> observe.ThreadSnapshot:
        """What the main thread does right now (state, system call, wchan)."""
        return observe.snapshot(self.pid, self._main.tid)

    @_teaching
    def socket(self, family=AF_INET, type=SOCK_STREAM, proto=0) -> RemoteSocket:
        """socket(family, type, proto) in the puppet.  C: int socket(int domain, int type, int protocol)"""
        __tracebackhide__ = True
        return self._process_call("socket", family, type, proto, label=f"socket({_const(family)}, {_const(type)})")

    @_teaching
    def socketpair(self, family=AF_UNIX, type=SOCK_STREAM, proto=0):
        """socketpair(): two connected sockets.  C: int socketpair(int domain, int type, int protocol, int sv[2])"""
        __tracebackhide__ = True
        return self._process_call("socketpair", family, type, proto)

    @_teaching
    def unlink(self, path: str) -> None:
        """unlink(path) in the puppet: remove a name (e.g. a socket file) from its directory."""
        __tracebackhide__ = True
        return self._process_call("unlink", path, label=f"unlink({path!r})")

    @_teaching
    def umask(self, mask: int) -> int:
        """umask(mask) in the puppet; returns the old mask. Socket files get 0777 & ~umask."""
        __tracebackhide__ = True
        return self._process_call("umask", mask, label=f"umask(0o{mask:03o})")

    @_teaching
    def chmod(self, path: str, mode: int) -> None:
        __tracebackhide__ = True
        return self._process_call("chmod", path, mode, label=f"chmod({path!r}, 0o{mode:o})")

    @_teaching
    def getrlimit(self, which: int) -> tuple[int, int]:
        """The puppet's (soft, hard) limit, e.g. resource.RLIMIT_NOFILE: how many descriptors it may hold."""
        __tracebackhide__ = True
        return self._process_call("getrlimit", which)

    @_teaching
    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        """Set the puppet's (soft, hard) limit; e.g. a low RLIMIT_NOFILE makes socket() fail with EMFILE."""
        __tracebackhide__ = True
        return self._process_call("setrlimit", which, limits)

    @_teaching
    def send_fds(self, sock: RemoteSocket, data: bytes, socks: list[RemoteSocket]):
        """Pass sockets to the peer process over an AF_UNIX socket (SCM_RIGHTS)."""
        __tracebackhide__ = True
        return self._process_call("send_fds", sock._ref, [data], [s._ref for s in socks])

    @_teaching
    def recv_fds(self, sock: RemoteSocket, bufsize: int = 1024, maxfds: int = 4):
        """Receive data and sockets sent with send_fds; the sockets come back as remote sockets."""
        __tracebackhide__ = True
        return self._process_call("recv_fds", sock._ref, bufsize, maxfds)

    @_teaching
    def on_signal(self, sig: int, action: str) -> None:
        """Choose what `sig` does to the puppet: "default", "ignore", "return" or "raise".

        "return": a handler runs and returns (Python then retries an interrupted call, PEP 475);
        "raise": the handler raises RuntimeError, which comes out of the call it interrupted.
        """
        __tracebackhide__ = True
        sig = _signal_number(sig)
        return self._process_call("on_signal", sig, action, label=f"on_signal({sig.name}, {action!r})")

    def handled_signals(self) -> list[str]:
        """Names of the signals that reached a handler set with on_signal(), oldest first.

        The evidence that a signal the kernel raised by itself (SIGPIPE on a write to a closed peer)
        was delivered and caught, not merely survived. Introduced in 06-close-semantics.
        """
        self._channel.pump(0)
        return [signals.Signals(event[2]).name for event in self._channel.events if event[1] == "signal"]

    @_teaching
    def signal(self, sig, timeout: float = 2.0) -> str:
        """Send `sig` to the puppet and wait until its effect is seen; returns what happened."""
        __tracebackhide__ = True
        sig = _signal_number(sig)
        self._require_alive()
        channel = self._channel
        seen = len(channel.events)
        busy = self._main.busy if self._main.busy and not self._main.busy.done() else None
        os.kill(self.pid, sig)

        def effect():
            channel.pump(0.002)
            # Look at the call first: a puppet that dies right now resolves it too (PuppetExited),
            # and then its death, checked second, must win, whichever moment it happened at.
            returned = busy is not None and busy.done()
            if not self.alive or channel.closed:
                return "exited"
            if returned:
                return "returned"
            if len(channel.events) > seen:
                return "handled"
            return None

        what = observe.wait_until(effect, timeout)
        if what == "exited":
            self._proc.wait(timeout)
            return f"{sig.name} delivered: {self._exit_error()}"
        if what == "returned":
            # A handler writes its event before the call it ended replies, so by now the event is
            # counted: the sentence is the same whichever of the two the pipes delivered first.
            ran = "the handler ran; " if len(channel.events) > seen else ""
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

    @_teaching
    def thread(self, name: str | None = None) -> PuppetThread:
        """Start a second thread in the puppet; use it to act on sockets the main thread waits on."""
        __tracebackhide__ = True
        self._threads += 1
        index = self._threads - 1
        name = name or f"{self.name}-thread-{self._threads}"

        def send(message, index=index):
            self._write(self._side_w, (index, message))

        router = _Lane(self, f"{self.name} (router)", None, lambda m: self._write(self._side_w, (-1, m)))
        tid = router.call(0, "start_thread")
        lane = _Lane(self, name, tid, send)
        self._lanes.append(lane)
        return PuppetThread(lane)

    def threads(self) -> list[tuple[str, int]]:
        """(name, thread id) of each thread the notebook drives: the main one, then each thread()."""
        return [(lane.name, lane.tid) for lane in self._lanes]

    def stop(self, timeout: float = 2.0) -> int:
        """Close the command pipes (the puppet exits), kill it if it does not; return its exit status."""
        for fd in (self._cmd_w, self._side_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._cmd_w = self._side_w = -1
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        rc = processes.stop(self._proc, timeout)
        self._channel.pump(0)
        self._channel.close()
        _live.discard(self)
        return rc

    def __enter__(self) -> Puppet:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        status = "running" if self.alive else f"exited ({self.returncode})"
        return f"<Puppet {self.name} pid={self.pid} {status}>"


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


def _const(value) -> str:
    return getattr(value, "name", repr(value))


_DATA_SHOWN = 64  # bytes of a data argument shown in a call's label


def _arg(value) -> str:
    """An argument as the student wrote it: `AF_UNIX` rather than `<AddressFamily.AF_UNIX: 1>`.

    Long data is cut short, `b'xxxx'...(100000 bytes)`: a card or an error shows the call, not
    100 KB of what it sends.
    """
    if isinstance(value, enum.Enum) and value.name:
        return value.name
    if isinstance(value, bytes | bytearray) and len(value) > _DATA_SHOWN:
        return f"{bytes(value[:_DATA_SHOWN])!r}...({len(value)} bytes)"
    return repr(value)
