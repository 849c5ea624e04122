"""client.py: your capstone client (09-capstone). Run it:  python client.py PATH MESSAGE

It asks the server at PATH one question, MESSAGE, and prints the answer (the protocol is spelled out
in server.py: a 4-byte big-endian length, then the bytes; the answer is one such message).

What the gauntlet checks, and where you learnt it:
- the request is framed, and the answer is read whole even when it comes in pieces   (lesson 07)
- while the server restarts (no socket file: ENOENT; a stale one: ECONNREFUSED), the client
  retries, waiting longer after each failure, and gets its answer                    (lesson 05)
- success: the answer on standard output, exit status 0; failure: a message on
  sys.stderr, exit status 1

Paste the functions you wrote in lessons 05 and 07, then write main().
"""

import socket
import struct
import sys
import time

ATTEMPTS, BASE, CAP = 8, 0.05, 1.0  # waits of 0.05, 0.1, 0.2, ... 1 s: about 3.5 s in all


def connect_with_retry(path, attempts=ATTEMPTS, base=BASE, cap=CAP):
    """A socket connected to `path`, after up to `attempts` tries, waiting min(cap, base * 2**k)
    seconds after the k-th failure; raise the last error if every try fails (lesson 05)."""
    ...  # your code here


def recv_exactly(sock, n):
    """Exactly `n` bytes from `sock`; EOFError if the peer closes before they have all come (lesson 07)."""
    ...  # your code here


def send_message(sock, message):
    """Send `message` as one frame: its length (4 bytes, big-endian), then the bytes (lesson 07)."""
    ...  # your code here


def recv_message(sock, limit=65536):
    """The next message; None if the peer closed between messages; EOFError inside one;
    ValueError (before reading the body) if the length is over `limit` (lesson 07)."""
    ...  # your code here


def main():
    """Ask sys.argv[2] of the server at sys.argv[1]; print the answer; return the exit status.

    TODO: connect_with_retry (on OSError: say why on sys.stderr, return 1); send_message the
    encoded MESSAGE; recv_message; None or an error: say so on sys.stderr, return 1; else print
    the answer decoded, return 0. Close the socket in every case (`with sock:`).
    """
    ...  # your code here


if __name__ == "__main__":
    sys.exit(main())
