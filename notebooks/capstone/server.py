"""server.py: your capstone server (09-capstone). Run it:  python server.py PATH

The protocol (client.py speaks the same):
- AF_UNIX, SOCK_STREAM, at the path given on the command line.
- A message is a 4-byte big-endian length, then that many bytes: struct.pack("!I", len(m)) + m.
  At most MAX_MESSAGE (65536) bytes.
- The client sends a request (one message); the server answers with one message: the request
  upper-cased (b"hello" -> b"HELLO").
- A connection carries any number of requests, one after another. It ends when the client closes
  it, or shuts down writing: answer what you received, then close.
- A length over MAX_MESSAGE, a peer of another user, a request cut short by end of file: close
  that connection without an answer, and go on serving everybody else.

What the gauntlet checks, and where you learnt it:
- start-up over a stale socket file; refusing to start (exit status 1) when a live server owns the
  path; the socket file 0600; SO_PEERCRED                                        (lesson 02)
- SIGTERM (and Ctrl-C, SIGINT): stop accepting, answer the requests begun, close the idle
  connections, unlink the socket file, exit 0 within 2 s                         (lesson 04)
- end of file and half-close; a client killed mid-request; no socket left open   (lesson 06)
- framing: a request in 1-byte pieces, split across many sends, over the limit   (lesson 07)
- 20 clients at once: a thread per connection                                    (lesson 08)

Paste the functions you wrote in lessons 02 and 07, then fill in the rest. Run the gauntlet from
09-capstone.ipynb, or in a terminal: python -m helpers.capstone server.py client.py
"""

import errno
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

MAX_MESSAGE = 65536


def remove_if_stale(path):
    """Unlink `path` if it is a socket file nobody listens on; return True if removed (lesson 02)."""
    ...  # your code here


def peer_uid(conn):
    """The uid of the process that connected `conn`: SO_PEERCRED gives pid, uid, gid (lesson 02)."""
    ...  # your code here


def recv_exactly(sock, n):
    """Exactly `n` bytes from `sock`; EOFError if the peer closes before they have all come (lesson 07)."""
    ...  # your code here


def send_message(sock, message):
    """Send `message` as one frame: its length (4 bytes, big-endian), then the bytes (lesson 07)."""
    ...  # your code here


def recv_message(sock, limit=MAX_MESSAGE):
    """The next message; None if the peer closed between messages; EOFError inside one;
    ValueError (before reading the body) if the length is over `limit` (lesson 07)."""
    ...  # your code here


def open_listener(path):
    """A listening socket at `path`, its socket file 0600; None if a live server already owns `path`.

    TODO: remove_if_stale(path); bind under os.umask(0o177) (restore the old umask after);
    EADDRINUSE means a live server: return None; listen.
    """
    ...  # your code here


def serve_connection(conn, stopping):
    """Answer the requests on `conn` until the client is done, or `stopping` is readable between requests.

    TODO: close `conn` in every case (`with conn:`); refuse a peer of another uid; loop: wait until
    `conn` or `stopping` is readable (select.select); if only `stopping` is, return; else read a
    request (recv_message), and on None, EOFError, ValueError or ConnectionError return; answer it.
    """
    ...  # your code here


def main():
    """Serve at sys.argv[1] until SIGTERM or SIGINT; return the exit status.

    TODO:
    1. open_listener(path); if None, print why on sys.stderr and return 1.
    2. A socketpair() whose one end `stopping` every connection watches.
    3. A handler for SIGTERM and SIGINT that writes a byte to the other end, and shuts down the
       listening socket: accept() then fails (lesson 04).
    4. Loop: accept, and start a thread running serve_connection(conn, stopping) (lesson 08);
       an OSError from accept means we are stopping: leave the loop.
    5. Give the threads up to 1.5 s to finish (join with a timeout), close the listening socket,
       unlink the path, return 0.
    """
    ...  # your code here


if __name__ == "__main__":
    sys.exit(main())
