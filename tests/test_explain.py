"""helpers.explain: every errno it knows becomes a sentence with advice; real errors are explained too."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from helpers.explain import _MEANINGS, errno_name, explain


@pytest.mark.parametrize("name", sorted(_MEANINGS))
def test_every_errno_in_the_table_is_explained_with_advice(name):
    number = getattr(errno, name)
    text = explain(OSError(number, os.strerror(number)))
    meaning, advice = _MEANINGS[name]
    assert text == f"{name} ({number}): {meaning}. Try: {advice}."


def test_the_subclass_python_raises_is_explained_the_same_way():
    assert explain(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")).startswith("ECONNREFUSED (111): ")
    assert explain(FileNotFoundError(errno.ENOENT, "No such file")).startswith("ENOENT (2): ")


def test_a_real_error_from_the_kernel_is_explained(tmp_path):
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as first, socket.socket(socket.AF_UNIX) as second:
        first.bind(path)
        with pytest.raises(OSError) as info:
            second.bind(path)
    text = explain(info.value)
    assert text.startswith("EADDRINUSE (98): the address is taken")
    assert "Try: connect to it first" in text


def test_an_errno_with_two_names_is_found_under_the_tables_name():
    # Linux: EOPNOTSUPP == ENOTSUP == 95, and errno.errorcode[95] is "ENOTSUP".
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, pytest.raises(OSError) as info:
        s.listen()
    assert info.value.errno == errno.EOPNOTSUPP
    assert errno_name(errno.EOPNOTSUPP) == "EOPNOTSUPP"
    assert explain(info.value).startswith("EOPNOTSUPP (95): this socket type does not support the operation")
    assert "Try: " in explain(info.value)


def test_af_unix_path_too_long_has_no_errno_and_is_explained():
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError) as info:
        s.bind("/tmp/" + "x" * 103)  # 108 bytes: one too many
    assert info.value.errno is None
    text = explain(info.value)
    assert text.startswith("OSError without an errno: Python refuses AF_UNIX paths of 108 bytes or more")
    assert "Try: use a shorter path" in text


def test_a_socket_timeout_is_explained():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        s.settimeout(0.01)
        with pytest.raises(TimeoutError) as info:
            s.accept()
    assert explain(info.value).startswith("TimeoutError without an errno: the socket's timeout")


def test_an_errno_outside_the_table_falls_back_to_its_name_and_message():
    number = errno.ENOSPC
    assert explain(OSError(number, os.strerror(number))) == f"ENOSPC ({number}): {os.strerror(number)}."


def test_a_number_unknown_to_errno_and_an_error_without_one():
    assert explain(OSError(99999, "strange")) == "errno 99999 (99999): strange."
    assert explain(ValueError("bad value")) == "ValueError: bad value"
    assert errno_name(None) == ""
