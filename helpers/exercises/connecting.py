"""Checkers for the connect exercises: backoff delays with jitter, and a client that retries until a
late server comes up. Introduced in 05-connect-and-retries.

`connect_with_retry` is run three times, each time in a fresh child process (`run_student`):

    a server that comes up late   it must connect soon after the server listens, and return the socket
    a server that never comes     it must give up after `attempts` tries, having waited the right delays
                                  (their sum is measured), and raise the last error
    a path that cannot work       ENOTDIR: waiting cannot cure it, so it must be raised at once
"""

from __future__ import annotations

import numbers
import os
import socket
import threading
import time
import uuid

from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome, run_student
from helpers.socket_dir import workspace

__all__ = ["check_backoff_delays", "check_connect_with_retry"]

SLACK = 0.12  # seconds of scheduling and interpreter noise we forgive in a measured wait


def _numbers(value) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)


@checker("Exercise: backoff_delays(n, base, cap)")
def check_backoff_delays(report: Report, backoff_delays) -> None:
    n, base, cap = 40, 0.1, 1.0
    runs = [run_student(backoff_delays, n, base, cap) for _ in range(2)]
    for outcome in runs:
        if not outcome.ok:
            report.check(False, "", f"backoff_delays({n}, {base}, {cap}) {outcome.problem()}")
            return
    first, second = runs[0].value, runs[1].value
    if not (_numbers(first) and len(first) == n):
        report.check(False, "", f"backoff_delays({n}, {base}, {cap}) returned {first!r:.80}: return a list of "
                                f"{n} numbers (seconds)")
        return
    report.check(True, f"returned a list of {n} delays", "")
    bounds = [min(cap, base * 2 ** k) for k in range(n)]
    over = next(((k, d) for k, d in enumerate(first) if not 0 <= d <= bounds[k] + 1e-9), None)
    if over is None:
        report.check(True, "every delay k lies between 0 and min(cap, base * 2**k)", "")
    else:
        k, d = over
        why = ("a delay is never negative" if d < 0 else
               f"that is above the cap ({cap}): no delay may exceed it" if d > cap else
               f"the bound there is base * 2**{k} = {base * 2 ** k:g}")
        report.check(False, "", f"delay {k} is {d:.3f}: {why}")
    capped = first[4:]  # from k = 4 on, every bound is the cap
    random_enough = report.check(len(set(capped)) > 1, "the delays are random (jitter)",
                                 f"all delays from k = 4 on are {capped[0]!r}: add jitter, draw each one at random "
                                 "between 0 and its bound (random.uniform), or every client waits as long as every other")
    if over is None and random_enough:
        low, high = min(capped), max(capped)
        report.check(low < 0.4 * cap and high > 0.6 * cap, "they use the whole range from 0 up to the bound (full jitter)",
                     f"with the bound at the cap ({cap}) your delays stay between {low:.2f} and {high:.2f}: full "
                     "jitter draws from the whole range, 0 up to the bound")
    report.check(first != second, "two calls give different delays",
                 "two calls returned the same list: draw fresh random numbers (no fixed seed)")


def _path(stem: str) -> str:
    return workspace().path(f"{stem}-{uuid.uuid4().hex[:6]}.sock")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _returned_connected(outcome: Outcome, path: str) -> bool:
    """A socket cannot travel back from the child: it comes back as its repr, e.g. `<socket.socket ... raddr=P>`."""
    return isinstance(outcome.value, str) and outcome.value.startswith("<socket.socket") and f"raddr={path}" in outcome.value


def _late_server(report: Report, connect_with_retry) -> None:
    """The server starts listening `up_after` seconds in; the client should be connected soon after."""
    path, up_after = _path("late"), 0.5
    attempts, base, cap = 12, 0.05, 0.2
    events: dict[str, float] = {}
    stop = threading.Event()

    def server():
        if stop.wait(up_after):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen()
            events["up"] = time.monotonic()
            listener.settimeout(0.05)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                events.setdefault("accepted", time.monotonic())
                conn.close()

    thread = threading.Thread(target=server, daemon=True, name="exercise-late-server")
    thread.start()
    try:
        outcome = run_student(connect_with_retry, path, attempts, base, cap, timeout=4.0)
    finally:
        stop.set()
        thread.join(2.0)
        _remove(path)
    call = f"connect_with_retry(path, {attempts}, {base}, {cap}) with a server that comes up after {up_after} s"
    if not outcome.ok:
        hint = ("; keep retrying after FileNotFoundError and ConnectionRefusedError: the server has not bound or is "
                "not listening yet" if isinstance(outcome.error, FileNotFoundError | ConnectionRefusedError) else "")
        report.check(False, "", f"{call} {outcome.problem()}{hint}")
        return
    if "accepted" not in events:
        report.check(False, "", f"{call}: the server never saw a connection: keep retrying after FileNotFoundError "
                                "(the socket file does not exist yet)")
        return
    waited = events["accepted"] - events["up"]
    report.check(waited <= cap + SLACK, f"{call}: connected {waited:.2f} s after the server came up",
                 f"{call}: connected only {waited:.2f} s after the server came up; with delays capped at {cap} s it "
                 "should be at most about that")
    report.check(_returned_connected(outcome, path), "it returned the connected socket",
                 f"it returned {outcome.value!r:.80}: return the connected socket")


def _never_up(report: Report, connect_with_retry) -> None:
    """A stale socket file (ECONNREFUSED) that never starts listening: measure the waits, expect the last error."""
    path = _path("stale")
    attempts, base, cap = 4, 0.1, 0.2
    delays = [min(cap, base * 2 ** k) for k in range(attempts - 1)]
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stale.bind(path)  # bound, never listening: connect gets ECONNREFUSED every time
        outcome = run_student(connect_with_retry, path, attempts, base, cap, timeout=2.5)
    finally:
        stale.close()
        _remove(path)
    call = f"connect_with_retry(path, {attempts}, {base}, {cap}) with nobody listening"
    if outcome.timed_out:
        report.check(False, "", f"{call} {outcome.problem()} Give up after `attempts` attempts")
        return
    expected = sum(delays)
    shown = " + ".join(f"{d:g}" for d in delays)
    report.check(abs(outcome.seconds - expected) <= SLACK,
                 f"{call}: gave up after {outcome.seconds:.2f} s, as the delays {shown} s add up",
                 f"{call}: gave up after {outcome.seconds:.2f} s; {attempts} attempts with delays {shown} s take "
                 f"about {expected:.2f} s: "
                 + ("wait between attempts, doubling the delay from base" if outcome.seconds < expected else
                    "cap each delay at `cap`, and do not wait after the last attempt"))
    error = outcome.error
    report.check(isinstance(error, ConnectionRefusedError), f"{call}: raised the last error, {type(error).__name__}",
                 f"{call}: " + (f"returned {outcome.value!r:.60} instead of raising: raise the last error "
                                "(ConnectionRefusedError here), so the caller knows why it failed" if error is None else
                                f"raised {type(error).__name__}: {error}; raise the last error itself "
                                "(ConnectionRefusedError here)"))


def _cannot_work(report: Report, connect_with_retry) -> None:
    """A path through a regular file: ENOTDIR can never be cured by waiting."""
    not_a_dir = workspace().path(f"file-{uuid.uuid4().hex[:6]}")
    with open(not_a_dir, "w"):
        pass
    path = os.path.join(not_a_dir, "server.sock")
    try:
        outcome = run_student(connect_with_retry, path, 4, 0.1, 0.2, timeout=2.5)
    finally:
        os.unlink(not_a_dir)
    call = "connect_with_retry(path, 4, 0.1, 0.2) where a part of the path is a regular file"
    right_error = isinstance(outcome.error, NotADirectoryError)
    if right_error and outcome.seconds < 0.08:
        report.check(True, f"{call}: raised NotADirectoryError at once, without retrying", "")
    elif right_error:
        report.check(False, "", f"{call}: raised NotADirectoryError only after {outcome.seconds:.2f} s of retrying: "
                                "waiting cannot fix a wrong path, so retry only FileNotFoundError and "
                                "ConnectionRefusedError and raise anything else at once")
    else:
        report.check(False, "", f"{call}: " + (outcome.problem() or f"returned {outcome.value!r:.60}")
                                + "; expected NotADirectoryError (ENOTDIR), raised at once")


@checker("Exercise: connect_with_retry(path, attempts, base, cap)")
def check_connect_with_retry(report: Report, connect_with_retry) -> None:
    _late_server(report, connect_with_retry)
    _never_up(report, connect_with_retry)
    _cannot_work(report, connect_with_retry)
