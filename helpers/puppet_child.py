"""The puppet's own side: a Python process that makes socket calls on command.

    kernel (notebook)                         puppet process
    -----------------                         --------------
    cmd pipe   ---- (id, handle, method, args) ---->  main thread: runs the call, may block in it
    side pipe  ---- (thread, message) --------->  router thread -> queue -> worker thread(s)
    reply pipe <--- (id, ok, value) ------------  whichever thread finished the call
    event pipe <--- ("signal", signum, action) -  the signal handler, in the main thread

The main thread reads its commands itself, so a call costs one pipe write each way. Only the main
thread receives signals (all other threads block them), because Python runs handlers there and a
signal must interrupt the call the main thread sleeps in. Started by `helpers.puppet.Puppet`.
"""

from __future__ import annotations

import fcntl
import os
import queue
import resource
import signal
import socket as sockets
import sys
import threading

from helpers import c_calls, processes, wire

SIGNAL_ACTIONS = ("default", "ignore", "return", "raise")
_HIGH_FDS = 200  # the puppet's own pipes live from here on


class Objects:
    """Handle -> object. Handle 0 is the process itself (`Process`); sockets get 1, 2, ..."""

    def __init__(self, process):
        self._table = {0: process}
        self._next = 1

    def get(self, handle: int):
        return self._table[handle]

    def encode(self, value):
        """Replace sockets in a result by SocketRefs the kernel can turn into remote sockets."""
        if isinstance(value, sockets.socket):
            handle, self._next = self._next, self._next + 1
            self._table[handle] = value
            return wire.SocketRef(handle, value.fileno(), int(value.family), int(value.type))
        if isinstance(value, tuple | list):
            return type(value)(self.encode(v) for v in value)
        return value

    def decode(self, value):
        if isinstance(value, wire.SocketRef):
            return self._table[value.handle]
        if isinstance(value, tuple | list):
            return type(value)(self.decode(v) for v in value)
        return value


class Process:
    """Calls on the process rather than on one socket: handle 0."""

    def __init__(self, events_fd: int, lanes: Lanes):
        self._events_fd = events_fd
        self._lanes = lanes
        self.in_call = False  # True while the main thread runs a call: only then may a handler raise

    socket = staticmethod(sockets.socket)
    socketpair = staticmethod(sockets.socketpair)
    unlink = staticmethod(os.unlink)
    chmod = staticmethod(os.chmod)
    umask = staticmethod(os.umask)
    getrlimit = staticmethod(resource.getrlimit)
    setrlimit = staticmethod(resource.setrlimit)

    def send_fds(self, sock, buffers, socks):
        """Send data and the descriptors of `socks` (SCM_RIGHTS); socket.send_fds wants fd numbers."""
        return sockets.send_fds(sock, buffers, [s.fileno() for s in socks])

    def recv_fds(self, sock, bufsize: int, maxfds: int):
        """Receive data and file descriptors, adopting each descriptor as a socket object."""
        data, fds, flags, addr = sockets.recv_fds(sock, bufsize, maxfds)
        return data, [sockets.socket(fileno=fd) for fd in fds], flags, addr

    def c_call(self, name: str, *args, **kwargs):
        """One libc call made through ctypes (helpers.c_calls): C's result, no Python in between."""
        return c_calls.CALLS[name](*args, **kwargs)

    def ids(self):
        return {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid()}

    def exit(self, code: int = 0):
        os._exit(code)

    def start_thread(self):
        return self._lanes.start_worker()

    def on_signal(self, signum: int, action: str):
        """Choose what the process does when `signum` arrives (must run in the main thread)."""
        if action not in SIGNAL_ACTIONS:
            raise ValueError(f"action must be one of {SIGNAL_ACTIONS}, not {action!r}")
        if action == "default":
            signal.signal(signum, signal.SIG_DFL)
        elif action == "ignore":
            signal.signal(signum, signal.SIG_IGN)
        else:
            signal.signal(signum, self._handler(action))

    def _handler(self, action):
        def handler(signum, frame):
            name = signal.Signals(signum).name
            wire.write_message(self._events_fd, ("signal", signum, action))  # small: one atomic write
            if action == "raise" and self.in_call:
                raise RuntimeError(f"raised by the {name} handler")

        return handler


class Lanes:
    """Runs messages and sends replies; owns the worker threads beside the main thread."""

    def __init__(self, reply_fd: int):
        self._reply_fd = reply_fd
        self._reply_lock = threading.Lock()
        self._queues: list[queue.SimpleQueue] = []
        self.objects: Objects | None = None

    def run(self, message, process: Process | None = None) -> None:
        call_id, handle, method, args, kwargs = message
        try:
            target = self.objects.get(handle)
            function = getattr(target, method)
            args, kwargs = self.objects.decode(args), self.objects.decode(kwargs)
            if process:
                process.in_call = True
            try:
                value = function(*args, **kwargs)
            finally:
                if process:
                    process.in_call = False
            reply = (call_id, True, self.objects.encode(value))
        except BaseException as exc:  # everything goes back to the kernel, nothing is printed here
            reply = (call_id, False, _portable(exc))
        with self._reply_lock:
            wire.write_message(self._reply_fd, reply)

    def start_worker(self) -> int:
        """Start a worker thread; returns its kernel thread id so the notebook can watch it."""
        lane = len(self._queues)
        self._queues.append(queue.SimpleQueue())
        started = queue.SimpleQueue()
        threading.Thread(target=self._work, args=(lane, started), daemon=True).start()
        return started.get()

    def route(self, side_fd: int) -> None:
        """Router thread: hand each (lane, message) from the side pipe to that worker's queue."""
        reader = wire.Reader()
        while data := os.read(side_fd, 65536):
            for lane, message in reader.feed(data):
                if lane < 0:
                    self.run(message)  # start_thread: runs here, in the router
                else:
                    self._queues[lane].put(message)
        os._exit(0)

    def _work(self, lane: int, started: queue.SimpleQueue) -> None:
        started.put(threading.get_native_id())
        while True:
            self.run(self._queues[lane].get())


def _portable(exc: BaseException):
    """The exception itself if it survives pickling, else a RuntimeError that says what it was."""
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    try:
        wire.pack(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _block_signals_in_this_thread() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def main() -> None:
    processes.die_with_parent()
    cmd_fd, reply_fd, side_fd, events_fd = (_move_high(int(a)) for a in sys.argv[1:5])
    if len(sys.argv) > 5 and sys.argv[5]:
        processes.drop_privileges(sys.argv[5])
    # JupyterLab's Stop button sends SIGINT to the kernel's whole process group, puppets included.
    # It is meant to stop the cell that waits, not the lesson's processes: they ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    lanes = Lanes(reply_fd)
    process = Process(events_fd, lanes)
    lanes.objects = Objects(process)
    router = threading.Thread(target=_route_with_signals_blocked, args=(lanes, side_fd), daemon=True)
    router.start()

    hello = {"tid": threading.get_native_id(), "cmd_fd": cmd_fd, "reply_fd": reply_fd, **process.ids()}
    wire.write_message(reply_fd, (0, True, hello))
    reader = wire.Reader()
    while data := os.read(cmd_fd, 65536):
        for message in reader.feed(data):
            lanes.run(message, process)
    os._exit(0)  # the kernel closed our command pipe: it is done with us


def _move_high(fd: int) -> int:
    """Move a pipe end out of the way, so the first socket the student makes is fd 3, as in C."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FDS)
    os.close(fd)
    return high


def _route_with_signals_blocked(lanes: Lanes, side_fd: int) -> None:
    _block_signals_in_this_thread()  # inherited by the workers this thread starts
    lanes.route(side_fd)


if __name__ == "__main__":
    main()
