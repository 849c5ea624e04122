"""helpers.wire: length-prefixed pickled messages, split correctly however the bytes arrive."""

from __future__ import annotations

import os
import threading

from helpers import wire


def test_reader_splits_concatenated_messages():
    messages = [(1, True, "a"), {"tid": 7}, b"\x00" * 10, None]
    assert wire.Reader().feed(b"".join(wire.pack(m) for m in messages)) == messages


def test_reader_waits_for_the_rest_of_a_partial_message():
    data = wire.pack(("hello", 42)) + wire.pack(b"second")
    reader = wire.Reader()
    got = []
    for i in range(len(data)):  # byte by byte, header included
        got += reader.feed(data[i:i + 1])
        if i < len(wire.pack(("hello", 42))) - 1:
            assert got == []
    assert got == [("hello", 42), b"second"]
    assert reader.feed(b"") == []


def test_a_message_split_across_feeds_at_every_point():
    first, second = wire.pack("first"), wire.pack(["second"])
    data = first + second
    for cut in range(len(data) + 1):
        reader = wire.Reader()
        assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == ["first", ["second"]]


def test_socket_refs_survive_the_trip():
    ref = wire.SocketRef(handle=3, fd=4, family=1, type=1)
    assert wire.Reader().feed(wire.pack((ref, [ref]))) == [(ref, [ref])]


def test_one_megabyte_message_over_a_real_pipe():
    big = os.urandom(1 << 20)
    r, w = os.pipe()
    received = []

    def read_all():
        reader = wire.Reader()
        while not received and (data := os.read(r, 65536)):
            received.extend(reader.feed(data))

    thread = threading.Thread(target=read_all)
    thread.start()
    try:
        wire.write_message(w, ("big", big))  # far more than the 64 KiB a pipe holds: partial writes
        wire.write_message(w, "after")
    finally:
        os.close(w)
        thread.join(10)
        os.close(r)
    assert not thread.is_alive()
    assert received[0] == ("big", big)
