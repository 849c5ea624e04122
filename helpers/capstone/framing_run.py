"""The child of the framing checker: `python -m helpers.capstone.framing_run FD` runs the student's
framing functions on the socket FD (the checker holds the other end) and prints what they returned.

stdin: JSON {"sources": [...], "names": {role: the function's own name}, "timeout": seconds or null,
"calls": [[role, arg, ...], ...]}, bytes
given as {"bytes": hex}; stdout: JSON [{"value": ...} or {"error": [type, text]}, ...], one per call
made (it stops after an error), and "left": what was still unread on the socket afterwards.
"""

import json
import socket
import sys

from helpers import processes

PRELUDE = "import errno, os, select, socket, struct, time\n"


def _decode(arg):
    return bytes.fromhex(arg["bytes"]) if isinstance(arg, dict) else arg


def _encode(value):
    return {"bytes": value.hex()} if isinstance(value, bytes | bytearray) else value if value is None else repr(value)


def main() -> None:
    processes.die_with_parent()
    job = json.load(sys.stdin)
    sock = socket.socket(fileno=int(sys.argv[1]))
    if job["timeout"] is not None:
        sock.settimeout(job["timeout"])  # non-blocking underneath: a send may take fewer bytes
    namespace: dict = {"__name__": "__student__"}
    exec(PRELUDE, namespace)
    results = []
    try:
        for source in job["sources"]:
            exec(compile(source, "<your cell>", "exec"), namespace)
        for role, name in job["names"].items():  # recv_message calls recv_exactly by that name
            namespace[role] = namespace[name]
        for name, *args in job["calls"]:
            try:
                results.append({"value": _encode(namespace[name](sock, *map(_decode, args)))})
            except Exception as error:  # the student's error is a result, reported to them
                results.append({"error": [type(error).__name__, str(error)]})
                break
    except Exception as error:
        results.append({"error": [type(error).__name__, str(error)]})
    sock.setblocking(False)  # with a timeout set, Python polls for it first even with MSG_DONTWAIT
    try:
        left = sock.recv(65536)
    except OSError:
        left = b""
    print(json.dumps({"results": results, "left": left.hex()}), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
