"""The checkers of 08-many-clients pass the reference solutions and fail typical wrong servers, saying why.

Every wrong server below runs for real against the checker's crowd; after each test nothing may be
left (exercise_support's fixture): no puppet, no socket file, no process the server forked.
"""

from __future__ import annotations

import inspect
import linecache
import os
import selectors
import signal
import socket
import threading
import uuid

import pytest
from exercise_support import assert_caught, load_solutions, nothing_left_behind  # noqa: F401 (autouse fixture)

from helpers.exercises.serving import check_serve_selector, check_serve_threads

solutions = load_solutions("08_many_clients.py")


def from_source(source: str, name: str):
    """A function made from `source`, whose source inspect can read: the checker sends only a function's own
    source to the fresh process, so every wrong server must be whole in itself."""
    filename = f"<wrong server {name} {uuid.uuid4().hex[:6]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"os": os, "selectors": selectors, "signal": signal, "socket": socket, "threading": threading}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def changed(function, name: str, old: str, new: str):
    """`function` (a reference solution) renamed to `name`, with `old` replaced by `new` in its source."""
    source = inspect.getsource(function)
    assert old in source, f"{old!r} is not in {function.__name__}"
    return from_source(source.replace(f"def {function.__name__}(", f"def {name}(").replace(old, new), name)


# -- serve_threads: wrong servers -----------------------------------------------------------------

def threads_stub(path, seconds):
    """Serve."""
    ...  # your code here


def threads_iterative(path, seconds):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    listener.settimeout(seconds)
    served = 0
    try:
        while True:
            conn, _ = listener.accept()
            served += 1
            with conn:
                while data := conn.recv(1024):  # the silent client, first in line, stalls everyone here
                    conn.sendall(data.upper())
    finally:
        listener.close()
        os.unlink(path)
    return served


def threads_recv_in_accept_loop(path, seconds):
    def serve(conn, first):
        with conn:
            conn.sendall(first.upper())
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    threading.Timer(seconds, listener.shutdown, args=(socket.SHUT_RDWR,)).start()
    served = 0
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            break
        served += 1
        first = conn.recv(1024)  # waits here for the silent client's first bytes: nobody else is accepted
        threading.Thread(target=serve, args=(conn, first), daemon=True).start()
    listener.close()
    os.unlink(path)
    return served


def threads_never_wakes_the_silent(path, seconds):
    def serve(conn):
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    stopper = threading.Timer(seconds, listener.shutdown, args=(socket.SHUT_RDWR,))
    stopper.start()
    workers = []
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            break
        workers.append(threading.Thread(target=serve, args=(conn,)))
        workers[-1].start()
    for worker in workers:
        worker.join()  # the silent client's thread sleeps in recv for ever
    listener.close()
    os.unlink(path)
    return len(workers)


def threads_never_close(path, seconds):
    kept = []

    def serve(conn):
        kept.append(conn)  # kept open until the end: no client reads b'' in time
        while data := conn.recv(1024):
            conn.sendall(data.upper())

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    threading.Timer(seconds, listener.shutdown, args=(socket.SHUT_RDWR,)).start()
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            break
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    for conn in kept:
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()
    listener.close()
    os.unlink(path)
    return len(kept)


FORKING = """
def forking_server(path, seconds):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    threading.Timer(seconds, listener.shutdown, args=(socket.SHUT_RDWR,)).start()
    children, kept = [], []
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            break
        pid = os.fork()
        if pid == 0:
            if CHILD_CLOSES_LISTENER:
                listener.close()
            signal.alarm(int(seconds) + 1)  # the silent client's child ends in time
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data.upper())
            os._exit(0)
        children.append(pid)
        if PARENT_CLOSES:
            conn.close()
        else:
            kept.append(conn)
    for conn in kept:
        conn.close()
    listener.close()
    os.unlink(path)
    if REAPS:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    return len(children)
"""


def forking(parent_closes=True, child_closes_listener=True, reaps=True):
    """A forking server with its three duties switchable; each wrong server below turns one off."""
    source = (FORKING.replace("CHILD_CLOSES_LISTENER", str(child_closes_listener))
              .replace("PARENT_CLOSES", str(parent_closes)).replace("REAPS", str(reaps)))
    return from_source(source, "forking_server")


threads_leaves_the_file = changed(solutions.serve_threads, "leaves_the_file", "os.unlink(path)", "pass")
threads_wrong_count = changed(solutions.serve_threads, "wrong_count", "return accepted", "return 0")


def test_serve_threads_reference_passes():
    report = check_serve_threads(solutions.serve_threads)
    assert report.passed, repr(report)
    assert "10 clients at once" in repr(report)


MISTAKES_THREADS = [
    pytest.param(threads_stub, ["Not solved yet"], id="stub"),
    pytest.param(3, ["expected your function"], id="not_a_function"),
    pytest.param(threads_iterative, ["one client at a time", "start a thread per client"], id="iterative"),
    pytest.param(threads_recv_in_accept_loop, ["stalled everyone", "never recv() in the accept loop"],
                 id="recv_in_accept_loop"),
    pytest.param(threads_never_wakes_the_silent, ["did not stop", "shutdown(SHUT_RDWR)"], id="silent_thread_never_woken"),
    pytest.param(threads_never_close, ["no end of stream", "close the connection once recv returns b''"],
                 id="connections_never_closed"),
    pytest.param(forking(reaps=False), ["zombies", "waitpid"], id="fork_without_reaping"),
    pytest.param(forking(parent_closes=False), ["the parent still held its copy"], id="fork_parent_keeps_conn"),
    pytest.param(forking(child_closes_listener=False), ["a child process held the listening socket"],
                 id="fork_child_keeps_listener"),
    pytest.param(threads_leaves_the_file, ["the socket file is still there"], id="leaves_the_file"),
    pytest.param(threads_wrong_count, ["it returned 0"], id="wrong_count"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_THREADS)
def test_serve_threads_catches_a_wrong_server(solution, phrases):
    assert_caught(check_serve_threads(solution), phrases)


# -- serve_selector: wrong servers ----------------------------------------------------------------

def selector_stub(path, seconds):
    """Serve."""
    ...  # your code here


SEND = "del client[\"owed\"][:conn.send(client[\"owed\"])]"
selector_blocking_sendall = changed(solutions.serve_selector, "blocking_sendall", "conn.setblocking(False)",
                                    "conn.setblocking(True)")
selector_ignores_partial_sends = changed(solutions.serve_selector, "partial_sends", SEND,
                                         "conn.send(client[\"owed\"]); client[\"owed\"].clear()")
selector_sendall_nonblocking = changed(solutions.serve_selector, "sendall_nonblocking", SEND,
                                       "conn.sendall(client[\"owed\"]); client[\"owed\"].clear()")
selector_keeps_finished_clients = changed(solutions.serve_selector, "keeps_finished", "client[\"eof\"] = not data",
                                          "pass")
selector_dies_with_a_vanished_client = changed(solutions.serve_selector, "dies_with_vanished", "except ConnectionError:",
                                               "except ZeroDivisionError:")
selector_closes_at_eof_with_bytes_owed = changed(solutions.serve_selector, "closes_at_eof",
                                                 "if client[\"eof\"] and not client[\"owed\"]:", "if client[\"eof\"]:")
selector_always_watches_writing = changed(solutions.serve_selector, "always_writing",
                                          "(selectors.EVENT_WRITE if client[\"owed\"] else 0)", "selectors.EVENT_WRITE")
selector_with_threads = changed(solutions.serve_threads, "with_threads", "return accepted", "return accepted")
selector_never_stops = changed(solutions.serve_selector, "never_stops", "sel.select(timeout=left)", "sel.select()")


def test_serve_selector_reference_passes():
    report = check_serve_selector(solutions.serve_selector)
    assert report.passed, repr(report)
    assert "one thread served everyone" in repr(report)


MISTAKES_SELECTOR = [
    pytest.param(selector_stub, ["Not solved yet"], id="stub"),
    pytest.param(selector_blocking_sendall, ["a blocking sendall() stalls the whole loop"], id="blocking_sendall"),
    pytest.param(selector_ignores_partial_sends, ["send() may take less than you give it"], id="partial_sends_lost"),
    pytest.param(selector_sendall_nonblocking, ["BlockingIOError", "EVENT_WRITE"], id="sendall_nonblocking"),
    pytest.param(selector_keeps_finished_clients, ["burned", "stop watching a socket for reading after b''"],
                 id="eof_not_unregistered"),
    pytest.param(selector_dies_with_a_vanished_client, ["must end only its own connection"], id="vanished_client"),
    pytest.param(selector_closes_at_eof_with_bytes_owed, ["the client that sent 1000000 bytes got"],
                 id="closes_at_eof_with_bytes_owed"),
    pytest.param(selector_always_watches_writing, ["burned", "for writing when nothing is owed"],
                 id="always_event_write"),
    pytest.param(selector_with_threads, ["threads", "serve every client from one thread"], id="threads"),
    pytest.param(selector_never_stops, ["did not stop", "give select() a timeout"], id="never_stops"),
]


@pytest.mark.parametrize(("solution", "phrases"), MISTAKES_SELECTOR)
def test_serve_selector_catches_a_wrong_server(solution, phrases):
    assert_caught(check_serve_selector(solution), phrases)
