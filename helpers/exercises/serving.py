"""Checkers for the exercises of 08-many-clients: servers that serve many clients at once.

The student's server runs in a child process (`Background`); a crowd of clients attacks it from
threads of the kernel while a watcher reads the server's process from /proc:

    kernel: watcher thread                 kernel: client threads             student's process
    find who holds the listening socket    10 quick clients, all at once ->   serve(path, seconds)
    every 50 ms: threads, children,        a silent one (never speaks)        threads / fork /
      zombies, sockets, CPU time           one a byte at a time               one selector loop
                                           one that vanishes mid-request
                                           one that sends 1 MB before reading
    at the end: kill what it left running, judge what the clients and the watcher saw

Each verdict names the first thing that went wrong and what to try. Nothing the student's server
starts outlives the check: the runner's supervisor kills (and reports) processes it forked, every
client socket is closed, the socket file is removed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from helpers import processes
from helpers.exercises.kit import limit, scratch_path, started
from helpers.exercises.report import Report, checker
from helpers.kernel_view import fds, unix_sockets
from helpers.observe import wait_until

__all__ = ["check_serve_selector", "check_serve_threads"]

LESSON = "08"  # the lesson whose exercises these are: the progress view in 00 counts them there

SECONDS = 2.5  # how long the student's server serves before it must stop
STOP_SLACK = 1.0  # seconds it may take to stop and return
QUICK = 10  # quick clients that arrive all at once
QUICK_WAIT = 1.0  # seconds a quick client may wait for its whole answer while a silent client is connected
BIG = 1_000_000  # bytes the greedy client sends before it reads anything
START_WINDOW = 5.0  # seconds for the student's process to start and listen, on a loaded machine
CROWD_TIME = 1.5  # seconds after the start by which every busy client has its answer, or gives up
SAMPLE = 0.05  # seconds between two readings of the server's process
ZOMBIE_GRACE = 0.5  # seconds a child may stay a zombie (or keep the listener) before it counts
IDLE_SHARE = 0.15  # of a quiet window's wall time: above it (even on a loaded machine), the server spins


@dataclass
class Client:
    """What one client of the crowd saw."""

    name: str
    sent: bytes = b""
    reply: bytes = b""
    eof: bool = False
    waited: float = 0.0
    error: str = ""

    @property
    def served(self) -> bool:
        return self.eof and self.reply == self.sent.upper()


@dataclass
class Watch:
    """What the watcher read from /proc while the server ran."""

    pid: int | None = None
    max_threads: int = 0
    processes: dict[int, float] = field(default_factory=dict)  # pid -> create time, every descendant seen
    zombie_since: dict[int, float] = field(default_factory=dict)
    holding_since: dict[int, float] = field(default_factory=dict)  # child -> first seen holding the listener
    lasting_zombie: bool = False
    listener_in_child: bool = False
    cpu_seconds: float = 0.0
    idle_cpu: float = 0.0  # CPU seconds used while only idle clients were connected
    idle_window: float = 0.0
    sockets_after_crowd: int | None = None


def _listener_inode(path: str) -> int | None:
    return next((inode for inode, s in unix_sockets().items() if s["path"] == path and s["state"] == "LISTEN"), None)


def _holders(inode: int) -> list[int]:
    """Pids of every process holding the socket `inode`: its owner, and children that did not close it."""
    target, found = f"socket:[{inode}]", []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(f"/proc/{name}/fd/{fd}") == target for fd in os.listdir(f"/proc/{name}/fd")):
                found.append(int(name))
    return found


class _Watcher:
    """Reads the student's server process every SAMPLE seconds until told to stop."""

    def __init__(self, path: str):
        self.path, self.watch = path, Watch()
        self._stop = threading.Event()
        self._inode: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="exercise-watcher")
        self._thread.start()

    def _find(self) -> None:
        self._inode = self._inode or _listener_inode(self.path)
        if self._inode is None:
            return
        holders = _holders(self._inode)
        parents = {h: (processes.stat_fields(h) or ["", "0"])[1] for h in holders}
        roots = [h for h in holders if int(parents[h]) not in holders]
        if roots:
            self.watch.pid = min(roots)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE if self.watch.pid else 0.005):  # find the server at once, then sample
            if self.watch.pid is None:
                self._find()
            if self.watch.pid is not None:
                self._read(self.watch.pid)

    def _read(self, pid: int) -> None:
        stat = processes.stat_fields(pid)
        if stat is None:
            return
        ticks = os.sysconf("SC_CLK_TCK")
        self.watch.cpu_seconds = (int(stat[11]) + int(stat[12])) / ticks
        self.watch.max_threads = max(self.watch.max_threads, int(stat[17]))
        now = time.monotonic()
        for child in processes.descendants(pid, zombies=True):
            child_stat = processes.stat_fields(child)
            if child_stat is None:
                continue
            self.watch.processes.setdefault(child, float(child_stat[19]))
            if child_stat[0] == "Z":
                since = self.watch.zombie_since.setdefault(child, now)
                self.watch.lasting_zombie |= now - since > ZOMBIE_GRACE
            elif self._inode:  # right after fork() every child holds it: only one that keeps it counts
                with contextlib.suppress(OSError):
                    if f"socket:[{self._inode}]" in fds(child).values():
                        since = self.watch.holding_since.setdefault(child, now)
                        self.watch.listener_in_child |= now - since > ZOMBIE_GRACE

    def sockets_now(self) -> int | None:
        if self.watch.pid is None:
            return None
        try:
            return sum(1 for t in fds(self.watch.pid).values() if t.startswith("socket:"))
        except OSError:
            return None

    def cpu_now(self) -> float:
        stat = processes.stat_fields(self.watch.pid) if self.watch.pid else None
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK") if stat else self.watch.cpu_seconds

    def stop(self) -> Watch:
        self._stop.set()
        self._thread.join(2.0)
        return self.watch


# -- the crowd -----------------------------------------------------------------------------------

def _connect(path: str, deadline: float) -> socket.socket | None:
    while time.monotonic() < deadline:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            sock.setblocking(True)
            return sock
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            sock.close()
            time.sleep(0.01)  # the server is starting, or its queue is full: try again soon
    return None


def _read_all(sock: socket.socket, client: Client, deadline: float, size: int = 65536) -> None:
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(size)
        if not chunk:
            client.eof = True
            return
        client.reply += chunk


def _talk(path: str, client: Client, pieces: list[bytes], pause: float, deadline: float, read_first=True) -> None:
    """Connect, send `pieces` (pausing between them), shut down writing, read the answer to its end."""
    started = time.monotonic()
    sock = _connect(path, deadline)
    if sock is None:
        client.error = "could not connect"
        return
    with sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                client.sent += piece
                if pause:
                    time.sleep(pause)  # this client's pace: slow on purpose
            sock.shutdown(socket.SHUT_WR)
            _read_all(sock, client, deadline)
        except TimeoutError:
            client.error = "timed out"
        except OSError as error:
            client.error = f"{type(error).__name__}: {error}"
    client.waited = time.monotonic() - started


@dataclass
class Attack:
    """Everything the crowd and the watcher saw."""

    quick: list[Client]
    byte_by_byte: Client
    chatty: Client
    greedy: Client | None
    probe: Client | None
    silent_eof: bool
    silent_connected: bool
    watch: Watch
    outcome: object
    file_left: bool


def _keep_alive(path: str, client: Client, deadline: float) -> socket.socket | None:
    """A client that says one thing, reads its answer, and then stays connected in silence."""
    sock = _connect(path, deadline)
    if sock is None:
        client.error = "could not connect"
        return None
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        sock.sendall(b"still here")
        client.sent = b"still here"
        while len(client.reply) < len(client.sent) and (chunk := sock.recv(100)):
            client.reply += chunk
    except OSError as error:
        client.error = f"{type(error).__name__}: {error}"
    return sock


def _eof_within(sock: socket.socket | None, deadline: float) -> bool:
    """Does `sock` read the end of stream before `deadline`? (The socket stays open either way.)"""
    if sock is None:
        return False
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        while chunk := sock.recv(65536):
            del chunk
        return True
    except OSError:
        return False


def _attack(report: Report, function, path: str, greedy: bool) -> Attack:
    run = report.background(function, path, SECONDS, timeout=limit(SECONDS + STOP_SLACK))
    watcher = _Watcher(path)
    started(run)
    wait_until(lambda: watcher.watch.pid is not None or run.done(), START_WINDOW)  # then it binds and listens
    listening = time.monotonic()  # about when the student's function started counting its seconds
    stop_at = listening + SECONDS
    crowd_done = listening + CROWD_TIME  # every busy client gives up by then: a quiet window follows
    silent = _connect(path, listening + SECONDS / 2)
    quick = [Client(f"client {i}") for i in range(1, QUICK + 1)]
    slow, chatty = Client("the byte-at-a-time client"), Client("the client that stays after its answer")
    threads = [threading.Thread(target=_talk, args=(path, c, [f"hello from {c.name}".encode()], 0.0,
                                                     crowd_done), daemon=True) for c in quick]
    threads.append(threading.Thread(target=_talk, args=(path, slow, [bytes([b]) for b in b"slow\n"], 0.03,
                                                        crowd_done), daemon=True))
    vanishing = _connect(path, crowd_done)
    if vanishing is not None:
        with contextlib.suppress(OSError):
            vanishing.sendall(b"half a requ" + b"x" * 200_000)
    for thread in threads:
        thread.start()
    if vanishing is not None:
        vanishing.close()  # gone mid-request, its answer unread
    staying = _keep_alive(path, chatty, crowd_done)
    greedy_client = probe = None
    if greedy:
        greedy_client, probe = Client("the greedy client"), Client("a client served meanwhile")
        _greedy_then_probe(path, greedy_client, probe, crowd_done)
    for thread in threads:
        thread.join(max(0.0, crowd_done - time.monotonic()) + 0.5)
    wait_until(lambda: watcher.sockets_now() is not None and watcher.sockets_now() <= 5, 0.3)
    watcher.watch.sockets_after_crowd = watcher.sockets_now()
    quiet_from, cpu_before = time.monotonic(), watcher.cpu_now()
    time.sleep(max(0.0, stop_at - 0.1 - quiet_from))  # a quiet window: only idle clients are connected now
    watch = watcher.watch
    watch.idle_window, watch.idle_cpu = time.monotonic() - quiet_from, watcher.cpu_now() - cpu_before
    silent_eof = _eof_within(silent, stop_at + STOP_SLACK)
    chatty.eof = _eof_within(staying, stop_at + STOP_SLACK)
    outcome = run.join()  # the idle clients stay connected until the server has returned (or was stopped)
    for sock in (silent, staying):
        if sock is not None:
            sock.close()
    watch = watcher.stop()
    return Attack(quick, slow, chatty, greedy_client, probe, silent_eof, silent is not None, watch, outcome,
                  os.path.lexists(path))


def _greedy_then_probe(path: str, greedy: Client, probe: Client, stop_at: float) -> None:
    """Send BIG bytes without reading; while the answer waits, another client must be served."""
    sock = _connect(path, stop_at)
    if sock is None:
        greedy.error = "could not connect"
        return
    with sock:
        try:
            sock.settimeout(max(0.05, stop_at - time.monotonic()))
            data = b"g" * BIG
            sock.sendall(data)
            greedy.sent = data
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            greedy.error = f"{type(error).__name__}: {error}"
            return
        _talk(path, probe, [b"am I served?"], 0.0, time.monotonic() + QUICK_WAIT)
        try:
            # In small bites: the server then writes its backlog faster than we read it, and its queue fills.
            # A server that sendall()s on a non-blocking socket meets BlockingIOError; a reader as fast as
            # the writer (recv(65536)) could let it through on some runs.
            _read_all(sock, greedy, stop_at, size=4096)
        except TimeoutError:
            greedy.error = "timed out"
        except OSError as error:
            greedy.error = f"{type(error).__name__}: {error}"


# -- verdicts --------------------------------------------------------------------------------------

def _judge(report: Report, attack: Attack, design: str) -> None:
    outcome, watch = attack.outcome, attack.watch
    if watch.pid is None:
        report.check(False, "", f"your function {outcome.problem()}{_error_hint(outcome.error)}" if not outcome.ok
                     else "no listening socket appeared at `path`: bind(path), then listen()")
        return
    served = [c for c in attack.quick if c.served]
    slow_quick = [c for c in served if c.waited > QUICK_WAIT]
    first_bad = next((c for c in attack.quick if not c.served), None)
    if first_bad is not None:
        got = f"got {first_bad.reply[:40]!r}" + (" and no end of stream" if not first_bad.eof else "")
        report.check(False, "", f"{first_bad.name} {got}{' (' + first_bad.error + ')' if first_bad.error else ''}: "
                     + _hint_unserved(attack, first_bad, design))
    elif slow_quick:
        report.check(False, "", f"{len(slow_quick)} of the {QUICK} clients waited more than {QUICK_WAIT:.0f} s "
                     "while a silent client was connected: serve each client apart from the others "
                     "(never recv() in the accept loop)")
    else:
        report.check(True, f"{QUICK} clients at once, with a silent client connected: each got its answer and "
                           "the end of stream", "")
    slow, chatty = attack.byte_by_byte, attack.chatty
    report.check(slow.served, "the byte-at-a-time client got its answer",
                 f"the byte-at-a-time client got {slow.reply!r}: keep reading until b'', a byte may come at a time")
    report.check(chatty.reply == chatty.sent.upper(), "a client got its answer before it shut down writing",
                 f"a client that sent {chatty.sent!r} and waited got {chatty.reply!r}: answer the bytes as they come, "
                 "not only at the end of the stream")
    if attack.greedy is not None:
        _judge_greedy(report, attack)
    _judge_stop(report, attack, design)
    _judge_leaks(report, attack, design)


def _hint_unserved(attack: Attack, client: Client, design: str) -> str:
    """What most likely kept `client` from its answer, from what the watcher saw."""
    watch, outcome = attack.watch, attack.outcome
    one_at_a_time = not client.reply and watch.max_threads <= 2 and not watch.processes
    if outcome.error is not None and not outcome.timed_out and not one_at_a_time:
        return f"your server {outcome.problem()}" + _error_hint(outcome.error)
    if client.reply == client.sent.upper() and not client.eof:
        if watch.processes:
            return ("the parent still held its copy of the connected socket: after fork(), the parent must "
                    "close conn, or the client never reads b''")
        return "close the connection once recv returns b'' (the client shut down writing), so the client reads b''"
    if one_at_a_time:
        return ("your server served one client at a time, and the silent client, connected first, stalled "
                "everyone: " + ("start a thread per client, and never recv() in the accept loop"
                                if design == "threads" else "never wait on one client; wait in select()"))
    return "answer every client with its bytes upper-cased, as they come, until recv returns b''"


def _error_hint(error: BaseException) -> str:
    if isinstance(error, BlockingIOError):
        return (": on a non-blocking socket send() and sendall() raise BlockingIOError when the buffer is full; "
                "keep what was not sent and send it when the selector says EVENT_WRITE")
    if isinstance(error, ConnectionError):
        return ": a client that vanished (BrokenPipeError, ConnectionResetError) must end only its own connection"
    return ""


def _judge_greedy(report: Report, attack: Attack) -> None:
    greedy, probe = attack.greedy, attack.probe
    report.check(probe.served and probe.waited <= QUICK_WAIT,
                 "while one client read nothing, another was served",
                 "while one client sent 1 MB and read nothing, another client waited "
                 f"{probe.waited:.1f} s for its answer: a blocking sendall() stalls the whole loop; make every "
                 "socket non-blocking, keep what send() did not take, and send it on EVENT_WRITE")
    if greedy.served:
        report.check(True, "the client that sent 1 MB before reading got all of it back", "")
    elif len(greedy.reply) > len(greedy.sent):
        report.check(False, "", f"the client that sent {len(greedy.sent)} bytes got {len(greedy.reply)} back, some twice: "
                    "sendall() on a non-blocking socket raises BlockingIOError after sending a part, and you sent "
                    "that part again; use send(), keep only what it did not take, send that on EVENT_WRITE")
    elif greedy.reply == greedy.sent.upper():
        report.check(False, "", "the client that sent 1 MB got it all back but never the end of stream: once the client "
                    "shut down writing and nothing is owed, unregister and close its socket")
    else:
        report.check(False, "", f"the client that sent {len(greedy.sent)} bytes got {len(greedy.reply)} back"
                    f"{' (' + greedy.error + ')' if greedy.error else ''}: send() may take less than you give it, "
                    "and a client that shut down writing still reads: keep the rest and send it when the "
                    "selector says EVENT_WRITE, close only when nothing is owed")


def _judge_stop(report: Report, attack: Attack, design: str) -> None:
    outcome = attack.outcome
    if outcome.timed_out:
        report.check(False, "", f"it did not stop {outcome.timeout - SECONDS:.1f} s after its {SECONDS:.1f} s were up"
                     + (": a thread still sleeps in recv() on the silent client; shut its socket down "
                        "(shutdown(SHUT_RDWR)) to wake it, then join the thread" if design == "threads" else
                        ": give select() a timeout and look at the clock"))
        return
    if outcome.error is not None:
        report.check(False, "", f"your server {outcome.problem()}{_error_hint(outcome.error)}")
        return
    late = outcome.seconds - SECONDS
    report.check(-0.2 <= late <= STOP_SLACK, f"it stopped on time ({late:+.2f} s)",
                 f"it returned after {outcome.seconds:.2f} s, asked for {SECONDS:.1f} s: serve until then, "
                 "and stop right after")
    report.check(attack.silent_eof and attack.chatty.eof, "the idle clients read the end of stream when you stopped",
                 "an idle client never read the end of stream when you stopped: close every connected socket "
                 "when you stop")
    accepted = sum(1 for c in (*attack.quick, attack.byte_by_byte) if c.reply or c.eof) + attack.silent_connected
    report.check(isinstance(outcome.value, int) and outcome.value >= accepted,
                 "it returned the number of clients it accepted",
                 f"it returned {outcome.value!r}; at least {accepted} clients were accepted: count every accept()")


def _judge_leaks(report: Report, attack: Attack, design: str) -> None:
    watch, outcome = attack.watch, attack.outcome
    if watch.lasting_zombie:
        report.check(False, "", "its children stayed zombies (state Z in /proc): reap them with os.waitpid() "
                                "(a SIGCHLD handler, or WNOHANG in the loop)")
    if watch.listener_in_child:
        report.check(False, "", "a child process held the listening socket: close it in the child right after fork()")
    if design == "selector":
        report.check(watch.max_threads <= 2 and not watch.processes,
                     "one thread served everyone",
                     f"the server ran {watch.max_threads} threads"
                     f"{' and forked' if watch.processes else ''}: serve every client from one thread, with a selector")
    elif not watch.processes:
        report.check(watch.max_threads > 2, "each client had a thread of its own",
                     f"the server never had more than {watch.max_threads} thread(s): start a thread per client")
    if watch.sockets_after_crowd is not None:
        report.check(watch.sockets_after_crowd <= 5, "finished clients left no socket open in the server",
                     f"after the crowd left the server still held {watch.sockets_after_crowd} sockets: close each "
                     "connected socket once its client is done (recv returned b'' or a ConnectionError)")
    busy = watch.idle_cpu > max(0.05, IDLE_SHARE * watch.idle_window)
    report.check(not busy, "it slept while its clients were idle",
                 f"it burned {watch.idle_cpu:.2f} s of CPU in {watch.idle_window:.2f} s while its clients were idle: "
                 "a loop spins; stop watching a socket for reading after b'', and for writing when nothing is owed")
    if outcome.ok:  # sockets left open, threads and processes left running: the report's own final checks
        report.check(not attack.file_left, "the socket file is gone",
                     "the socket file is still there: unlink(path) before you return")


@checker("Exercise: serve_threads(path, seconds)")
def check_serve_threads(report: Report, serve_threads) -> None:
    with scratch_path("ex08") as path:
        _judge(report, _attack(report, serve_threads, path, greedy=False), "threads")


@checker("Exercise: serve_selector(path, seconds)")
def check_serve_selector(report: Report, serve_selector) -> None:
    with scratch_path("ex08") as path:
        _judge(report, _attack(report, serve_selector, path, greedy=True), "selector")
