"""The checkers of 06-close-semantics pass the reference solutions and fail typical wrong ones, saying why."""

from __future__ import annotations

import socket

from exercise_support import load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises import check_ask, check_serve_one

solutions = load_solutions("06_close_semantics.py")


# -- serve_one ----------------------------------------------------------------------------------

def serve_one_stub(path):
    """Serve one client."""
    ...  # your code here


def serve_one_reads_once(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(4096)  # one recv is not the whole request
            conn.sendall(request.upper())
    return request


def serve_one_ignores_eof(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        conn, _ = listener.accept()
        request = b""
        while not request.endswith(b"\n"):  # waits for a newline that never comes; b'' never ends it
            request += conn.recv(4096)
        conn.sendall(request.upper())
    return request


def serve_one_serves_forever(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        while True:  # a server loop: fine for a server, but this exercise serves one client
            conn, _ = listener.accept()
            with conn:
                request = b""
                while chunk := conn.recv(4096):
                    request += chunk
                conn.sendall(request.upper())


def serve_one_raises(path):
    raise ValueError("oops")


def test_serve_one_reference_passes():
    report = check_serve_one(solutions.serve_one)
    assert report.passed, repr(report)


def test_serve_one_stub_is_not_solved_yet():
    report = check_serve_one(serve_one_stub)
    assert not report.passed and "Not solved yet" in repr(report)


def test_serve_one_reading_once_fails():
    text = repr(check_serve_one(serve_one_reads_once))
    assert "✗ you answered before the request was complete" in text


def test_serve_one_ignoring_eof_fails():
    report = check_serve_one(serve_one_ignores_eof)
    assert not report.passed
    assert "never returned" in repr(report) and "b''" in repr(report)


def test_serve_one_serving_forever_fails():
    text = repr(check_serve_one(serve_one_serves_forever))
    assert "✓ the client got the answer b'" in text
    assert "✗ you answered and closed the connection, but your function never returned" in text


def test_serve_one_raising_fails():
    text = repr(check_serve_one(serve_one_raises))
    assert "no listening socket appeared" in text and "ValueError: oops" in text


def test_serve_one_not_a_function():
    assert "expected your function" in repr(check_serve_one(42))


# -- ask ----------------------------------------------------------------------------------------

def ask_without_shutdown(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)  # no shutdown: the server keeps waiting for more
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return reply


def ask_with_close(path, request):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(request)
    sock.close()  # gives up reading too
    return sock.recv(4096)


def ask_reads_once(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(4096)


def ask_returns_text(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return reply.decode()


def ask_hangs(path, request):
    while True:
        pass


def test_ask_reference_passes():
    report = check_ask(solutions.ask)
    assert report.passed, repr(report)


def test_ask_without_shutdown_fails():
    text = repr(check_ask(ask_without_shutdown))
    assert "✗ the server waited 2 s for the end of your request" in text and "SHUT_WR" in text


def test_ask_with_close_fails():
    text = repr(check_ask(ask_with_close))
    assert "give up reading too" in text
    assert "OSError" in text  # recv on the closed socket


def test_ask_reading_once_fails():
    text = repr(check_ask(ask_reads_once))
    assert "✗ you returned before the whole reply had come" in text


def test_ask_returning_str_fails():
    text = repr(check_ask(ask_returns_text))
    assert "(str), not bytes" in text


def test_ask_hanging_fails():
    text = repr(check_ask(ask_hangs))
    assert "never connected" in text and "did not return" in text


def test_ask_stub_is_not_solved_yet():
    def ask(path, request):
        """Ask."""
        ...  # your code here

    assert "Not solved yet" in repr(check_ask(ask))
