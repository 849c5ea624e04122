"""helpers.wire: named messages, split correctly however the bytes arrive; the kernel's end of the pipes."""

from __future__ import annotations

import os
import threading

import pytest

from helpers import wire

CALL = wire.Call(7, 3, "bind", ("/tmp/s.sock",), {})
MESSAGES = [CALL, wire.Reply(7, True, None), wire.Event("signal", 14, "raise"), wire.Hello(9, 9, 0, 0, (200, 201)),
            wire.ToThread(0, CALL), wire.StartThread(8)]


def test_every_kind_of_message_comes_back_as_itself():
    got = wire.Reader().feed(b"".join(wire.pack(m) for m in MESSAGES))
    assert got == MESSAGES
    assert [type(m) for m in got] == [type(m) for m in MESSAGES]
    assert got[0].method == "bind" and got[4].call.args == ("/tmp/s.sock",)


def test_reader_waits_for_the_rest_of_a_partial_message():
    data = wire.pack(CALL) + wire.pack(wire.Reply(7, False, OSError(98, "Address already in use")))
    reader = wire.Reader()
    got = []
    for i in range(len(data)):  # byte by byte, header included
        got += reader.feed(data[i:i + 1])
        if i < len(wire.pack(CALL)) - 1:
            assert got == []
    assert got[0] == CALL and got[1].value.errno == 98
    assert reader.feed(b"") == []


def test_a_message_split_across_feeds_at_every_point():
    first, second = wire.pack(CALL), wire.pack(wire.StartThread(1))
    data = first + second
    for cut in range(len(data) + 1):
        reader = wire.Reader()
        assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == [CALL, wire.StartThread(1)]


def test_socket_refs_survive_the_trip():
    ref = wire.SocketRef(handle=3, fd=4, family=1, type=1)
    [reply] = wire.Reader().feed(wire.pack(wire.Reply(1, True, (ref, [ref]))))
    assert reply.value == (ref, [ref]) and type(reply.value[0]) is wire.SocketRef


def test_only_messages_of_the_protocol_can_be_sent():
    with pytest.raises(KeyError):
        wire.pack(("hello", 42))


def test_launch_parameters_survive_the_command_line():
    launch = wire.Launch(3, 4, 5, 6, "nobody")
    assert wire.Launch.from_argv(launch.argv()) == launch
    assert wire.Launch.from_argv(wire.Launch(3, 4, 5, 6).argv()).user == ""


def test_one_megabyte_message_over_a_real_pipe():
    big = wire.Call(1, 2, "sendall", (os.urandom(1 << 20),), {})
    r, w = os.pipe()
    received = []

    def read_all():
        received.extend(wire.messages(r))

    thread = threading.Thread(target=read_all)
    thread.start()
    try:
        wire.write_message(w, big)  # far more than the 64 KiB a pipe holds: partial writes
        wire.write_message(w, wire.StartThread(2))
    finally:
        os.close(w)
        thread.join(10)
        os.close(r)
    assert not thread.is_alive()
    assert received == [big, wire.StartThread(2)]


class _FakePuppet:
    """The puppet's ends of the four pipes, driven by the test: what a Channel sees is all real pipes."""

    def __init__(self):
        (self.cmd_r, cmd_w), (reply_r, self.reply_w), (self.side_r, side_w), (events_r, self.events_w) = (
            os.pipe() for _ in range(4))
        self.exited = []
        self._reader, self._calls = wire.Reader(), []
        self.channel = wire.Channel("fake", cmd_w, side_w, reply_r, events_r, convert=lambda v: ("converted", v),
                                    exit_error=lambda: self.exited.append(1) or ChildProcessError("gone"))

    def next_call(self) -> wire.Call:
        while not self._calls:
            self._calls += self._reader.feed(os.read(self.cmd_r, 65536))
        return self._calls.pop(0)

    def end(self):
        self.channel.close()
        for fd in (self.cmd_r, self.reply_w, self.side_r, self.events_w):
            os.close(fd)
        self.channel.join(5)


@pytest.fixture
def fake():
    puppet = _FakePuppet()
    yield puppet
    if puppet.reply_w >= 0:
        puppet.end()


def test_the_reader_resolves_each_call_by_its_id_and_converts_once(fake):
    first = fake.channel.send(0, "socket", (1, 1, 0), {})
    second = fake.channel.send(1, "gettimeout", (), {})
    assert (fake.next_call(), fake.next_call()) == (wire.Call(1, 0, "socket", (1, 1, 0), {}),
                                                    wire.Call(2, 1, "gettimeout", (), {}))
    wire.write_message(fake.reply_w, wire.Reply(2, False, OSError(9, "Bad file descriptor")))
    wire.write_message(fake.reply_w, wire.Reply(1, True, "ref"))
    assert first.result(5) == ("converted", "ref")
    assert second.exception(5).errno == 9


def test_events_are_read_before_a_reply_that_follows_them(fake):
    for round_ in range(50):
        future = fake.channel.send(0, "accept", (), {})
        fake.next_call()
        wire.write_message(fake.events_w, wire.Event("signal", 14, "raise"))
        wire.write_message(fake.reply_w, wire.Reply(round_ + 1, False, RuntimeError("raised by the handler")))
        future.exception(5)
        assert len(fake.channel.events) == round_ + 1  # counted by the time the call is seen ended


def test_at_end_of_file_pending_calls_get_the_exit_error_and_new_ones_are_refused(fake):
    pending = fake.channel.send(0, "accept", (), {})
    fake.end()
    assert isinstance(pending.exception(5), ChildProcessError)
    assert fake.channel.closed
    with pytest.raises(ChildProcessError):
        fake.channel.send(0, "listen", (1,), {})
    fake.reply_w = -1
