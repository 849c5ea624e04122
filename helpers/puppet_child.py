"""The puppet's own side: a Python process that makes socket calls on command.

    kernel (notebook)                         puppet process
    -----------------                         --------------
    cmd pipe   ---- Call ------------------->  main thread: runs the call, may block in it
    side pipe  ---- ToThread, StartThread -->  router thread -> queue -> worker thread(s)
    reply pipe <--- Hello, Reply -----------  whichever thread finished the call
    event pipe <--- Event ------------------  the signal handler, in the main thread

The messages are the named tuples of `helpers.wire`. The main thread reads its commands itself, so
a call costs one pipe write each way. Only the main thread receives signals (all other threads
block them), because Python runs handlers there and a signal must interrupt the call the main
thread sleeps in. `Process.fork` forks the puppet: the child serves four new pipes of its own,
which the kernel opens through /proc (docs/architecture.md, "A puppet that forks"). Started by
`helpers.puppet.Puppet`; it imports only what it needs (no widgets, no /proc readers), so that a
puppet starts quickly.
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

from helpers import processes, wire

SIGNAL_ACTIONS = ("default", "ignore", "return", "raise")
_HIGH_FDS = 200  # the puppet's own pipes live from here on


class Process:
    """Calls on the process rather than on one socket: handle 0."""

    def __init__(self, launch: wire.Launch):
        self.launch = launch  # its own ends of the pipes to the kernel
        self.in_call = False  # True while the main thread runs a call: only then may a handler raise
        self._handed_over: dict[int, tuple[int, ...]] = {}  # a forked child's pid -> the kernel's ends, until opened
        self.objects = Objects(self)  # the sockets the kernel knows by handle; a forked child inherits them

    socket = staticmethod(sockets.socket)
    socketpair = staticmethod(sockets.socketpair)
    unlink = staticmethod(os.unlink)
    chmod = staticmethod(os.chmod)
    umask = staticmethod(os.umask)
    getrlimit = staticmethod(resource.getrlimit)
    setrlimit = staticmethod(resource.setrlimit)
    waitpid = staticmethod(os.waitpid)

    def fork(self) -> tuple[int, tuple[int, ...], int]:
        """fork(): a copy of this process, with every descriptor, serving four new pipes of its own.

        Returns the child's pid, the fd numbers of the kernel's ends of its pipes, which this process
        keeps open until the kernel has opened them through /proc (`handed_over`), and the first
        handle the child did not inherit (handles below it name the same sockets in both). The child
        closes this process's plumbing and serves its own pipes with the same handles (the Objects
        table is copied by fork); only the thread that forked, this main thread, lives on in it.
        """
        pipes = [_high(fd) for _ in range(4) for fd in os.pipe()]  # high: the next socket gets the lowest free fd
        (cmd_r, cmd_w, reply_r, reply_w, side_r, side_w, events_r, events_w) = pipes
        child, kernel_ends = wire.Launch(cmd_r, reply_w, side_r, events_w), (cmd_w, reply_r, side_w, events_r)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            processes.die_with_parent(parent)  # first: the chain kernel -> puppet -> child holds from here
            for fd in (*self.launch[:4], *kernel_ends):
                os.close(fd)
            self.launch, self.in_call, self._handed_over = child, False, {}  # a handler now writes to our own pipe
            serve(self)  # never returns
        for fd in child[:4]:
            os.close(fd)
        self._handed_over[pid] = kernel_ends
        return pid, kernel_ends, self.objects.next_handle

    def handed_over(self, pid: int) -> None:
        """The kernel has opened its ends of child `pid`'s pipes: close our copies, so that only the
        kernel and the child hold them (an end of file then means one of the two is gone)."""
        for fd in self._handed_over.pop(pid):
            os.close(fd)

    def send_fds(self, sock, buffers, socks):
        """Send data and the descriptors of `socks` (SCM_RIGHTS); socket.send_fds wants fd numbers."""
        return sockets.send_fds(sock, buffers, [s.fileno() for s in socks])

    def recv_fds(self, sock, bufsize: int, maxfds: int):
        """Receive data and file descriptors, adopting each descriptor as a socket object."""
        data, fds, flags, addr = sockets.recv_fds(sock, bufsize, maxfds)
        return data, [sockets.socket(fileno=fd) for fd in fds], flags, addr

    def c_call(self, name: str, *args, **kwargs):
        """One libc call made through ctypes (helpers.c_calls): C's result, no Python in between."""
        from helpers import c_calls  # on first use: most puppets never make one, and start faster without it

        return c_calls.CALLS[name](*args, **kwargs)

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
            wire.write_message(self.launch.events_fd, wire.Event("signal", signum, action))  # small: one atomic write
            if action == "raise" and self.in_call:
                raise RuntimeError(f"raised by the {name} handler")

        return handler


class Objects:
    """Handle -> object. Handle 0 is the process itself (`Process`); sockets get 1, 2, ..."""

    def __init__(self, process: Process):
        self._table = {0: process}
        self.next_handle = 1

    def get(self, handle: int):
        return self._table[handle]

    def encode(self, value):
        """Replace sockets in a result by SocketRefs the kernel can turn into remote sockets."""
        if isinstance(value, sockets.socket):
            handle, self.next_handle = self.next_handle, self.next_handle + 1
            self._table[handle] = value
            return wire.SocketRef(handle, value.fileno(), int(value.family), int(value.type))
        if type(value) in (tuple, list):
            return type(value)(self.encode(v) for v in value)
        return value

    def decode(self, value):
        if isinstance(value, wire.SocketRef):
            return self._table[value.handle]
        if type(value) in (tuple, list) and value:
            return type(value)(self.decode(v) for v in value)
        return value


class Runner:
    """Runs calls and sends their replies, from the main thread and from the workers beside it."""

    def __init__(self, objects: Objects, reply_fd: int):
        self._objects, self._reply_fd = objects, reply_fd
        self._reply_lock = threading.Lock()
        self._queues: list[queue.SimpleQueue] = []

    def reply(self, message: wire.Reply | wire.Hello) -> None:
        with self._reply_lock:
            wire.write_message(self._reply_fd, message)

    def run(self, call: wire.Call, process: Process | None = None) -> None:
        """Run one call; `process` is given in the main thread, where a signal handler may interrupt it."""
        objects = self._objects
        try:
            function = getattr(objects.get(call.handle), call.method)
            args, kwargs = objects.decode(call.args), objects.decode(call.kwargs)
            if process:
                process.in_call = True
            try:
                value = function(*args, **kwargs)
            finally:
                if process:
                    process.in_call = False
            reply = wire.Reply(call.id, True, objects.encode(value))
        except BaseException as exc:  # everything goes back to the kernel, nothing is printed here
            reply = wire.Reply(call.id, False, _portable(exc))
        self.reply(reply)

    def route(self, side_fd: int) -> None:
        """Router thread: start workers, and hand each ToThread to that worker's queue."""
        _block_signals_in_this_thread()  # inherited by the workers this thread starts
        for message in wire.messages(side_fd):
            if type(message) is wire.StartThread:
                self.reply(wire.Reply(message.id, True, self._start_worker()))
            else:
                self._queues[message.worker].put(message.call)
        _exit()

    def _start_worker(self) -> int:
        """Start a worker thread; returns its kernel thread id so the notebook can watch it."""
        work: queue.SimpleQueue = queue.SimpleQueue()
        self._queues.append(work)
        started: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, args=(work, started), daemon=True).start()
        return started.get()

    def _work(self, work: queue.SimpleQueue, started: queue.SimpleQueue) -> None:
        started.put(threading.get_native_id())
        while True:
            self.run(work.get())


def _portable(exc: BaseException):
    """The exception itself if it survives the wire, else a RuntimeError that says what it was."""
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    try:
        wire.pack(wire.Reply(0, False, exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _block_signals_in_this_thread() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def _high(fd: int) -> int:
    """Move a pipe end out of the way, so the first socket the student makes is fd 3, as in C."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FDS)
    os.close(fd)
    return moved


def serve(process: Process) -> None:
    """Say Hello, then run the calls that arrive on the process's pipes until the kernel closes them.

    The puppet's main thread, and a forked child's: a fresh Runner and router thread each time,
    since fork copies neither the other threads nor the state of their locks.
    """
    launch = process.launch
    runner = Runner(process.objects, launch.reply_fd)
    threading.Thread(target=runner.route, args=(launch.side_fd,), daemon=True).start()
    runner.reply(wire.Hello(threading.get_native_id(), os.getpid(), os.getuid(), os.getgid(),
                            (launch.cmd_fd, launch.reply_fd)))
    for call in wire.messages(launch.cmd_fd):
        runner.run(call, process)
    _exit()  # the kernel closed our command pipe: it is done with us


def _exit() -> None:
    """Exit, first reaping the forked children that have ended: the kernel stops a puppet's children
    before the puppet, so none is left a zombie for an init process that may never reap it."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:  # no children (left)
        pass
    os._exit(0)


def main() -> None:
    processes.die_with_parent()
    launch = wire.Launch.from_argv(sys.argv[1:])
    launch = launch._replace(**{field: _high(getattr(launch, field)) for field in launch._fields[:4]})
    if launch.user:
        processes.drop_privileges(launch.user)
    # JupyterLab's Stop button sends SIGINT to the kernel's whole process group, puppets included.
    # It is meant to stop the cell that waits, not the lesson's processes: they ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Process(launch))


if __name__ == "__main__":
    main()
