"""A socket that lives in a puppet: the methods of `socket.socket`, each beside the C call it makes.

    s = srv.socket(AF_UNIX, SOCK_STREAM)     # C: int s = socket(AF_UNIX, SOCK_STREAM, 0);
    s.bind(path)                             # C: bind(s, (struct sockaddr *)&addr, sizeof addr);
    s.listen(2)                              # C: listen(s, 2);
    call = s.accept()                        # C: int c = accept(s, NULL, NULL);  (it sleeps here)

Each method sends its name and arguments to the puppet, where the real `socket.socket` method runs
(and, underneath it, the C call named in the docstring). The value comes back as it is, a socket
in it as another RemoteSocket, an error as the very exception Python raised in the puppet. A call
that blocks comes back as a `PendingCall` (see `helpers.puppet`). Introduced in 00-start-here.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from helpers import c_calls
from helpers.explain import Teaching, shown, teaching
from helpers.wire import SocketRef

if TYPE_CHECKING:
    from helpers.puppet import Puppet, _Lane

__all__ = ["CCalls", "RemoteSocket"]


class _Descriptor:
    """What every view of one socket shares: its descriptor number (close() from any thread shows
    everywhere), and who wants to know when it closes (a card that shows it)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.on_close: list = []


class RemoteSocket(Teaching):
    """A socket living in a puppet. Methods mirror `socket.socket` and run in the puppet."""

    def __init__(self, puppet: Puppet, ref: SocketRef, lane: _Lane, descriptor: _Descriptor | None = None):
        self.puppet, self._ref, self._lane = puppet, ref, lane
        self._descriptor = descriptor or _Descriptor(ref.fd)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AddressFamily(self._ref.family)

    @property
    def type(self) -> socket.SocketKind:
        return socket.SocketKind(self._ref.type & ~(socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC))

    def fileno(self) -> int:
        """The descriptor number inside the puppet (-1 once closed), like socket.fileno()."""
        return self._descriptor.fd

    def _call(self, method: str, args: tuple, kwargs: dict):
        return self._lane.call(self._ref.handle, method, args, kwargs)

    def _view_from(self, lane: _Lane) -> RemoteSocket:
        """The same socket, with its calls made by another thread of the puppet."""
        return RemoteSocket(self.puppet, self._ref, lane, self._descriptor)

    def __repr__(self) -> str:
        where = "" if self._lane.worker is None else f", thread {self._lane.name}"
        return (f"<remote socket fd={self.fileno()} {self.family.name} {self.type.name} "
                f"in {self.puppet.name}{where}>")

    # -- naming and connecting ---------------------------------------------------------------
    def bind(self, *args, **kwargs):
        """bind(address): give the socket a name.  C: int bind(int s, const struct sockaddr *addr, socklen_t len)"""
        return self._call("bind", args, kwargs)

    def listen(self, *args, **kwargs):
        """listen(backlog): make it a listening socket.  C: int listen(int s, int backlog)"""
        return self._call("listen", args, kwargs)

    def accept(self, *args, **kwargs):
        """accept() -> (connected socket, peer address).  C: int accept(int s, struct sockaddr *addr, socklen_t *len)"""
        return self._call("accept", args, kwargs)

    def connect(self, *args, **kwargs):
        """connect(address).  C: int connect(int s, const struct sockaddr *addr, socklen_t len)"""
        return self._call("connect", args, kwargs)

    def connect_ex(self, *args, **kwargs):
        """connect_ex(address) -> errno number instead of an exception (0 = connected).  C: connect's -1 and errno"""
        return self._call("connect_ex", args, kwargs)

    def getsockname(self, *args, **kwargs):
        """getsockname() -> this socket's address.  C: int getsockname(int s, struct sockaddr *addr, socklen_t *len)"""
        return self._call("getsockname", args, kwargs)

    def getpeername(self, *args, **kwargs):
        """getpeername() -> the peer's address.  C: int getpeername(int s, struct sockaddr *addr, socklen_t *len)"""
        return self._call("getpeername", args, kwargs)

    # -- bytes -------------------------------------------------------------------------------
    def send(self, *args, **kwargs):
        """send(data[, flags]) -> bytes sent.  C: ssize_t send(int s, const void *buf, size_t len, int flags)"""
        return self._call("send", args, kwargs)

    def sendall(self, *args, **kwargs):
        """sendall(data[, flags]): send until everything is sent.  C: send() in a loop"""
        return self._call("sendall", args, kwargs)

    def sendto(self, *args, **kwargs):
        """sendto(data, address).  C: ssize_t sendto(int s, const void *buf, size_t len, int flags, ...)"""
        return self._call("sendto", args, kwargs)

    def recv(self, *args, **kwargs):
        """recv(bufsize[, flags]) -> bytes (b'' = EOF).  C: ssize_t recv(int s, void *buf, size_t len, int flags)"""
        return self._call("recv", args, kwargs)

    def recvfrom(self, *args, **kwargs):
        """recvfrom(bufsize[, flags]) -> (bytes, address).  C: ssize_t recvfrom(int s, void *buf, size_t len, ...)"""
        return self._call("recvfrom", args, kwargs)

    def recvmsg(self, *args, **kwargs):
        """recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata, msg_flags, address).  C: recvmsg(2)"""
        return self._call("recvmsg", args, kwargs)

    # -- ending ------------------------------------------------------------------------------
    def shutdown(self, *args, **kwargs):
        """shutdown(how): SHUT_RD, SHUT_WR or SHUT_RDWR.  C: int shutdown(int s, int how)"""
        return self._call("shutdown", args, kwargs)

    def close(self) -> None:
        """close(): release the descriptor. The socket object stays, with fileno() -1.  C: int close(int fd)"""
        result = self._call("close", (), {})
        self._descriptor.fd = -1
        callbacks, self._descriptor.on_close = self._descriptor.on_close, []
        for callback in callbacks:
            callback()
        return result

    def add_close_callback(self, fn) -> None:
        """Call `fn(sock)` once this socket is closed, from any thread or view (a card redraws itself)."""
        self._descriptor.on_close.append(lambda: fn(self))

    # -- options -----------------------------------------------------------------------------
    def setsockopt(self, *args, **kwargs):
        """setsockopt(level, option, value).  C: int setsockopt(int s, int level, int name, const void *v, socklen_t len)"""
        return self._call("setsockopt", args, kwargs)

    def getsockopt(self, *args, **kwargs):
        """getsockopt(level, option[, buflen]).  C: int getsockopt(int s, int level, int name, void *v, socklen_t *len)"""
        return self._call("getsockopt", args, kwargs)

    def settimeout(self, *args, **kwargs):
        """settimeout(seconds or None): later calls wait at most this long.  C: poll() before each call"""
        return self._call("settimeout", args, kwargs)

    def gettimeout(self, *args, **kwargs):
        """gettimeout() -> seconds or None (Python's own setting: no C call)"""
        return self._call("gettimeout", args, kwargs)

    def setblocking(self, *args, **kwargs):
        """setblocking(flag): False = calls that would wait fail with BlockingIOError.  C: ioctl(s, FIONBIO, &on)"""
        return self._call("setblocking", args, kwargs)

    def getblocking(self, *args, **kwargs):
        """getblocking() -> bool (Python's own setting, kept with the timeout: no C call)"""
        return self._call("getblocking", args, kwargs)


class CCalls:
    """`srv.c`: the puppet calling libc itself (helpers.c_calls), to show what C gets where Python hides it.

    `srv.c.accept(listener)` runs `accept(fd, NULL, NULL)` in the puppet's main thread and returns a
    `CResult` (the new fd, or -1 with errno's name), or a PendingCall while the kernel keeps it asleep.
    A socket argument is passed as its descriptor, as C would: the label reads `accept(3)`.
    """

    def __init__(self, puppet: Puppet, lane: _Lane):
        self.puppet, self._lane = puppet, lane

    def __dir__(self):
        return list(c_calls.CALLS)

    def __getattr__(self, name: str):
        function = c_calls.CALLS.get(name)
        if function is None:
            raise AttributeError(f"{self.puppet.name_hint}.c has no {name}(); it offers {', '.join(c_calls.CALLS)}")

        def call(self, *args, **kwargs):
            for arg in args:
                if isinstance(arg, RemoteSocket) and arg.puppet is not self.puppet:
                    raise ValueError(f"{arg!r} lives in another process; {self.puppet.name} can only use its own sockets")
            wired = tuple(a._ref if isinstance(a, RemoteSocket) else a for a in args)
            words = [str(a.fileno()) if isinstance(a, RemoteSocket) else shown(a) for a in args]
            label = f"{name}({', '.join([*words, *(f'{k}={shown(v)}' for k, v in kwargs.items())])})"
            return self._lane.call(0, "c_call", (name, *wired), kwargs, label=label)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = function.__doc__
        return teaching(name, call).__get__(self)
