"""A process that holds the descriptors a checker asks for, so that a student can be asked about it.

The creation exercises take a pid. Their checker starts `python -m helpers.exercises.holder` and
(`creation.Holder`) drives it with one command per line on stdin; each answer is one line on stdout:

    open socket | open dgram | open pair | open file | open eventfd | open epoll | open pipe | open null
        -> the new descriptor numbers, e.g. "5" or "5 6"
    close FD    -> "ok"

Sockets, a regular file, an eventfd, an epoll instance and pipes: the traps a wrong answer falls in.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import tempfile

from helpers import processes

__all__ = ["KINDS", "main"]

KINDS = ("socket", "dgram", "pair", "file", "eventfd", "epoll", "pipe", "null")


def _open(kind: str, keep: list) -> list[int]:
    """Open one thing of `kind` in this process; `keep` holds the Python objects alive."""
    if kind == "socket":
        made = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)]
    elif kind == "dgram":
        made = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
    elif kind == "pair":
        made = list(socket.socketpair())
    elif kind == "file":
        made = [tempfile.TemporaryFile()]
    elif kind == "epoll":
        made = [select.epoll()]
    elif kind == "null":
        return [os.open(os.devnull, os.O_RDONLY)]
    elif kind == "eventfd":
        return [os.eventfd(0)]
    else:
        return list(os.pipe())
    keep.extend(made)
    return [m.fileno() for m in made]


def main() -> None:
    processes.die_with_parent()
    # our own ends far above the low numbers, so that closing 0, 1 or 2 on request is possible
    commands = os.fdopen(fcntl.fcntl(0, fcntl.F_DUPFD, 100), "rb", buffering=0)
    answers = os.fdopen(fcntl.fcntl(1, fcntl.F_DUPFD, 100), "w", buffering=1)
    keep: list = []
    answers.write("ready\n")
    for line in iter(commands.readline, b""):
        verb, _, what = line.decode().strip().partition(" ")
        if verb == "open":
            answers.write(" ".join(str(fd) for fd in _open(what, keep)) + "\n")
        elif verb == "close":
            fd = int(what)
            for obj in [k for k in keep if k.fileno() == fd]:
                keep.remove(obj)
                obj.close()
            try:
                os.close(fd)
            except OSError:
                pass
            answers.write("ok\n")


if __name__ == "__main__":
    main()
