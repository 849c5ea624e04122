"""The checkers of 04-accept pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from exercise_support import assert_caught, load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_serve_clients, check_serve_until_stopped

solutions = load_solutions("04_accept.py")


text = repr


# -- serve_clients ------------------------------------------------------------------------------

def serve_clients_stub(path, n):
    """Serve n clients."""
    ...  # your code here


def serve_clients_accepts_once(path, n):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    conn, _ = server.accept()  # one accept: only the first client is ever served
    conn.sendall(conn.recv(1024).upper())
    conn.close()
    server.close()
    os.unlink(path)
    return n


def serve_clients_keeps_connections(path, n):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    served = []
    for _ in range(n):
        conn, _ = server.accept()
        conn.sendall(conn.recv(1024).upper())
        served.append(conn)  # never closed: the client waits for an end of stream that does not come
    for conn in served:
        conn.close()
    server.close()
    os.unlink(path)
    return len(served)


def serve_clients_leaves_the_file(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())
    return n


def serve_clients_replies_on_the_listening_socket(path, n):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        for _ in range(n):
            conn, _ = server.accept()
            server.sendall(conn.recv(1024).upper())  # ENOTCONN: the listening socket has no peer
    return n


def test_serve_clients_reference_passes():
    report = check_serve_clients(solutions.serve_clients)
    assert report.passed, text(report)
    assert "clients, one after another" in text(report)


MISTAKES_SERVE_CLIENTS = [
    pytest.param(serve_clients_stub, ["Not solved yet"], id="serve_clients_stub_is_not_solved_yet"),
    pytest.param(3, ["expected your function"], id="serve_clients_not_a_function"),
    pytest.param(serve_clients_keeps_connections, [
        "no end of stream",
        "close the connected socket",
    ], id="serve_clients_not_closing_connected_sockets_is_caught"),
    pytest.param(serve_clients_leaves_the_file, [
        "socket file is still there",
        "EADDRINUSE",
    ], id="serve_clients_leaving_the_socket_file_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_SERVE_CLIENTS)
def test_serve_clients_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_serve_clients(solution), phrases)


def test_serve_clients_accepting_once_is_caught():
    report = check_serve_clients(serve_clients_accepts_once)
    assert not report.passed
    assert "client 2" in text(report) and "accept() again" in text(report) or "accept() every client" in text(report)


def test_serve_clients_replying_on_the_listening_socket_is_caught():
    report = check_serve_clients(serve_clients_replies_on_the_listening_socket)
    assert not report.passed
    assert "OSError" in text(report) and "not connected" in text(report)
    assert "client 1 got nothing back" in text(report)


# -- serve_until_stopped ------------------------------------------------------------------------

def serve_until_stopped_stub(path, stop_after):
    """Serve until stopped."""
    ...  # your code here


def serve_until_stopped_with_close(path, stop_after):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    threading.Timer(stop_after, server.close).start()  # close() does not wake accept on Linux
    served = 0
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            break
        with conn:
            conn.sendall(b"bye")
        served += 1
    os.unlink(path)
    return served


def serve_until_stopped_without_catching(path, stop_after):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    threading.Timer(stop_after, server.shutdown, args=(socket.SHUT_RDWR,)).start()
    served = 0
    while True:
        conn, _ = server.accept()  # raises OSError (EINVAL) after the shutdown
        with conn:
            conn.sendall(b"bye")
        served += 1


def serve_until_stopped_polling_slowly(path, stop_after):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.settimeout(1.5)  # looks at the flag only every 1.5 s
    stopped = threading.Event()
    threading.Timer(stop_after, stopped.set).start()
    served = 0
    while not stopped.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.sendall(b"bye")
        served += 1
    server.close()
    os.unlink(path)
    return served


def test_serve_until_stopped_reference_passes():
    report = check_serve_until_stopped(solutions.serve_until_stopped)
    assert report.passed, text(report)
    assert "after the stop" in text(report)


MISTAKES_SERVE_UNTIL_STOPPED = [
    pytest.param(serve_until_stopped_stub, ["Not solved yet"], id="serve_until_stopped_stub_is_not_solved_yet"),
    pytest.param(serve_until_stopped_with_close, [
        "close() from another thread does not wake",
        "shutdown",
    ], id="serve_until_stopped_close_from_a_thread_is_caught"),
    pytest.param(serve_until_stopped_without_catching, [
        "Invalid argument",
        "catch it",
    ], id="serve_until_stopped_not_catching_einval_is_caught"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_SERVE_UNTIL_STOPPED)
def test_serve_until_stopped_catches_a_typical_mistake(solution, phrases):
    assert_caught(check_serve_until_stopped(solution), phrases)


def test_serve_until_stopped_slow_polling_is_caught():
    report = check_serve_until_stopped(serve_until_stopped_polling_slowly)
    assert not report.passed
    assert "within 0.5 s of the stop" in text(report)
