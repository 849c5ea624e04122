"""C calls a puppet makes through libc (ctypes), for where Python hides what C does.

    srv.c.accept(listener)                  # int fd = accept(3, NULL, NULL);  in the puppet
    srv.c.sigaction(SIGUSR1, restart=False) # the handler again, with or without SA_RESTART

Python stands between a program and the kernel in two places a C programmer meets at once:
after a signal, Python retries a call that failed with EINTR (PEP 475), and a failed call becomes
an exception. The functions here run inside a puppet (`Puppet.c`), call libc through ctypes,
and give back what a C program gets: a `CResult`, the return value and, when it is -1, errno.
ctypes releases the GIL around the call, so the puppet sleeps in the kernel as a C program would,
and its card shows the call. Introduced in 04-accept.

The signal functions install *the handler already in place* (choose it with
`Puppet.on_signal()`) again, with other flags: the handler is the same C function either way,
only the kernel's treatment of the interrupted call changes. `struct sigaction` is laid out as
glibc (and musl) define it on x86_64 and aarch64, the machines the course's /proc tables know.
"""

from __future__ import annotations

import ctypes
import errno as errnos
import functools
import os
import platform
import signal as signals
from dataclasses import dataclass

__all__ = ["CALLS", "CResult", "accept", "close", "restarts", "sigaction", "signal"]

SA_RESTART = 0x10000000  # <signal.h> on x86_64 and aarch64
_SIG_DFL, _SIG_IGN = 0, 1


@dataclass(frozen=True)
class CResult:
    """What a C call returned: its value and, when that is -1, the name of errno (EINTR, ...)."""

    value: int
    errno: str = ""

    def __repr__(self) -> str:
        if not self.errno:
            return str(self.value)
        return f"{self.value} (errno {self.errno}: {os.strerror(getattr(errnos, self.errno, 0))})"


class _SigAction(ctypes.Structure):
    """struct sigaction { handler; sigset_t sa_mask; int sa_flags; void (*sa_restorer)(void); }"""

    _fields_ = [
        ("sa_handler", ctypes.c_void_p),
        ("sa_mask", ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong)))),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    if platform.machine() not in ("x86_64", "aarch64"):
        raise NotImplementedError(f"the C calls know struct sigaction on x86_64 and aarch64 only, not {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    libc.close.argtypes = [ctypes.c_int]
    libc.sigaction.argtypes = [ctypes.c_int, ctypes.POINTER(_SigAction), ctypes.POINTER(_SigAction)]
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.signal.restype = ctypes.c_void_p
    return libc


def _result(value: int) -> CResult:
    if value == -1:
        return CResult(-1, errnos.errorcode.get(ctypes.get_errno(), "?"))
    return CResult(value)


def accept(sock) -> CResult:
    """int fd = accept(s, NULL, NULL);  the new descriptor, or -1 and errno (no retry after EINTR).

    `sock` is a socket of the puppet, or a descriptor number as C would pass it.
    """
    fd = sock if isinstance(sock, int) else sock.fileno()
    return _result(_libc().accept(fd, None, None))


def close(fd: int) -> CResult:
    """int close(int fd);  e.g. for a descriptor `accept` returned."""
    return _result(_libc().close(fd))


def _current(signum: int) -> _SigAction:
    """sigaction(signum, NULL, &sa): what the signal does now; refuses a signal with no handler."""
    action = _SigAction()
    if _libc().sigaction(signum, None, ctypes.byref(action)) == -1:
        raise OSError(ctypes.get_errno(), f"sigaction({signum}) failed")
    if (action.sa_handler or _SIG_DFL) in (_SIG_DFL, _SIG_IGN):
        name = signals.Signals(signum).name
        raise ValueError(f"{name} has no handler to install again: choose one first, "
                         f"e.g. srv.on_signal(signal.{name}, 'return')")
    return action


def sigaction(signum: int, restart: bool) -> CResult:
    """Install the signal's handler again with sigaction(), SA_RESTART set or cleared:

        struct sigaction sa;
        sigaction(signum, NULL, &sa);                       /* the handler in place now */
        sa.sa_flags |= SA_RESTART;   or   sa.sa_flags &= ~SA_RESTART;
        sigaction(signum, &sa, NULL);
    """
    action = _current(signum)
    action.sa_flags = action.sa_flags | SA_RESTART if restart else action.sa_flags & ~SA_RESTART
    return _result(_libc().sigaction(signum, ctypes.byref(action), None))


def signal(signum: int) -> None:
    """Install the signal's handler again with glibc's signal(), which sets SA_RESTART (BSD style):

        signal(signum, handler);
    """
    _libc().signal(signum, _current(signum).sa_handler)


def restarts(signum: int) -> bool:
    """Whether the kernel restarts a call this signal's handler interrupted:

        struct sigaction sa;
        sigaction(signum, NULL, &sa);
        return (sa.sa_flags & SA_RESTART) != 0;
    """
    return bool(_current(signum).sa_flags & SA_RESTART)


# What `Puppet.c` offers: each runs in the puppet's main thread (where signals arrive).
CALLS = {f.__name__: f for f in (accept, close, restarts, sigaction, signal)}
