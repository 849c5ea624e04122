"""The checker of the framing exercise of 07-datagrams: recv_exactly, send_message, recv_message.

The three functions run together in a fresh process (`framing_run`), on one end of a socket pair;
the checker holds the other end and plays the peer, one scenario per process:

    checker (the peer)                        child: the student's functions
    send b"012" ... b"3456789" + b"NEXT"  ->  recv_exactly(sock, 10)          then: what is left?
    send 3 bytes, close                   ->  recv_exactly(sock, 10)          EOFError?
    read everything                       <-  send_message(sock, 1 MB)        on a socket with a timeout
    ...

A function that hangs is killed at the timeout; one that raises is reported. The capstone's
server.py and client.py (09-capstone) are built on these three functions.
"""

from __future__ import annotations

import inspect
import itertools
import json
import socket
import struct
import subprocess
import textwrap
import time

from helpers import processes
from helpers.capstone.protocol import MAX_MESSAGE, frame, wait_until_read
from helpers.exercises.kit import limit
from helpers.exercises.report import Report
from helpers.exercises.runner import is_stub

__all__ = ["check_framing"]

SCENARIO = 2.0  # seconds the longest exchange needs; a run may take the allowance on top (kit.limit)

BIG = 1 << 20  # more than a socket buffer holds: one send on a socket with a timeout takes only part


ROLES = ("recv_exactly", "send_message", "recv_message")


def _run(student: dict, calls: list, play, timeout: float | None = None) -> dict:
    """Run `calls` in a child on one end of a socket pair while `play(our_end)` plays the peer.

    `student` holds the sources of the three functions and their names ({"sources", "names"}).

    Returns {"results": [...], "left": bytes, "hung": bool, "peer": what play returned}.
    """
    ours, theirs = socket.socketpair()
    encoded = [[name, *({"bytes": a.hex()} if isinstance(a, bytes) else a for a in args)] for name, *args in calls]
    job = json.dumps({**student, "timeout": timeout, "calls": encoded}).encode()
    with theirs:
        child = processes.start("capstone.framing_run", str(theirs.fileno()), pass_fds=(theirs.fileno(),), skip_site=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        child.stdin.write(job)  # the child reads it all before it calls anything
        child.stdin.close()
        child.stdin = None  # so that communicate() below only reads
        with ours:
            try:
                peer = play(ours)
            except OSError:  # the child is gone already (it raised, or returned early): its results say why
                peer = b""
            try:
                output, _ = child.communicate(timeout=limit(SCENARIO))
            except subprocess.TimeoutExpired:
                return {"results": [], "left": b"", "hung": True, "peer": peer}
    finally:
        processes.stop(child, timeout=0.5)
    report = json.loads(output or b'{"results": [], "left": ""}')
    return {"results": report["results"], "left": bytes.fromhex(report["left"]), "hung": False, "peer": peer}


def _value(result: dict):
    value = result.get("value")
    return bytes.fromhex(value["bytes"]) if isinstance(value, dict) else value


def _said(result: dict | None) -> str:
    """What one call did, in words: 'returned b'abc'' or 'raised ValueError: ...'."""
    if result is None:
        return "was not called (an earlier call raised)"
    if "error" in result:
        return f"raised {result['error'][0]}: {result['error'][1]}"
    value = _value(result)
    return f"returned {value!r}" if not isinstance(value, bytes) or len(value) <= 40 else \
        f"returned {len(value)} bytes"


def _pieces(data: bytes, cuts: list[int]):
    """A peer that sends `data` cut at `cuts`, each piece once the child has read the last."""
    def play(sock):
        deadline = time.monotonic() + limit(SCENARIO)
        bounds = [0, *cuts, len(data)]
        for a, b in itertools.pairwise(bounds):
            sock.sendall(data[a:b])
            wait_until_read(sock, deadline)
    return play


def _then_close(data: bytes):
    def play(sock):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    return play


def _read_all(sock) -> bytes:
    sock.settimeout(limit(SCENARIO))
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    return data


def _results(run: dict, count: int) -> list[dict | None]:
    return [*run["results"], *[None] * count][:count]


def _raised(result: dict | None, name: str) -> bool:
    return bool(result) and result.get("error", [""])[0] == name


class _Hung(Exception):
    """A run was stopped at its timeout: the checks after it would wait out theirs too."""


def _stop_if_hung(report: Report, run: dict, what: str) -> None:
    if run["hung"]:
        report.check(False, "", f"{what} did not return within {limit(SCENARIO):g} s (it was stopped): does it "
                                "wait for bytes that never come? recv returns b'' at end of file")
        raise _Hung


def check_framing(recv_exactly, send_message, recv_message) -> Report:
    """Run the three framing functions against a real peer, and say what was right and what was not."""
    report = Report("Exercise 3: framed messages (recv_exactly, send_message, recv_message)")
    functions = (recv_exactly, send_message, recv_message)
    if not all(callable(f) for f in functions):
        report.check(False, "", "pass the three functions themselves: check_framing(recv_exactly, send_message, "
                                "recv_message)")
        return report
    if any(is_stub(f) for f in functions):
        report.not_started = True
        return report
    sources = {"sources": [textwrap.dedent(inspect.getsource(f)) for f in functions],
               "names": {role: f.__name__ for role, f in zip(ROLES, functions, strict=True)}}
    try:
        _check_recv_exactly(report, sources)
        _check_send_message(report, sources)
        _check_recv_message(report, sources)
    except _Hung:  # said in the report; each further check would cost the student another timeout
        pass
    return report


def _check_recv_exactly(report: Report, sources: dict) -> None:
    run = _run(sources, [["recv_exactly", 10]], _pieces(b"0123456789NEXT", [3, 4]))
    _stop_if_hung(report, run, "recv_exactly(sock, 10), with the bytes coming in 3 pieces,")
    (result,) = _results(run, 1)
    report.check(_value(result) == b"0123456789",
                 "recv_exactly(sock, 10) returned the 10 bytes that came in 3 pieces",
                 f"recv_exactly(sock, 10) {_said(result)}, expected b'0123456789' (sent in 3 pieces: keep "
                 "calling recv until you have n bytes)")
    report.check(run["left"] == b"NEXT", "and left the next bytes in the socket",
                 f"it took bytes beyond the 10 asked for (left {run['left']!r} of b'NEXT'): ask recv for at most "
                 "n - len(data) bytes")
    _check_cut_short(report, sources, ["recv_exactly", 10], b"012", "the peer closed after 3 of 10 bytes")


def _check_cut_short(report: Report, sources: dict, call: list, sent: bytes, story: str) -> None:
    """The peer sends `sent` and closes: the call must raise EOFError, not return what it got."""
    run = _run(sources, [call], _then_close(sent))
    _stop_if_hung(report, run, f"{call[0]}, when {story},")
    (result,) = _results(run, 1)
    report.check(_raised(result, "EOFError"), f"{story}: {call[0]} raised EOFError",
                 f"{story}: {call[0]} {_said(result)}, expected EOFError (raise it when recv returns b'' "
                 "before all the bytes have come: a message cut short is an error, not a short message)")


def _check_send_message(report: Report, sources: dict) -> None:
    message = bytes(range(256)) * (BIG // 256)
    run = _run(sources, [["send_message", message], ["send_message", b""]], _read_all, timeout=limit(SCENARIO))
    _stop_if_hung(report, run, "send_message")
    got, wanted = run["peer"], frame(message) + frame(b"")
    if got == wanted:
        report.check(True, f"send_message sent a message of {len(message):,} bytes and an empty one, each as its "
                           "4-byte big-endian length, then the bytes", "")
    elif got[:4] != struct.pack("!I", len(message)):
        report.check(False, "", f"the first 4 bytes were {got[:4]!r}, expected the length {len(message)} as 4 bytes, "
                                "big-endian: struct.pack('!I', len(message))")
    elif len(got) < len(wanted) - 4 and any("error" not in r for r in run["results"]):
        report.check(False, "", f"only {len(got):,} of {len(wanted):,} bytes arrived: on a socket with a timeout, "
                                "send may take fewer bytes than it was given; sendall sends them all")
    else:
        results = _results(run, 2)
        report.check(False, "", f"the peer received {len(got):,} bytes, expected {len(wanted):,} "
                                f"(send_message {_said(results[0])}, then {_said(results[1])})")


def _check_recv_message(report: Report, sources: dict) -> None:
    messages = [b"a", b"twenty bytes exactly", b"", b"ccc"]
    run = _run(sources, [["recv_message"]] * 5, _then_close(b"".join(frame(m) for m in messages)))
    _stop_if_hung(report, run, "recv_message, with four messages then end of file,")
    got = [_value(r) if r and "value" in r else r for r in _results(run, 5)]
    report.check(got[:4] == messages, "recv_message returned four messages sent in one write, one per call "
                                      "(the empty one too)",
                 f"four messages {messages} sent in one write: recv_message returned "
                 f"{', '.join(_said(r) for r in _results(run, 4))}")
    report.check(got[4] is None and got[:4] == messages, "then None: the peer closed between two messages",
                 f"after the fourth message the peer closed: recv_message {_said(_results(run, 5)[4])}, "
                 "expected None (end of file where a message would begin)")
    data = frame(b"hello, in pieces")
    run = _run(sources, [["recv_message"]], _pieces(data, [1, 2, 4, 9]))
    _stop_if_hung(report, run, "recv_message, with the length itself in pieces,")
    (result,) = _results(run, 1)
    report.check(_value(result) == b"hello, in pieces", "a message whose length came in 3 pieces came back whole",
                 f"a message whose 4-byte length came in 3 pieces: recv_message {_said(result)}, expected "
                 "b'hello, in pieces': read the length with recv_exactly too")
    _check_cut_short(report, sources, ["recv_message"], frame(b"twenty bytes exactly")[:9],
                     "the peer closed after 5 of the 20 bytes of a message")
    run = _run(sources, [["recv_message"]], lambda sock: sock.sendall(frame(b"", length=MAX_MESSAGE + 1)))
    if run["hung"]:
        report.check(False, "", f"a length of {MAX_MESSAGE + 1} was announced (over the limit), and recv_message waited "
                                "for the body: compare the length with `limit` before reading it")
    else:
        (result,) = _results(run, 1)
        report.check(_raised(result, "ValueError"),
                     f"a length of {MAX_MESSAGE + 1} (over the limit): it raised ValueError without reading the body",
                     f"a length of {MAX_MESSAGE + 1} was announced, over the limit of {MAX_MESSAGE}: recv_message "
                     f"{_said(result)}, expected ValueError")
