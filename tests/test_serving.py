"""helpers.serving against real servers: a design runs in its own process, is read from /proc, and leaves nothing."""

from __future__ import annotations

import functools
import os
import signal
import socket
import threading

import pytest

from helpers import wait_until, workspace
from helpers.serving import Crowd, Server, ask, state_of, stop_servers, summary, timed_clients


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper())


def one_at_a_time(listener):
    while True:
        conn, _ = listener.accept()
        echo(conn)


def thread_per_client(listener):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def fork_without_reaping(listener):
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            echo(conn)
            os._exit(0)
        conn.close()


def fails_on_its_first_client(listener):
    listener.accept()
    raise ValueError("no such design")


@pytest.fixture(autouse=True)
def nothing_left():
    yield
    assert stop_servers() == 0, "a test left a server running"
    assert workspace().sockets() == [], "a socket file was left in the workspace"


def test_a_server_answers_and_its_file_goes_with_it():
    server = Server(one_at_a_time, echo, name="plain")
    assert ask(server.path, b"hi").reply == b"HI"
    server.stop()
    assert not server.alive and not os.path.exists(server.path)


def test_a_design_that_fails_says_why():
    server = Server(fails_on_its_first_client, name="broken")
    assert not ask(server.path, b"hello").reply.startswith(b"HELLO")  # no answer: the process died
    assert server.wait(5) != 0
    assert server.errors() == "ValueError: no such design"
    server.stop()


def test_a_source_that_does_not_run_is_refused_before_listening():
    @functools.lru_cache  # the server process never imported functools: its source fails there
    def design(listener):
        listener.accept()

    with pytest.raises(RuntimeError, match="NameError: name 'functools' is not defined"):
        Server(design, name="broken")


def test_one_slow_client_holds_up_an_iterative_server_but_not_a_threaded_one():
    with Server(one_at_a_time, echo, name="iterative") as server:
        waits = [c.waited for c in timed_clients(server.path, fast=3, slow=0.3)]
    assert all(w >= 0.3 for w in waits[1:]), waits
    with Server(thread_per_client, echo, name="threads") as server:
        crowd = timed_clients(server.path, fast=3, slow=0.3)
    assert [c.reply for c in crowd] == [b"SLOW ONE", b"CLIENT 1", b"CLIENT 2", b"CLIENT 3"]
    assert all(c.waited < 0.3 for c in crowd[1:]), [c.waited for c in crowd]


def test_threads_are_read_from_proc_and_named_by_age():
    with Server(thread_per_client, echo, name="threads") as server, Crowd(server.path, 4) as crowd:
        assert crowd.connected == 4
        rows = server.settle(threads=5)
        assert summary(rows) == "5 threads: 4 in recvfrom, 1 in accept4"
        assert [name for name, _ in server.card()._named()] == ["threads", "thread 1", "thread 2", "thread 3", "thread 4"]
        assert server.memory()["threads"] == 5 and server.sockets() == 5


def test_a_forking_servers_children_are_seen_and_die_with_it():
    server = Server(fork_without_reaping, echo, name="forking")
    try:
        ask(server.path, b"done")
        wait_until(lambda: server.children() and state_of(server.children()[0]) == "Z", timeout=5)
        assert [state_of(c) for c in server.children()] == ["Z"]  # never reaped
        busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        busy.connect(server.path)
        wait_until(lambda: len(server.children()) == 2, timeout=5)
        living = [c for c in server.children() if state_of(c) != "Z"][0]
    finally:
        server.stop()
    assert wait_until(lambda: state_of(living) in ("Z", "gone"), timeout=5), "a forked child outlived its server"
    busy.close()


def test_a_server_that_handles_sigterm_ends_by_itself():
    def until_sigterm(listener):
        signal.signal(signal.SIGTERM, lambda *_: listener.shutdown(socket.SHUT_RDWR))
        try:
            listener.accept()
        except OSError:
            return

    with Server(until_sigterm, name="polite") as server:
        server.settle(threads=1)
        server.signal(signal.SIGTERM)
        assert server.wait(5) == 0
