"""The gauntlet: the student's server.py and client.py, run as real processes and attacked.

    gauntlet("capstone/server.py", "capstone/client.py")          # in a notebook
    python -m helpers.capstone server.py client.py                 # in a terminal

Each attack is one line, with the lesson to revisit when it fails:

    PASS stale socket file at start-up
    FAIL 20 concurrent clients: 19 of 20 got no answer within 2 s: ... (lesson 08)

The server is attacked by the gauntlet's own clients, and client.py talks to the gauntlet's own
server (`TestServer`), so that each line judges one program only. Every wait has a timeout; every
process is killed at the end, with whatever it started (its process group); socket files are removed.
"""

from __future__ import annotations

import argparse
import ast
import errno
import itertools
import os
import random
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from helpers.capstone import peer as peer_module
from helpers.capstone.program import Program, start
from helpers.capstone.protocol import MAX_MESSAGE, connect, frame, read_message, reply_to, wait_until_read
from helpers.exercises.kit import limit
from helpers.observe import wait_until
from helpers.socket_dir import workspace

__all__ = ["ATTACKS", "Line", "Report", "gauntlet"]

ANSWER = 2.0  # seconds a server has to answer, to close a rejected connection, to stop after SIGTERM
# seconds a server that misbehaved gets to finish exiting: a process closes its sockets (resetting a
# connection it had not accepted) a moment before it ends, so how it ended is the report, not the reset
EXITING = 0.5


def start_time() -> float:
    """Seconds a program has to start (a Python interpreter on a loaded machine) or to finish: what a
    program that never does costs; the tests lower the allowance (kit.limit) to see it sooner."""
    return limit(4.0)
CLIENTS = 20
PEER_SOURCE = open(peer_module.__file__).read()  # run with `python -c`: any user's Python can, no file access

# (attack, lesson to revisit); the order is the order they run in
SERVER_ATTACKS = [
    ("stale socket file at start-up", "02"),
    ("socket file mode 0600", "02"),
    ("a live copy already serving", "02"),
    ("3 requests on one connection", "07"),
    (f"{CLIENTS} concurrent clients", "08"),
    ("a client that sends one byte at a time", "07"),
    ("a message split across many sends", "07"),
    ("an oversized length", "07"),
    ("a client that half-closes", "06"),
    ("a client killed mid-request", "06"),
    ("a peer of another uid", "02"),
    ("no socket left open", "06"),
    ("SIGTERM with a request in flight", "04"),
    ("nothing left after it exited", "04"),
]
CLIENT_ATTACKS = [
    ("client.py gets its answer", "07"),
    ("client.py retries while the server restarts", "05"),
]
ATTACKS = [name for name, _ in SERVER_ATTACKS + CLIENT_ATTACKS]
FRESH_START = "stale socket file at start-up"  # starts the server itself
AFTER_EXIT = "nothing left after it exited"  # looks at the server that the SIGTERM attack stopped
LESSONS = dict(SERVER_ATTACKS + CLIENT_ATTACKS)


@dataclass
class Line:
    verdict: str  # PASS, FAIL or SKIP
    attack: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.verdict} {self.attack}" + (f": {self.detail}" if self.detail else "")
        return text + (f" (lesson {LESSONS[self.attack]})" if self.verdict == "FAIL" else "")


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def verdicts(self) -> dict[str, str]:
        return {line.attack: line.verdict for line in self.lines}

    def line(self, attack: str) -> str:
        return next(str(line) for line in self.lines if line.attack == attack)

    @property
    def passed(self) -> bool:
        verdicts = [line.verdict for line in self.lines]
        return "PASS" in verdicts and "FAIL" not in verdicts and not self.notes

    def __repr__(self) -> str:
        counts = {v: sum(line.verdict == v for line in self.lines) for v in ("PASS", "FAIL", "SKIP")}
        summary = f"{len(self.lines)} attack{'' if len(self.lines) == 1 else 's'}: {counts['PASS']} passed, " \
                  f"{counts['FAIL']} failed"
        summary += f", {counts['SKIP']} skipped" if counts["SKIP"] else ""
        return "\n".join([*self.notes, *map(str, self.lines), summary])


def _short(data: bytes) -> str:
    return repr(data) if len(data) <= 40 else f"{data[:30]!r}... ({len(data)} bytes)"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def answer_problem(sock: socket.socket, request: bytes, timeout: float = ANSWER, allowed: float = ANSWER) -> str:
    """'' if the next message on `sock` is the right answer to `request`, else what came instead.

    `timeout` is how long we still wait; `allowed`, the time the server had in all (for the message).
    """
    try:
        got = read_message(sock, timeout)
    except TimeoutError:
        return f"no answer within {allowed:g} s"
    except EOFError:
        return "the connection ended in the middle of the answer"
    except ValueError as error:
        return f"an answer that is not a framed message ({error})"
    except ConnectionError as error:
        return f"the connection was reset ({type(error).__name__})"
    if got is None:
        return "the server closed the connection without answering"
    if got != reply_to(request):
        return f"the answer {_short(got)} instead of {_short(reply_to(request))}"
    return ""


def dribble(sock: socket.socket, pieces: list[bytes], deadline: float) -> str:
    """Send `pieces` one by one, each once the server has read the last; '' or what went wrong."""
    total, sent = sum(map(len, pieces)), 0
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError as error:
            return f"the server closed the connection after {sent} of the {total} bytes ({type(error).__name__})"
        sent += len(piece)
        wait_until_read(sock, deadline)  # after the deadline, the rest goes at once
    return ""


def accepts(path: str) -> bool:
    """Does a listening socket at `path` take connections? (A non-blocking connect; EAGAIN: a full queue.)"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        return probe.connect_ex(path) in (0, errno.EAGAIN)


def make_stale(path: str) -> None:
    """Leave a socket file at `path` with nobody behind it, as a crashed server does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)


def remove(path: str) -> None:
    if os.path.lexists(path):
        os.unlink(path)


def _stub_main(file: str) -> bool:
    """Is main() in `file` still the skeleton's `...`?"""
    try:
        with open(file) as f:
            tree = ast.parse(f.read(), file)
    except SyntaxError:
        return False  # it will not start, and Python will say why
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
    if main is None:
        return False
    body = main.body[1:] if ast.get_docstring(main) is not None else main.body
    return all(isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                           and n.value.value is Ellipsis) for n in body)


class TestServer:
    """The gauntlet's own server, to judge client.py alone: it answers one request at a time, in 3
    pieces (a client that reads once gets only the first), and records what it received."""

    def __init__(self, path: str):
        self.path = path
        self.requests: list[bytes] = []
        self.unframed = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="gauntlet-test-server")
        self._thread.start()

    def _serve(self) -> None:
        while True:
            readable, _, _ = select.select([self.listener, self._stop_reader], [], [])
            if self._stop_reader in readable:
                return
            conn, _ = self.listener.accept()
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        try:
            while (request := read_message(conn, ANSWER)) is not None:
                self.requests.append(request)
                data = frame(reply_to(request))
                deadline = time.monotonic() + ANSWER
                cuts = [0, 3, 3 + len(data) // 2, len(data)]
                dribble(conn, [data[a:b] for a, b in itertools.pairwise(cuts)], deadline)
        except ValueError:
            self.unframed = True
        except (OSError, EOFError):
            pass

    def stop(self) -> None:
        self._stop_writer.send(b"!")
        self._thread.join(ANSWER + 1.0)
        for sock in (self.listener, self._stop_reader, self._stop_writer):
            sock.close()
        remove(self.path)


class Gauntlet:
    def __init__(self, server_file: str, client_file: str):
        self.server_file, self.client_file = server_file, client_file
        self.path = workspace().fresh_path("gauntlet.sock")
        self.programs: list[Program] = []
        self.server: Program | None = None
        self.baseline: set[int] = set()  # the sockets the server held when it started listening
        self.stopped: Program | None = None  # the server the SIGTERM attack stopped
        self.rng = random.Random(9)  # the same attacks every run

    # -- processes ----------------------------------------------------------------------------------

    def launch(self, file: str, *args: str) -> Program:
        program = start(file, *args)
        self.programs.append(program)
        return program

    def wait_listening(self, program: Program) -> bool:
        wait_until(lambda: program.listens_at(self.path) or not program.running(), start_time())
        return program.running() and program.listens_at(self.path)

    def start_server(self) -> str:
        """Start server.py on a clean path; '' once it listens, else why it did not."""
        remove(self.path)
        self.server = self.launch(self.server_file, self.path)
        if self.wait_listening(self.server):
            self.baseline = self.server.sockets()
            return ""
        why = f"it {self.server.how_it_ended()}" if not self.server.running() else \
            f"no listening socket at the path after {start_time():g} s"
        self.server.kill()
        return f"server.py did not start on a clean path: {why}"

    def ensure_server(self) -> str:
        """'' if a server listens at the path (started anew if the last one died), else why not."""
        if self.server is not None and self.server.running() and self.server.listens_at(self.path):
            return ""
        if self.server is not None:
            self.server.kill()
        return self.start_server()

    def serving_problem(self) -> str:
        """'' if the server answers a plain request now, else what happened."""
        if not self.server.running():
            return f"the server {self.server.how_it_ended()}"
        try:
            with connect(self.path, ANSWER) as sock:
                sock.sendall(frame(b"still there?"))
                problem = answer_problem(sock, b"still there?")
        except OSError as error:
            problem = f"connect failed with {errno.errorcode.get(error.errno, error.errno)}"
        if problem and self.server.wait(EXITING) is not None:  # it was exiting: its end reset or refused us
            return f"the server {self.server.how_it_ended()}"
        return problem

    def settled(self, timeout: float = ANSWER) -> bool:
        """Wait until the server holds no socket beyond those it started with (or has ended)."""
        return bool(wait_until(lambda: not self.server.running() or self.server.sockets() <= self.baseline, timeout))

    def clean_up(self) -> None:
        for program in self.programs:
            program.kill()
        remove(self.path)
        for program in self.programs:
            for path in (program.output_path, program.errors_path):
                remove(path)

    # -- the server's attacks -------------------------------------------------------------------------

    def stale_socket_file_at_startup(self) -> Line:
        name = "stale socket file at start-up"
        remove(self.path)
        make_stale(self.path)
        self.server = self.launch(self.server_file, self.path)
        if self.wait_listening(self.server):
            self.baseline = self.server.sockets()
            problem = self.serving_problem()
            return Line("FAIL", name, f"it started, but a request: {problem}") if problem else Line("PASS", name)
        why = f"it {self.server.how_it_ended()}" if not self.server.running() else \
            f"no listening socket at the path after {start_time():g} s"
        self.server.kill()
        return Line("FAIL", name, f"{why}: connect to the path first; ECONNREFUSED means stale: unlink it, then bind")

    def socket_file_mode(self) -> Line:
        mode = os.stat(self.path).st_mode
        if stat.S_IMODE(mode) == 0o600:
            return Line("PASS", "socket file mode 0600")
        return Line("FAIL", "socket file mode 0600",
                    f"it is {stat.filemode(mode)} (under umask 002): other users could connect; set os.umask(0o177) "
                    "before bind, and restore it after")

    def live_copy(self) -> Line:
        name = "a live copy already serving"
        inode = os.stat(self.path).st_ino
        second = self.launch(self.server_file, self.path)
        status = second.wait(start_time())
        problems = []
        if status is None:
            problems.append(f"a second copy was still running after {start_time():g} s: it took the path from the "
                            "live server (unlink only after a connect fails with ECONNREFUSED)")
            second.kill()
        elif status == 0:
            problems.append("the second copy exited with status 0: refuse with a message and a non-zero status")
        if not os.path.lexists(self.path) or os.stat(self.path).st_ino != inode:
            problems.append("the live server's socket file was removed or replaced")
        elif problem := self.serving_problem():
            problems.append(f"the first copy no longer answers ({problem})")
        if problems:
            self.server.kill()  # orphaned or harmed: the next attack starts a fresh one
            return Line("FAIL", name, "; ".join(problems))
        return Line("PASS", name)

    def requests_on_one_connection(self) -> Line:
        name = "3 requests on one connection"
        with connect(self.path, ANSWER) as sock:
            for n, request in enumerate((b"first", b"the second request", b"3rd"), 1):
                sock.sendall(frame(request))
                if problem := answer_problem(sock, request):
                    return Line("FAIL", name, f"the {_ordinal(n)} request: {problem}: answer each message as it "
                                              "comes, in a loop, until end of file")
        return Line("PASS", name)

    def concurrent_clients(self) -> Line:
        name = f"{CLIENTS} concurrent clients"
        socks = []
        try:
            for _ in range(CLIENTS):
                socks.append(connect(self.path, ANSWER))
            requests = [f"client {n}".encode() for n in range(CLIENTS)]
            for sock, request in zip(socks, requests, strict=True):
                sock.sendall(frame(request))
            deadline = time.monotonic() + ANSWER
            problems = [answer_problem(sock, request, max(0.001, deadline - time.monotonic()))
                        for sock, request in zip(socks, requests, strict=True)]
        except OSError as error:
            return Line("FAIL", name, f"only {len(socks)} of {CLIENTS} could connect "
                                      f"({errno.errorcode.get(error.errno, error.errno)})")
        finally:
            for sock in socks:
                sock.close()
        failed = [p for p in problems if p]
        if failed:
            return Line("FAIL", name, f"{len(failed)} of {CLIENTS} got no right answer within {ANSWER:g} s "
                                      f"(the first: {failed[0]}): serve each connection in a thread of its own")
        return Line("PASS", name)

    def sent_in_pieces(self, request: bytes, cuts: list[int]) -> str:
        """Send the framed `request` cut at `cuts`, each piece once the server has read the last; '' if answered."""
        data = frame(request)
        bounds = [0, *(c for c in cuts if c < len(data)), len(data)]
        with connect(self.path, ANSWER) as sock:
            problem = dribble(sock, [data[a:b] for a, b in itertools.pairwise(bounds)], time.monotonic() + 2 * ANSWER)
            return problem or answer_problem(sock, request)

    def one_byte_at_a_time(self) -> Line:
        name = "a client that sends one byte at a time"
        request = b"one byte at a time"
        problem = self.sent_in_pieces(request, list(range(1, len(frame(request)))))
        if problem:
            return Line("FAIL", name, f"{problem}: a recv may return a single byte; read the length and the body "
                                      "with recv_exactly")
        return Line("PASS", name)

    def split_message(self) -> Line:
        name = "a message split across many sends"
        request = bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(MAX_MESSAGE))
        cuts = [1, 4]
        while cuts[-1] < len(request):
            cuts.append(cuts[-1] + self.rng.randint(1, 9000))
        problem = self.sent_in_pieces(request, cuts)
        if problem:
            return Line("FAIL", name, f"one message of {MAX_MESSAGE} bytes (the limit, allowed) sent in {len(cuts) + 1} "
                                      f"pieces: {problem}: loop until you have all the bytes announced")
        return Line("PASS", name)

    def oversized_length(self) -> Line:
        name = "an oversized length"
        with connect(self.path, ANSWER) as sock:
            sock.sendall(frame(b"", length=MAX_MESSAGE + 1))  # the header alone: a body we never send
            try:
                data = sock.recv(4096)
                outcome = "closed" if not data else "answered"
            except TimeoutError:
                outcome = "open"
            except ConnectionError:
                outcome = "closed"
        if outcome == "open":
            return Line("FAIL", name, f"the connection was still open {ANSWER:g} s after a length of {MAX_MESSAGE + 1} "
                                      f"bytes was announced: check the length against the limit ({MAX_MESSAGE}) "
                                      "before reading the body, and close that connection")
        if outcome == "answered":
            return Line("FAIL", name, "the server answered a message over the limit: close the connection instead")
        if problem := self.serving_problem():
            return Line("FAIL", name, f"it closed that connection, but then {problem}: reject one client, serve the others")
        return Line("PASS", name)

    def half_close(self) -> Line:
        name = "a client that half-closes"
        requests = (b"half", b"closed")
        with connect(self.path, ANSWER) as sock:
            sock.sendall(b"".join(frame(r) for r in requests))
            sock.shutdown(socket.SHUT_WR)
            for n, request in enumerate(requests, 1):
                if problem := answer_problem(sock, request):
                    return Line("FAIL", name, f"after the client shut down writing, its {_ordinal(n)} request: "
                                              f"{problem}: answer everything received before end of file")
            try:
                ended = read_message(sock, ANSWER) is None
            except (TimeoutError, ValueError, EOFError, ConnectionError):
                ended = False
        if not ended:
            return Line("FAIL", name, f"the connection did not end within {ANSWER:g} s after the answers: when recv "
                                      "returns b'' (end of file), stop reading and close")
        return Line("PASS", name)

    def killed_mid_request(self) -> Line:
        name = "a client killed mid-request"
        said = _peer_says(sys.executable, "partial", self.path)  # then it is killed, its request cut short
        if said != "sent":
            return Line("FAIL", name, f"the client could not send its request ({said or 'no word'})")
        self.settled()
        if problem := self.serving_problem():
            return Line("FAIL", name, f"after a client was killed in the middle of a request, {problem}: a request "
                                      "cut short (EOFError) ends that connection only")
        return Line("PASS", name)

    def peer_of_another_uid(self) -> Line:
        name = "a peer of another uid"
        if os.geteuid() != 0:
            return Line("SKIP", name, f"only root can start a peer as another user (you are uid {os.geteuid()})")
        python = _python_for("nobody")
        if python is None:
            return Line("SKIP", name, "user nobody cannot run any Python here")
        # let nobody reach the socket file, as an abstract name or a careless chmod would: then only
        # SO_PEERCRED stands between it and an answer
        modes = {p: os.stat(p).st_mode & 0o7777 for p in (workspace().dir, self.path)}
        try:
            os.chmod(workspace().dir, 0o711)
            os.chmod(self.path, 0o666)
            said = _peer_says(python, "ask", self.path, user="nobody", extra_groups=[],
                              group="nogroup" if _has_group("nogroup") else None)
        finally:
            for path, mode in modes.items():
                if os.path.lexists(path):
                    os.chmod(path, mode)
        if said.startswith("closed"):
            return Line("PASS", name)
        if said == "answered":
            return Line("FAIL", name, "a peer running as nobody got an answer: read its uid with SO_PEERCRED and close "
                                      "the connection of any other user")
        if said == "silent":
            return Line("FAIL", name, "a peer running as nobody was neither answered nor refused within 3 s: check "
                                      "SO_PEERCRED as soon as you accept, and close")
        return Line("SKIP", name, f"the peer running as nobody could not connect ({said or 'no word'})")

    def no_socket_left_open(self) -> Line:
        name = "no socket left open"
        for n in range(5):  # five more clients come and go, besides those of the attacks before
            with connect(self.path, ANSWER) as sock:
                sock.sendall(frame(b"bye %d" % n))
                answer_problem(sock, b"bye %d" % n)
        if self.settled():
            return Line("PASS", name)
        extra = len(self.server.sockets() - self.baseline)
        return Line("FAIL", name, f"with every client gone, the server still holds {extra} more sockets than when it "
                                  "started: close each connected socket when its client is done (`with conn:`)")

    def sigterm(self) -> Line:
        name = "SIGTERM with a request in flight"
        request = b"a request in flight"
        data = frame(request)
        with connect(self.path, ANSWER) as idle, connect(self.path, ANSWER) as busy:
            idle.sendall(frame(b"idle"))
            answer_problem(idle, b"idle")  # now it is an idle connection the server holds
            busy.sendall(data[:10])
            wait_until_read(busy, time.monotonic() + ANSWER)
            signalled = time.monotonic()
            self.stopped = self.server
            self.server.signal(signal.SIGTERM)
            # the rest of the request goes once the server has acted on SIGTERM (it no longer accepts),
            # so that a server which drops requests in flight cannot win the race by chance
            wait_until(lambda: not self.server.running() or not accepts(self.path), ANSWER)
            try:
                busy.sendall(data[10:])
                problem = answer_problem(busy, request)
            except OSError as error:
                problem = f"a closed connection ({type(error).__name__}) for the rest of the request"
            status = self.server.wait(max(0.0, signalled + ANSWER - time.monotonic()))
        problems = [f"the request in flight: {problem}"] if problem else []
        if status is None:
            problems.append(f"it was still running {ANSWER:g} s after SIGTERM (we killed it)")
            self.server.kill()
        elif status == -signal.SIGTERM:
            problems.append("SIGTERM killed it: it has no handler")
        elif status != 0:
            problems.append(f"it {self.server.how_it_ended()}")
        if problems:
            return Line("FAIL", name, "; ".join(problems) + ": on SIGTERM, shut down the listening socket (accept "
                                                            "wakes), finish the requests begun, exit 0")
        return Line("PASS", name, f"answered, exit status 0 after {self.server.ended - signalled:.2f} s")

    def nothing_left(self) -> Line:
        name = AFTER_EXIT
        if self.stopped is None:  # the SIGTERM attack did not run: stop a server of our own
            if why := self.ensure_server():
                return Line("FAIL", name, f"not run: {why}")
            self.serving_problem()  # once it has answered, its SIGTERM handler is in place
            self.server.signal(signal.SIGTERM)
            self.server.wait(ANSWER)
            self.stopped = self.server
        left = self.stopped.kill()
        problems = []
        if left:
            problems.append(f"{len(left)} process(es) it started still ran (we killed them): end and wait for every "
                            "process you start")
        if os.path.lexists(self.path):
            problems.append("its socket file was left behind: unlink it after closing the listening socket")
        return Line("FAIL", name, "; ".join(problems)) if problems else Line("PASS", name)

    # -- the client's attacks -------------------------------------------------------------------------

    def client_answer_problem(self, client: Program, server: TestServer, message: str) -> str:
        if client.wait(start_time()) is None:
            client.kill()
            return f"client.py did not finish within {start_time():g} s"
        if server.unframed:
            return "the request was not framed: send its length first (4 bytes, big-endian), then the bytes"
        printed = client.output().strip()
        expected = message.upper()
        if client.poll() != 0 or printed != expected:
            return (f"client.py {client.how_it_ended()}, having printed {printed[:60]!r} (expected {expected!r}; "
                    "the answer came in 3 pieces: read it with recv_exactly)")
        return ""

    def client_gets_answer(self) -> Line:
        name = "client.py gets its answer"
        remove(self.path)
        server = TestServer(self.path)
        try:
            message = "hello, gauntlet"
            problem = self.client_answer_problem(self.launch(self.client_file, self.path, message), server, message)
        finally:
            server.stop()
        return Line("FAIL", name, problem) if problem else Line("PASS", name)

    def client_retries(self) -> Line:
        name = "client.py retries while the server restarts"
        remove(self.path)
        make_stale(self.path)  # the server crashed: its socket file stays, connect says ECONNREFUSED
        message = "are you back?"
        client = self.launch(self.client_file, self.path, message)
        seen = wait_until(lambda: client.sleeping_between_tries() or not client.running(), start_time())
        if not client.running():
            return Line("FAIL", name, f"while the server was down, client.py {client.how_it_ended()}: retry "
                                      "ECONNREFUSED and ENOENT, waiting longer each time")
        if not seen:
            client.kill()
            return Line("FAIL", name, f"client.py never waited between tries in {start_time():g} s: wait "
                                      "min(cap, base * 2**k) "
                                      "seconds after the k-th failure, or it burns a CPU")
        remove(self.path)
        server = TestServer(self.path)
        try:
            problem = self.client_answer_problem(client, server, message)
        finally:
            server.stop()
        return Line("FAIL", name, problem) if problem else Line("PASS", name, f"answered after {client.seconds():.2f} s")


def _peer_says(python: str, mode: str, path: str, **popen_kwargs) -> str:
    """Run the peer (`peer.py`) in `mode` against `path`; the first line it prints ('' if none within start_time()),
    after which it is killed."""
    peer = subprocess.Popen([python, "-I", "-c", PEER_SOURCE, mode, path], cwd="/", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **popen_kwargs)
    try:
        ready, _, _ = select.select([peer.stdout], [], [], start_time())
        return peer.stdout.readline().strip() if ready else ""
    finally:
        peer.kill()
        peer.wait()
        peer.stdout.close()


def _has_group(name: str) -> bool:
    import grp
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _python_for(user: str) -> str | None:
    """A Python interpreter `user` can run: ours if its files are reachable, else the system's."""
    for candidate in (os.path.realpath(getattr(sys, "_base_executable", sys.executable)), "/usr/bin/python3"):
        try:
            probe = subprocess.run([candidate, "-I", "-c", "pass"], user=user, capture_output=True, cwd="/",
                                   timeout=start_time())
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return candidate
    return None


_METHODS = {
    "stale socket file at start-up": Gauntlet.stale_socket_file_at_startup,
    "socket file mode 0600": Gauntlet.socket_file_mode,
    "a live copy already serving": Gauntlet.live_copy,
    "3 requests on one connection": Gauntlet.requests_on_one_connection,
    f"{CLIENTS} concurrent clients": Gauntlet.concurrent_clients,
    "a client that sends one byte at a time": Gauntlet.one_byte_at_a_time,
    "a message split across many sends": Gauntlet.split_message,
    "an oversized length": Gauntlet.oversized_length,
    "a client that half-closes": Gauntlet.half_close,
    "a client killed mid-request": Gauntlet.killed_mid_request,
    "a peer of another uid": Gauntlet.peer_of_another_uid,
    "no socket left open": Gauntlet.no_socket_left_open,
    "SIGTERM with a request in flight": Gauntlet.sigterm,
    "nothing left after it exited": Gauntlet.nothing_left,
    "client.py gets its answer": Gauntlet.client_gets_answer,
    "client.py retries while the server restarts": Gauntlet.client_retries,
}


def _chosen(only, skip) -> list[str]:
    for name in [*(only or ()), *skip]:
        if name not in _METHODS:
            raise ValueError(f"{name!r} is not an attack; the attacks are: {', '.join(ATTACKS)}")
    return [name for name in ATTACKS if (only is None or name in only) and name not in skip]


def gauntlet(server: str, client: str, *, only=None, skip=()) -> Report:
    """Run the attacks (all, or `only` those named, minus `skip`) on server.py and client.py; one line each."""
    report = Report()
    names = _chosen(only, skip)
    for file in (server, client):
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{file}: no such file (paths are relative to {os.getcwd()})")
    not_started = {file for file in (server, client) if _stub_main(file)}
    for file in [f for f in (server, client) if f in not_started]:
        report.notes.append(f"{os.path.basename(file)}: not started yet (its main() is still `...`): fill in the "
                            "TODOs, then run the gauntlet again")
    attack = Gauntlet(os.path.abspath(server), os.path.abspath(client))
    try:
        for name in names:
            is_server_attack = name in dict(SERVER_ATTACKS)
            if (server if is_server_attack else client) in not_started:
                continue
            if is_server_attack and name not in (FRESH_START, AFTER_EXIT) and (why := attack.ensure_server()):
                report.lines.append(Line("FAIL", name, f"not run: {why}"))
                continue
            try:
                report.lines.append(_METHODS[name](attack))
            except OSError as error:
                code = errno.errorcode.get(error.errno, "") if error.errno else type(error).__name__
                report.lines.append(Line("FAIL", name, f"{code} {error.strerror or error}".strip()))
    finally:
        attack.clean_up()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Attack a capstone server.py and client.py (09-capstone).")
    parser.add_argument("server")
    parser.add_argument("client")
    parser.add_argument("--only", action="append", metavar="ATTACK", help="run only this attack (repeatable)")
    parser.add_argument("--skip", action="append", default=[], metavar="ATTACK")
    args = parser.parse_args(argv)
    report = gauntlet(args.server, args.client, only=args.only, skip=args.skip)
    print(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
