"""Whole servers and crowds of clients, each in a process of its own, watched from /proc.

Lesson 08 compares ways of serving many clients. A design is a function the lesson writes in a
cell, `serve(listener)`; `Server` runs it for real in a child process, on a listening socket made
for it, and reads from /proc what that process is doing: its threads, its children, its memory.

    kernel (notebook)                       server process (python -m helpers.serving)
    Server(serve, echo, name="threads") ->  bind + listen at a fresh path; exec the cells' source;
                                            serve(listener)   <- clients connect here
    server.threads(), .children(), .memory()   read from /proc/<pid>/...
    server.stop()                       ->  SIGTERM; its own children die with it (PR_SET_PDEATHSIG)

`Crowd` holds many idle connections from one more process; `timed_clients` plays a few clients
from threads of the kernel and measures how long each waited for its answer. Every wait has a
timeout, and every process dies with the kernel. Introduced in 08-many-clients.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from helpers import observe, processes
from helpers.kernel_view import accept_queue, fds
from helpers.socket_dir import workspace

__all__ = ["Crowd", "Server", "Timed", "ask", "connect", "fd_room", "state_of", "stop_servers", "summary",
           "threads_of", "timed_clients"]

START_TIMEOUT = 10.0
READ_TIMEOUT = 5.0
_PR_SET_NAME, _PR_SET_PDEATHSIG = 15, 1
_running: set = set()  # servers and crowds of this kernel, for stop_servers()


def _raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (any process may): room for a thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _source(function) -> str:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as error:
        raise TypeError(f"{function!r}: pass a function defined with def in a cell") from error


def fd_room() -> int:
    """How many descriptors a helper process may hold: the hard RLIMIT_NOFILE, which it raises its soft one to."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


class Server:
    """Run `serve(listener)` (a function defined in a cell) in a process of its own.

    `uses` are more functions from cells that `serve` calls (the protocol, say): their source is
    sent along. The listening socket is AF_UNIX at a fresh path in the workspace, backlog 128.
    """

    def __init__(self, serve, *uses, name: str = "server"):
        sources = [_source(f) for f in (*uses, serve)]
        unique = f"{name}-{uuid.uuid4().hex[:6]}"  # two servers of one name never share a socket file
        self.name, self.path, self._log = name, workspace().path(f"{unique}.sock"), workspace().path(f"{unique}.log")
        with open(self._log, "wb") as log:
            self._proc = processes.start("serving", "server", self.path, name, stdin=subprocess.PIPE,
                                         stdout=log, stderr=log, cwd=workspace().dir)
        self.pid = self._proc.pid
        _running.add(self)
        self._proc.stdin.write(pickle.dumps((sources, serve.__name__)))
        self._proc.stdin.close()
        if not observe.wait_until(lambda: accept_queue(self.path) is not None or not self.alive, START_TIMEOUT) \
                or not self.alive:
            errors = self.errors()
            self.stop()
            raise RuntimeError(f"the {name} server did not start listening: {errors or 'no message'}")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def errors(self) -> str:
        """The last line the server printed to stderr (an uncaught exception's message), or ''."""
        with open(self._log, errors="replace") as f:
            lines = [line.rstrip() for line in f if line.strip()]
        return lines[-1] if lines else ""

    def threads(self) -> list[observe.ThreadSnapshot]:
        """One reading of every thread of the server process."""
        return threads_of(self.pid)

    def card(self):
        """A live process card of the server: the main thread, then thread 1, 2, ... in the order they started."""
        from helpers.widgets import ProcessCard  # here: the server process itself needs no widgets

        return ProcessCard(_ThreadNames(self.pid, self.name))

    def children(self) -> list[int]:
        """Pids of the server's child processes (a forking server's), living or zombie."""
        return _children(self.pid)

    def memory(self) -> dict:
        """Threads, resident memory (VmRSS, KiB) and CPU seconds used so far, from /proc/<pid>."""
        return _usage(self.pid)

    def sockets(self) -> int:
        """How many socket descriptors the server process holds now."""
        return sum(1 for target in fds(self.pid).values() if target.startswith("socket:"))

    def settle(self, threads: int | None = None, timeout: float = 5.0) -> list[observe.ThreadSnapshot]:
        """Wait until every thread sleeps in a system call (and there are `threads` of them); the reading.

        Two equal readings in a row, as in observe.wait_until_blocked: a thread caught between two
        calls is not yet settled.
        """
        previous: list = [None]

        def settled():
            rows = self.threads()
            key = [(s.tid, s.syscall, s.fd) for s in rows]
            ok = all(s.sleeping and s.syscall and s.syscall != "futex" for s in rows) and \
                (threads is None or len(rows) == threads) and key == previous[0]
            previous[0] = key
            return rows if ok else None

        rows = observe.wait_until(settled, timeout)
        if rows is None:
            raise TimeoutError(f"the {self.name} server did not settle within {timeout} s: "
                               + summary(self.threads()))
        return rows

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 5.0) -> int:
        """Wait for the server to end by itself; its exit status."""
        return self._proc.wait(timeout)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL); its children die with it. The socket file goes too."""
        processes.stop(self._proc, timeout=2.0)
        for path in (self.path, self._log):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        _running.discard(self)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{self.name} server pid={self.pid} {'running' if self.alive else 'ended'}>"


class _ThreadNames:
    """What a ProcessCard needs to name a process's threads: stable names, whatever the thread ids are."""

    def __init__(self, pid: int, name: str):
        self.pid, self.name, self.own_fds = pid, name, ()

    def threads(self) -> list[tuple[str, int]]:
        """The main thread, then the others by start time (thread ids wrap around: their order is no age)."""
        others = sorted((_start_ticks(self.pid, s.tid), s.tid) for s in threads_of(self.pid) if s.tid != self.pid)
        return [(self.name, self.pid), *((f"thread {i}", tid) for i, (_, tid) in enumerate(others, 1))]


def _start_ticks(pid: int, tid: int) -> int:
    """When a thread started, in clock ticks since boot (field 22 of its stat); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def stop_servers() -> int:
    """Stop every server and crowd this kernel started; how many servers were still running."""
    running = [s for s in list(_running) if isinstance(s, Server) and s.alive]
    for each in list(_running):
        each.close() if isinstance(each, Crowd) else each.stop()
    return len(running)


def threads_of(pid: int) -> list[observe.ThreadSnapshot]:
    """One reading of every thread of any process of ours (a server's child, say)."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []
    return [s for s in (observe.snapshot(pid, tid) for tid in tids) if s.state != "gone"]


def _children(pid: int) -> list[int]:
    found = []
    for tid in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
            found += [int(c) for c in f.read().split()]
    return sorted(found)


def state_of(pid: int) -> str:
    """The state letter of a process: S sleeping, R running, Z zombie, ... ('gone' once reaped)."""
    return observe.snapshot(pid).state


def _usage(pid: int) -> dict:
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"threads": int(status["Threads"][0]), "rss_kib": int(status["VmRSS"][0]),
            "cpu_seconds": (int(fields[11]) + int(fields[12])) / ticks}


def summary(rows: list[observe.ThreadSnapshot]) -> str:
    """'6 threads: 1 in accept4, 5 in recvfrom': what the threads of a process are doing, counted."""
    counts = Counter(s.syscall if s.sleeping and s.syscall else observe.ThreadSnapshot.describe(s) for s in rows)
    parts = ", ".join(f"{n} in {what}" for what, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{len(rows)} thread{'s' if len(rows) != 1 else ''}: {parts}"


# -- clients -------------------------------------------------------------------------------------

def connect(path: str, timeout: float = READ_TIMEOUT) -> socket.socket:
    """A client socket connected to `path`; waits (polling, bounded) while the accept queue is full.

    A blocking AF_UNIX connect to a full queue would sleep with no limit, and settimeout() does not
    bound it (lesson 03): we connect non-blocking and try again while the kernel says EAGAIN.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            sock.connect(path)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                sock.close()
                raise TimeoutError(f"the accept queue of {path} stayed full for {timeout} s") from None
            time.sleep(delay)  # the server empties its queue by itself: try again soon
            delay = min(delay * 2, 0.01)
        except BaseException:
            sock.close()
            raise
    sock.settimeout(timeout)
    return sock


@dataclass
class Timed:
    """One client of `timed_clients`: what it got, and how long after connecting."""

    name: str
    reply: bytes
    waited: float

    def __str__(self) -> str:
        return f"{self.name:9} got {self.reply!r:22} {self.waited:.2f} s after it connected"


def _converse(sock: socket.socket, message: bytes, name: str, started: float, go: threading.Event | None = None,
              delay: float = 0.0) -> Timed:
    with sock:
        if go is not None:
            go.wait(READ_TIMEOUT)  # the slow client starts thinking once the whole crowd is connected
            time.sleep(delay)  # this client's behaviour: it thinks before it speaks
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            reply += b" (no end of stream)"
        except ConnectionError as error:
            reply += f" ({type(error).__name__})".encode()
        return Timed(name, reply, time.monotonic() - started)


def ask(path: str, message: bytes, name: str = "client") -> Timed:
    """One client: connect, send `message`, shut down writing, read the answer to its end (bounded)."""
    started = time.monotonic()
    return _converse(connect(path), message, name, started)


def timed_clients(path: str, fast: int = 4, slow: float = 1.0) -> list[Timed]:
    """A slow client connects first; then `fast` clients connect and speak at once; the slow one speaks
    `slow` seconds after the last of them connected. Each sends one message, shuts down writing, and
    reads the answer to its end; each says how long after its own connect the answer was complete."""
    results: dict[int, Timed] = {}
    go = threading.Event()

    def run(index: int, sock: socket.socket, message: bytes, name: str, started: float):
        try:
            results[index] = _converse(sock, message, name, started, go if index == 0 else None, slow)
        except OSError as error:
            results[index] = Timed(name, f"{type(error).__name__}".encode(), time.monotonic() - started)

    threads = []
    plan = [("slow", b"slow one"), *((f"client {i}", f"client {i}".encode()) for i in range(1, fast + 1))]
    for index, (name, message) in enumerate(plan):
        started = time.monotonic()
        sock = connect(path)
        threads.append(threading.Thread(target=run, args=(index, sock, message, name, started), daemon=True))
        threads[-1].start()
        if index == 0:  # the slow client is taken from the accept queue first, whatever the design
            observe.wait_until(lambda: accept_queue(path).queued == 0, 2.0)
    go.set()
    for thread in threads:
        thread.join(slow + 2 * READ_TIMEOUT)
    return [results[i] for i in sorted(results)]


class Crowd:
    """`n` idle clients, connected to `path` from a process of their own; they leave on `close()`.

    The crowd raises its own soft RLIMIT_NOFILE to the hard limit, so a thousand connections fit
    whatever the kernel's own limit is.
    """

    def __init__(self, path: str, n: int):
        self._proc = processes.start("serving", "crowd", path, str(n), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workspace().dir)
        line = self._proc.stdout.readline().decode().strip()  # one line once all are connected, or an error
        if not line.startswith("connected "):
            self.close()
            raise RuntimeError(f"the crowd could not connect: {line or 'no message'}")
        self.connected = int(line.split()[1])
        self.pid = self._proc.pid
        _running.add(self)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        processes.stop(self._proc, timeout=2.0)
        self._proc.stdout.close()
        _running.discard(self)

    def __enter__(self) -> Crowd:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the child processes -----------------------------------------------------------------------

_forker = [0]  # the pid of the process that is forking, recorded just before the fork


def _remember_forker() -> None:
    _forker[0] = os.getpid()


def _die_with_parent() -> None:
    """In a child a server forked: die when the server dies, also if it died before this ran."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != _forker[0]:  # the server is already gone: no signal would ever come
        os._exit(1)


def _serve(path: str, name: str) -> None:
    sources, function = pickle.loads(sys.stdin.buffer.read())
    _raise_fd_limit()
    ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)  # the name ps and /proc show
    os.register_at_fork(before=_remember_forker, after_in_child=_die_with_parent)  # children die with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the notebook's Stop button is not for us
    namespace: dict = {"__name__": "__server__"}
    exec("import asyncio, errno, os, selectors, signal, socket, socketserver, threading, time\n", namespace)
    for source in sources:  # before listening: a cell that does not even define its function never listens
        exec(compile(source, "<cell>", "exec"), namespace)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    try:
        namespace[function](listener)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _crowd(path: str, n: int) -> None:
    room = _raise_fd_limit()
    socks = []
    try:
        for _ in range(min(n, room - 16)):
            socks.append(connect(path))
    except OSError as error:
        print(f"{type(error).__name__}: {error}", flush=True)
        os._exit(1)
    print(f"connected {len(socks)}", flush=True)
    sys.stdin.read()  # until the kernel closes our stdin: then all leave together
    for sock in socks:
        sock.close()


def main() -> None:
    processes.die_with_parent()
    role, path, arg = sys.argv[1:4]
    if role == "server":
        _serve(path, arg)
    else:
        _crowd(path, int(arg))


if __name__ == "__main__":
    main()
