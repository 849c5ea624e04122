"""Checkers for the connect exercises: backoff delays with jitter, and a client that retries until a
late server comes up. Introduced in 05-connect-and-retries.

`backoff_delays` is called a few hundred times (in one run) and judged per k: every delay drawn
afresh, uniformly from 0 to its bound. `connect_with_retry` is run three times, each in a fresh process:

    a server that comes up late   it must connect soon after the server listens, and return the socket
    a server that never comes     no file at first (ENOENT), then a stale one (ECONNREFUSED): it must give
                                  up after `attempts` tries, having waited the right delays (their sum
                                  is measured; the parameters tell exponential from constant and
                                  linear), without spinning, and raise the last error
    a path that cannot work       ENOTDIR: waiting cannot cure it, so it must be raised at once
"""

from __future__ import annotations

import numbers
import os
import socket
import threading
import time

from helpers.exercises.kit import STARTUP, busy, limit, ran, scratch_path, shown, spin_message, started
from helpers.exercises.plain import type_name
from helpers.exercises.report import Report, checker
from helpers.exercises.runner import Outcome
from helpers.observe import pausing, wait_until

__all__ = ["check_backoff_delays", "check_connect_with_retry"]
LESSON = "05"  # the lesson whose exercises these are: the progress view in 00 counts them there

SLACK = 0.12  # seconds of scheduling and interpreter noise we forgive in a measured wait


def _numbers(value) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)


def _delays(report: Report, outcome: Outcome, call: str, n: int, calls: int) -> list[list[float]] | None:
    """The lists of delays of `calls` calls, or None after saying why there are none."""
    if not ran(report, outcome, call):
        return None
    first = outcome.value[0] if isinstance(outcome.value, list) and outcome.value else None
    bad = next((v for v in outcome.value if not (_numbers(v) and len(v) == n)), None) \
        if isinstance(outcome.value, list) else outcome.value
    if bad is not None or len(outcome.value) != calls:
        report.fail(f"{call} returned {shown(bad if bad is not None else first, 80)}: return a list of {n} numbers "
                    "(seconds)")
        return None
    return [list(v) for v in outcome.value]


def _per_k(report: Report, runs: list[list[float]], bounds: list[float], cap: float | None) -> bool:
    """Each delay k must be drawn afresh, uniformly from 0 up to its bound: check it over many calls."""
    for k, bound in enumerate(bounds):
        column = [run[k] for run in runs]
        low, high, mean = min(column), max(column), sum(column) / len(column)
        middle = sum(1 for d in column if 0.25 * bound <= d <= 0.75 * bound) / len(column)
        where = f"delay {k} (bound min(cap, base * 2**{k}) = {bound:g})"
        if low < 0 or high > bound * (1 + 1e-9):
            why = ("a delay is never negative" if low < 0 else
                   f"that is above the cap ({cap}): no delay may exceed it" if cap is not None and high > cap else
                   "the exponent is k, starting at 0: the first bound is base itself")
            return report.fail(f"{where} reached {low if low < 0 else high:.3f}: {why}")
        if len(set(column)) == 1:
            return report.fail(f"{where} was {column[0]:g} in every call: add jitter to every delay, draw each one at "
                               "random between 0 and its bound (random.uniform), or every client waits in lock-step")
        if high < 0.85 * bound:
            return report.fail(f"{where} never went above {high:.3g} in {len(runs)} calls: the bound doubles each "
                               "time (base * 2**k), it does not grow by base")
        if not (0.35 <= mean / bound <= 0.65 and 0.3 <= middle <= 0.7):
            return report.fail(f"{where} averaged {mean:.3g} over {len(runs)} calls, {middle:.0%} of them in the middle "
                               "half: full jitter draws uniformly from the whole range, 0 up to the bound")
    return True


@checker("Exercise: backoff_delays(n, base, cap)")
def check_backoff_delays(report: Report, backoff_delays) -> None:
    n, base, cap, calls = 8, report.rng.choice([0.5, 1.0, 2.0]), 10_000.0, 300
    call = f"backoff_delays({n}, {base}, {cap:g})"
    runs = _delays(report, report.run(backoff_delays, n, base, cap, timeout=limit(), repeat=calls), call, n, calls)
    if runs is None:
        return
    report.ok(f"returned a list of {n} delays")
    bounds = [base * 2 ** k for k in range(n)]
    exact = next((k for k, bound in enumerate(bounds) if all(run[k] == bound for run in runs)), None)
    if exact is not None:
        report.fail(f"delay {exact} was its bound {bounds[exact]:g} in every call: add jitter to every delay, draw "
                    "each one at random between 0 and its bound (random.uniform), or every client waits in lock-step")
        return
    if len({tuple(r) for r in runs}) < calls // 2:
        report.fail(f"{calls} calls returned only {len({tuple(r) for r in runs})} different lists: draw fresh random "
                    "numbers (no fixed seed)")
        return
    if not _per_k(report, runs, bounds, None):
        return
    report.ok(f"over {calls} calls every delay k spread from 0 up to base * 2**k (full jitter)")
    n, base, cap, calls = 12, 0.1, report.rng.choice([0.8, 1.0, 1.5]), 200
    call = f"backoff_delays({n}, {base}, {cap})"
    runs = _delays(report, report.run(backoff_delays, n, base, cap, timeout=limit(), repeat=calls), call, n, calls)
    if runs is not None and _per_k(report, runs, [min(cap, base * 2 ** k) for k in range(n)], cap):
        report.ok(f"with cap {cap}: no delay above the cap, and the capped ones spread from 0 to the cap")


def _returned_connected(outcome: Outcome, path: str) -> bool:
    """A socket cannot travel back from the child: it comes back shown, e.g. `<socket.socket ... raddr=P>`."""
    return type_name(outcome.value) == "socket" and f"raddr={path}" in repr(outcome.value)


def _late_server(report: Report, connect_with_retry, path: str) -> None:
    """The server starts listening `up_after` seconds in; the client should be connected soon after."""
    up_after = round(report.rng.uniform(0.4, 0.8), 2)
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
    run = report.background(connect_with_retry, path, attempts, base, cap, timeout=limit(up_after + 1.0))
    try:
        started(run)  # the server's clock starts with the student's process
        thread.start()
        outcome = run.join()
    finally:
        stop.set()
        if thread.ident:
            thread.join(2.0)
    call = f"connect_with_retry(path, {attempts}, {base}, {cap}) with a server that comes up after {up_after} s"
    if not outcome.ok:
        hint = ("; keep retrying after FileNotFoundError and ConnectionRefusedError: the server has not bound or is "
                "not listening yet" if isinstance(outcome.error, FileNotFoundError | ConnectionRefusedError) else "")
        report.fail(f"{call} {outcome.problem()}{hint}")
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


def _after_first_attempt(run) -> None:
    """Return once the student's function has made its first attempt: its process then sleeps before
    the next one (or the run is over)."""
    pid = run.student_pid()
    wait_until(lambda: run.done() or (pid is not None and pausing(pid)), STARTUP)


def _never_up(report: Report, connect_with_retry, path: str) -> None:
    """No file at first (ENOENT), then a stale socket file (ECONNREFUSED): measure the waits, expect the last error."""
    base = report.rng.choice([0.04, 0.05, 0.06])
    attempts, cap = 6, 8 * base  # base, 2, 4, 8, 8 (capped) times base: 23 (no cap: 31, constant: 40, linear: 15)
    delays = [min(cap, base * 2 ** k) for k in range(attempts - 1)]
    # room for a slower schedule (constant, no cap) to finish, so that it is named, not "did not return"
    run = report.background(connect_with_retry, path, attempts, base, cap, timeout=limit(2 * sum(delays)))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        started(run)
        _after_first_attempt(run)
        stale.bind(path)  # ENOENT first, then ECONNREFUSED
        outcome = run.join()
    call = f"connect_with_retry(path, {attempts}, {base}, {cap:g}) with nobody listening"
    if outcome.timed_out or outcome.ended:
        report.fail(f"{call}: your function {outcome.problem()} Give up after `attempts` attempts")
        return
    expected = sum(delays)
    shown_delays = " + ".join(f"{d:g}" for d in delays)
    # A loaded machine oversleeps each delay a little; the smallest wrong schedule (a wait after the
    # last attempt, no cap) is 8 * base = 0.32 s late or more.
    report.check(-SLACK <= outcome.seconds - expected <= SLACK + 0.1,
                 f"{call}: gave up after {outcome.seconds:.2f} s, as the delays {shown_delays} s add up",
                 f"{call}: gave up after {outcome.seconds:.2f} s; {attempts} attempts with delays {shown_delays} s "
                 f"take about {expected:.2f} s: "
                 + ("wait between attempts, doubling the delay from base each time" if outcome.seconds < expected else
                    "double the delay from base each time, cap it at `cap`, and do not wait after the last attempt"))
    report.check(not busy(outcome), "it slept between attempts without spinning", spin_message(outcome))
    error = outcome.error
    report.check(isinstance(error, ConnectionRefusedError), f"{call}: raised the last error, {type(error).__name__}",
                 f"{call}: " + (f"returned {shown(outcome.value)} instead of raising: raise the last error "
                                "(ConnectionRefusedError here), so the caller knows why it failed" if error is None else
                                f"raised {type(error).__name__}: {error}; the path first did not exist "
                                "(FileNotFoundError), then nobody listened: raise the last error "
                                "(ConnectionRefusedError here)"))


def _cannot_work(report: Report, connect_with_retry) -> None:
    """A path through a regular file: ENOTDIR can never be cured by waiting."""
    with scratch_path("srv", suffix="") as not_a_dir:
        with open(not_a_dir, "w"):
            pass
        path = os.path.join(not_a_dir, "server.sock")
        outcome = report.run(connect_with_retry, path, 4, 0.1, 0.2, timeout=limit(0.4))
    call = "connect_with_retry(path, 4, 0.1, 0.2) where a part of the path is a regular file"
    right_error = isinstance(outcome.error, NotADirectoryError)
    if right_error and outcome.seconds < 0.08:
        report.ok(f"{call}: raised NotADirectoryError at once, without retrying")
    elif right_error:
        report.fail(f"{call}: raised NotADirectoryError only after {outcome.seconds:.2f} s of retrying: "
                    "waiting cannot fix a wrong path, so retry only FileNotFoundError and "
                    "ConnectionRefusedError and raise anything else at once")
    else:
        report.fail(f"{call}: " + (outcome.problem() or f"returned {shown(outcome.value)}")
                    + "; expected NotADirectoryError (ENOTDIR), raised at once")


@checker("Exercise: connect_with_retry(path, attempts, base, cap)")
def check_connect_with_retry(report: Report, connect_with_retry) -> None:
    with scratch_path("srv") as path:
        _late_server(report, connect_with_retry, path)
    with scratch_path("srv") as path:
        _never_up(report, connect_with_retry, path)
    _cannot_work(report, connect_with_retry)
