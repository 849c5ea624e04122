"""Reference solutions for the exercises of 05-connect-and-retries.ipynb.

Each function is self-contained: the checker runs its source in a fresh process where errno, os,
random, select, selectors, signal, socket, stat, threading and time are already imported.
"""

import random
import socket
import time


def backoff_delays(n, base, cap):
    """`n` delays with exponential backoff and full jitter: delay k is drawn uniformly between 0 and
    min(cap, base * 2**k)."""
    return [random.uniform(0, min(cap, base * 2 ** k)) for k in range(n)]


def connect_with_retry(path, attempts, base, cap):
    """Connect an AF_UNIX stream socket to `path`, trying up to `attempts` times. After a failure
    that waiting can cure (FileNotFoundError, ConnectionRefusedError) wait min(cap, base * 2**k)
    seconds (k = 0, 1, ...) and try again; raise any other error at once. Return the connected
    socket; if every attempt fails, raise the last error."""
    for k in range(attempts):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if k == attempts - 1:
                raise                              # the caller learns why we gave up
        except BaseException:
            sock.close()
            raise                                  # e.g. EACCES, ENOTDIR: waiting will not help
        time.sleep(min(cap, base * 2 ** k))
    raise ValueError("attempts must be at least 1")
