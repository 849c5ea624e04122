"""The checkers of 05-connect-and-retries pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import random
import socket
import time

import pytest
from exercise_support import assert_caught, load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_backoff_delays, check_connect_with_retry

solutions = load_solutions("05_connect_and_retries.py")


text = repr


# -- backoff_delays -----------------------------------------------------------------------------

def backoff_delays_stub(n, base, cap):
    """Delays."""
    ...  # your code here


def backoff_delays_without_jitter(n, base, cap):
    return [min(cap, base * 2 ** k) for k in range(n)]


def backoff_delays_without_cap(n, base, cap):
    return [random.uniform(0, base * 2 ** k) for k in range(n)]


def backoff_delays_seeded(n, base, cap):
    rng = random.Random(42)  # the same "random" delays for every client: no better than none
    return [rng.uniform(0, min(cap, base * 2 ** k)) for k in range(n)]


def backoff_delays_equal_jitter(n, base, cap):
    return [min(cap, base * 2 ** k) * random.uniform(0.5, 1) for k in range(n)]


def backoff_delays_returns_a_generator(n, base, cap):
    return (random.uniform(0, min(cap, base * 2 ** k)) for k in range(n))


def test_backoff_delays_reference_passes():
    report = check_backoff_delays(solutions.backoff_delays)
    assert report.passed, text(report)


def test_backoff_delays_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_backoff_delays(backoff_delays_stub))


MISTAKES_BACKOFF_DELAYS = [
    pytest.param(backoff_delays_without_jitter, ["add jitter"], id="backoff_delays_without_jitter_is_caught"),
    pytest.param(backoff_delays_without_cap, ["above the cap"], id="backoff_delays_without_cap_is_caught"),
    pytest.param(backoff_delays_seeded, [
        "no fixed seed",
    ], id="backoff_delays_with_a_fixed_seed_is_caught"),
    pytest.param(backoff_delays_equal_jitter, ["whole range"], id="backoff_delays_with_half_the_range_is_caught"),
    pytest.param(backoff_delays_returns_a_generator, [
        "return a list of 8 numbers",
    ], id="backoff_delays_wrong_type_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_BACKOFF_DELAYS)
def test_backoff_delays_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_backoff_delays(solution), phrases)


# -- connect_with_retry -------------------------------------------------------------------------

def connect_with_retry_stub(path, attempts, base, cap):
    """Connect, retrying."""
    ...  # your code here


def connect_without_backoff(path, attempts, base, cap):
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if k == attempts - 1:
                raise
            time.sleep(base)  # the same short delay every time


def connect_without_cap(path, attempts, base, cap):
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if k == attempts - 1:
                raise
            time.sleep(base * 2 ** k)  # grows without bound


def connect_forever(path, attempts, base, cap):
    delay = base
    while True:  # never gives up
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
        time.sleep(delay)
        delay = min(cap, delay * 2)


def connect_swallowing_the_error(path, attempts, base, cap):
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
        if k < attempts - 1:
            time.sleep(min(cap, base * 2 ** k))
    return None  # the caller never learns why


def connect_retrying_everything(path, attempts, base, cap):
    for k in range(attempts):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:  # also retries errors that waiting cannot cure
            s.close()
            if k == attempts - 1:
                raise
        time.sleep(min(cap, base * 2 ** k))


def connect_once(path, attempts, base, cap):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def test_connect_with_retry_reference_passes():
    report = check_connect_with_retry(solutions.connect_with_retry)
    assert report.passed, text(report)
    assert "after the server came up" in text(report)


def test_connect_with_retry_stub_is_not_solved_yet():
    assert "Not solved yet" in text(check_connect_with_retry(connect_with_retry_stub))


MISTAKES_CONNECT_WITH_RETRY = [
    pytest.param(connect_without_backoff, ["doubling the delay from base"], id="connect_without_backoff_is_caught"),
    pytest.param(connect_without_cap, ["cap it at `cap`"], id="connect_without_cap_is_caught"),
    pytest.param(connect_forever, ["did not return", "Give up after `attempts` attempts"], id="connect_forever_is_caught"),
    pytest.param(connect_swallowing_the_error, [
        "instead of raising: raise the last error",
    ], id="connect_swallowing_the_last_error_is_caught"),
    pytest.param(connect_retrying_everything, [
        "only after",
        "waiting cannot fix a wrong path",
    ], id="connect_retrying_a_hopeless_error_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_CONNECT_WITH_RETRY)
def test_connect_with_retry_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_connect_with_retry(solution), phrases)


def test_connect_without_any_retry_is_caught():
    report = check_connect_with_retry(connect_once)
    assert not report.passed
    assert "raised FileNotFoundError" in text(report) and "keep retrying after FileNotFoundError" in text(report)
