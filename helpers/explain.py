"""Errno -> what it means for a socket call, and what to try. Used by every error view.

`explain(exc)` turns `[Errno 98] Address already in use` into a sentence a student can act on:

    EADDRINUSE (98): the address is taken: a listening socket owns this port, or a socket file
    already exists at this path (perhaps left by a server that exited). Try: connect to it first to
    see whether a server is alive; if not (ECONNREFUSED), unlink the stale file and bind again.

It also words calls the way a student wrote them (`call_text`), and owns the one place where an
error leaving the helpers gets its notebook form (`Teaching`). Introduced in 01-socket-creation;
every lesson's errors pass through it.
"""

from __future__ import annotations

import enum
import errno
import functools

__all__ = ["Teaching", "call_text", "errno_name", "explain", "for_notebook", "shown", "teaching"]

# errno name -> (what it means for sockets, what to try)
_MEANINGS: dict[str, tuple[str, str]] = {
    "EADDRINUSE": ("the address is taken: a socket already listens on this port, or a socket file "
                   "already exists at this path (perhaps left behind by a server that exited)",
                   "connect to it first: ECONNREFUSED means a stale file you may unlink; for TCP pick "
                   "another port, or port 0 to let the kernel choose"),
    "EADDRNOTAVAIL": ("this machine has no such local address", "bind to 127.0.0.1 or to port 0"),
    "ENOENT": ("no socket file at this path (nobody has bound it, or it was unlinked)",
               "check the path; start the server first, or retry until it has bound"),
    "ECONNREFUSED": ("nobody accepts connections here: a stale socket file, a socket that is not "
                     "listening, or a closed TCP port",
                     "start the server (bind + listen), or retry later with a growing delay"),
    "EACCES": ("permission denied: connecting to a socket file needs write permission on it and search "
               "permission on every directory on the way",
               "check `ls -l` of the file and its directory; root bypasses these checks"),
    "EPERM": ("the operation is not permitted for this user", "run it as a user who may, or change the setup"),
    "EAGAIN": ("the call would have to wait, and the socket is non-blocking, or its time limit (SO_SNDTIMEO, "
               "SO_RCVTIMEO) ran out (for a connect to a Unix socket: the listener's accept queue is full)",
               "wait until the socket is ready (selectors / poll), or retry later; for a connect to a full "
               "AF_UNIX queue no readiness event comes: retry after a pause"),
    "EINPROGRESS": ("a non-blocking TCP connect has started and is not finished yet",
                    "wait until the socket is writable, then read SO_ERROR"),
    "EALREADY": ("a non-blocking connect is already in progress on this socket",
                 "wait for it to finish"),
    "ETIMEDOUT": ("the peer never answered: TCP gave up when the time budget for its resends ran out "
                  "(tcp_syn_retries: about 127 s for 6)",
                  "check the address; retry later, or use a shorter timeout of your own"),
    "EINVAL": ("an argument does not fit the socket's state, e.g. accept on a socket that is not "
               "listening (or was shut down), bind on a socket that already has a name",
               "check the order: socket, bind, listen, then accept"),
    "EBADF": ("that is not an open file descriptor: the socket was closed",
              "create a new socket; a closed one cannot be reused"),
    "ENOTSOCK": ("the file descriptor is not a socket", "pass a socket"),
    "EAFNOSUPPORT": ("this address family is not supported by the protocol or the kernel",
                     "use AF_UNIX, AF_INET or AF_INET6"),
    "EPROTONOSUPPORT": ("this protocol is not supported for this family and type",
                        "pass protocol 0 to get the default (TCP for SOCK_STREAM, UDP for SOCK_DGRAM)"),
    "ESOCKTNOSUPPORT": ("this socket type is not supported in this family", "use SOCK_STREAM or SOCK_DGRAM"),
    "EPROTOTYPE": ("the socket type does not match the peer's (e.g. a datagram sent to a stream socket's path)",
                   "use the same type on both sides"),
    "EOPNOTSUPP": ("this socket type does not support the operation (e.g. listen on a datagram socket, "
                   "or socketpair in a family other than AF_UNIX)",
                   "listen/accept are for SOCK_STREAM and SOCK_SEQPACKET only; socketpair is for AF_UNIX"),
    "EMFILE": ("this process has no free file descriptor left (RLIMIT_NOFILE)",
               "close sockets you no longer need; check `ulimit -n`"),
    "ENFILE": ("the whole system has run out of file descriptors", "close files and sockets"),
    "EPIPE": ("the peer has closed (or this side shut down writing): nobody will read what you send; "
              "a C program gets SIGPIPE and dies, Python ignores SIGPIPE and raises BrokenPipeError",
              "stop writing; close the socket; in C, use MSG_NOSIGNAL or ignore SIGPIPE"),
    "ECONNRESET": ("the peer reset the connection (RST): it closed with unread data, or aborted",
                   "treat the connection as gone; close it and reconnect if needed"),
    "ENOTCONN": ("the socket is not connected", "connect (or accept) first; use sendto for datagrams"),
    "EISCONN": ("the socket is already connected", "use a new socket for a new connection"),
    "EDESTADDRREQ": ("a datagram socket with no peer needs an address", "use sendto(data, address) or connect"),
    "EMSGSIZE": ("the message is too large to send in one datagram", "send less, or use a stream socket"),
    "EINTR": ("a signal interrupted the call", "Python retries by itself (PEP 475) unless a handler raises"),
    "ENAMETOOLONG": ("the path is too long", "use a shorter path (sun_path holds 107 bytes + NUL)"),
    "ENOTDIR": ("a part of the path is not a directory", "check the path"),
    "EISDIR": ("the path is a directory", "bind to a file name inside the directory"),
    "EROFS": ("the file system is read-only", "bind in a writable directory"),
    "ENOPROTOOPT": ("no such socket option at this level", "check the level (SOL_SOCKET, IPPROTO_TCP) and name"),
    "EHOSTUNREACH": ("no route to that host", "this course only uses 127.0.0.1"),
    "ENETUNREACH": ("no route to that network", "this course only uses 127.0.0.1"),
}

# Errors Python raises itself, without an errno.
_NO_ERRNO: dict[str, tuple[str, str]] = {
    "AF_UNIX path too long": ("Python refuses AF_UNIX paths of 108 bytes or more: sun_path holds 107 "
                              "bytes plus the terminating NUL",
                              "use a shorter path, e.g. in a short directory, or chdir and bind a relative name"),
    "timed out": ("the socket's timeout (settimeout) ran out before the call could finish",
                  "wait longer, or handle socket.timeout (TimeoutError) and retry"),
}


# Some numbers have two names (EOPNOTSUPP = ENOTSUP = 95 on Linux) and errno.errorcode keeps only
# one of them: the table's own name wins, so every entry is reachable by its number.
_TABLE_NAMES = {getattr(errno, name): name for name in _MEANINGS}


def errno_name(number: int | None) -> str:
    if number is None:
        return ""
    return _TABLE_NAMES.get(number) or errno.errorcode.get(number, f"errno {number}")


def explain(exc: BaseException) -> str:
    """One or two sentences: the errno name, what it means for sockets, what to try."""
    number = getattr(exc, "errno", None)
    name = errno_name(number)
    if name in _MEANINGS:
        meaning, advice = _MEANINGS[name]
        return f"{name} ({number}): {meaning}. Try: {advice}."
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
    if text in _NO_ERRNO:
        meaning, advice = _NO_ERRNO[text]
        return f"{type(exc).__name__} without an errno: {meaning}. Try: {advice}."
    if name:
        return f"{name} ({number}): {getattr(exc, 'strerror', '') or exc}."
    return f"{type(exc).__name__}: {exc}"


def for_notebook(error: BaseException, context: str = "") -> BaseException:
    """Give `error` a short traceback for the notebook: the error, where it happened, what it means.

    IPython shows `_render_traceback_()` instead of the frames inside the helpers, so a student
    sees the real exception class and message (nbval compares those) and one line of advice,
    never a trace through helper internals. The note keeps the same text for plain Python.
    """
    if getattr(error, "_render_traceback_", None):
        return error
    advice = explain(error) if getattr(error, "errno", None) or str(error) in _NO_ERRNO else ""
    lines = [line for line in (context, advice) if line]
    if lines and not getattr(error, "__notes__", None):
        error.add_note(" -> ".join(lines))
    header = f"\x1b[31m{type(error).__name__}\x1b[0m: {error}"
    error._render_traceback_ = lambda: [header, *(f"    {line}" for line in lines)]
    return error


DATA_SHOWN = 64  # bytes of a data argument shown in a call's label


def shown(value) -> str:
    """An argument as the student wrote it: `AF_UNIX` rather than `<AddressFamily.AF_UNIX: 1>`.

    Long data is cut short, `b'xxxx'...(100000 bytes)`: a card or an error shows the call, not
    100 KB of what it sends.
    """
    if isinstance(value, enum.Enum) and value.name:
        return value.name
    if isinstance(value, bytes | bytearray) and len(value) > DATA_SHOWN:
        return f"{bytes(value[:DATA_SHOWN])!r}...({len(value)} bytes)"
    return repr(value)


def call_text(name: str, args=(), kwargs=None) -> str:
    """`bind('/tmp/s.sock')`: a call as a line of the student's code."""
    return f"{name}({', '.join([*map(shown, args), *(f'{k}={shown(v)}' for k, v in (kwargs or {}).items())])})"


class Teaching:
    """Base class of the objects a notebook calls: every error leaving their public methods is for_notebook'd.

    The one place where errors get their notebook form. Each public method of a subclass, and its
    `__init__` and `__iter__`, is wrapped once by `teaching()` when the class is made, so an error
    carries the call that raised it ("in server: bind('/tmp/s.sock')") and one line of advice, and
    the student never sees the frames of the helpers. The first (innermost) public method an error
    leaves names it.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if callable(member) and (name in ("__init__", "__iter__") or not name.startswith("_")):
                shown_as = {"__init__": cls.__name__, "__iter__": None}.get(name, name)
                setattr(cls, name, teaching(shown_as, member))


def teaching(name: str | None, method):
    """`method` (of an object with a `name` or a `puppet`), its errors given their notebook form.

    `name` is the call as the student wrote it, shown beside the error; None shows no call (an
    unpacking, say, which the error message itself describes).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # the student's mistake, or the kernel's answer: both are lessons
            owner = getattr(self, "puppet", self)
            where = f"in {getattr(owner, 'name', '?')}: {call_text(name, args, kwargs)}" if name else ""
            raise for_notebook(error, where) from None

    return wrapper
