"""The gauntlet of 09-capstone passes the reference programs and fails typical wrong ones, on the right line.

Each wrong program is the reference solution with one typical mistake put in (a text replacement
that must apply), run as a real process; the gauntlet must fail it on the attack that targets the
mistake, saying why. Most cases run only that attack, to keep the suite short.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import wait_until, workspace
from helpers.capstone import ATTACKS, gauntlet
from helpers.capstone.program import Program

pytestmark = pytest.mark.usefixtures("short_allowance")
SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
SKELETONS = Path(__file__).resolve().parent.parent / "notebooks" / "capstone"
SERVER, CLIENT = SOLUTIONS / "09_server.py", SOLUTIONS / "09_client.py"

# (case, program, [(old, new)], attack that must fail, words its line must hold)
WRONG = [
    ("no framing: each recv is one request", "server",
     [("request = recv_message(conn)", "request = conn.recv(65536) or None")],
     "a client that sends one byte at a time", "the answer b'\\x00' instead of"),
    ("one recv for the length and one for the body", "server",
     [("    data = b\"\"\n    while len(data) < n:", "    return sock.recv(n)\n    data = b\"\"\n    while len(data) < n:")],
     "a message split across many sends", "loop until you have all the bytes"),
    ("blind unlink at start-up", "server",
     [("    remove_if_stale(path)\n", "    if os.path.exists(path):\n        os.unlink(path)\n")],
     "a live copy already serving", "a second copy was still running"),
    ("no stale-file handling", "server",
     [("    remove_if_stale(path)\n", "")],
     "stale socket file at start-up", "exited with status 1"),
    ("socket file left to the umask", "server",
     [("os.umask(0o177)", "os.umask(0o002)")],
     "socket file mode 0600", "srwxrwxr-x"),
    ("no length limit", "server",
     [("    if length > limit:\n", "    if False:\n")],
     "an oversized length", "was still open 2 s after a length of 65537"),
    ("iterative: one client at a time", "server",
     [("        worker = threading.Thread(target=serve_connection, args=(conn, stop_reader), daemon=True)\n"
       "        worker.start()\n",
       "        serve_connection(conn, stop_reader)\n        continue\n")],
     "20 concurrent clients", "19 of 20 got no right answer within 2 s"),
    ("end of file ignored", "server",
     [("            if request is None:\n                return",
       "            if request is None:\n                continue")],
     "a client that half-closes", "the connection did not end"),
    ("exits when a request is cut short", "server",
     [("            except (EOFError, ValueError, ConnectionError):\n",
       "            except EOFError:\n                os._exit(1)\n            except (ValueError, ConnectionError):\n")],
     "a client killed mid-request", "the server exited with status 1"),
    # the moment between a process closing its sockets and its end, stretched: the report must still say
    # how the server ended, not that its closing listener refused or reset the gauntlet's next connection
    ("exits slowly when a request is cut short", "server",
     [("            except (EOFError, ValueError, ConnectionError):\n",
       "            except EOFError:\n                os.closerange(3, 1024)\n                time.sleep(0.2)\n"
       "                os._exit(1)\n            except (ValueError, ConnectionError):\n")],
     "a client killed mid-request", "the server exited with status 1"),
    ("a leak: connected sockets never closed", "server",
     [("    with conn:\n        if peer_uid", "    if True:\n        if peer_uid"),
      ("    workers = []\n", "    workers, accepted = [], []\n"),
      ("        worker = threading.Thread(", "        accepted.append(conn)\n        worker = threading.Thread("),
      ("            if request is None:\n                return", "            if request is None:\n"
                                                                  "                conn.shutdown(socket.SHUT_RDWR)\n"
                                                                  "                return")],
     "no socket left open", "more sockets than when it started"),
    ("no SIGTERM handler", "server",
     [("    signal.signal(signal.SIGTERM, stop)\n", "")],
     "SIGTERM with a request in flight", "SIGTERM killed it: it has no handler"),
    ("SIGTERM drops the requests in flight", "server",
     [("        stop_writer.send(b\"!\")", "        os.unlink(path)\n        os._exit(0)")],
     "SIGTERM with a request in flight", "the request in flight: "),
    ("socket file left behind at exit", "server",
     [("    os.unlink(path)\n    print(\"server.py: stopped\"", "    print(\"server.py: stopped\"")],
     "nothing left after it exited", "its socket file was left behind"),
    ("a forked helper left running", "server",
     [("    workers = []\n", "    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n    workers = []\n")],
     "nothing left after it exited", "1 process(es) it started still ran (we killed them)"),
    ("client: one recv for the answer", "client",
     [("    data = b\"\"\n    while len(data) < n:", "    return sock.recv(n)\n    data = b\"\"\n    while len(data) < n:")],
     "client.py gets its answer", "read it with recv_exactly"),
    ("client: no framing", "client",
     [("    sock.sendall(struct.pack(\"!I\", len(message)) + message)", "    sock.sendall(message)")],
     "client.py gets its answer", "the request was not framed"),
    ("client: no retry", "client",
     [("ATTEMPTS, BASE, CAP = 8, 0.05, 1.0", "ATTEMPTS, BASE, CAP = 1, 0.05, 1.0")],
     "client.py retries while the server restarts", "while the server was down, client.py exited with status 1"),
    ("client: retries without waiting", "client",
     [("ATTEMPTS, BASE, CAP = 8, 0.05, 1.0", "ATTEMPTS, BASE, CAP = 10**9, 0.05, 1.0"),
      ("        time.sleep(min(cap, base * 2 ** k))\n", "")],
     "client.py retries while the server restarts", "never waited between tries"),
]
if os.geteuid() == 0:
    WRONG.append(("no SO_PEERCRED check", "server",
                  [("        if peer_uid(conn) != os.getuid():\n            return", "")],
                  "a peer of another uid", "a peer running as nobody got an answer"))


def _mutant(directory: Path, program: str, replacements) -> tuple[str, str]:
    """server.py and client.py in `directory`: the reference ones, with `replacements` made in `program`."""
    for name, source in (("server", SERVER), ("client", CLIENT)):
        text = source.read_text()
        if name == program:
            for old, new in replacements:
                assert old in text, f"the mutation no longer applies to {source.name}: {old!r}"
                text = text.replace(old, new, 1)
        (directory / f"{name}.py").write_text(text)
    return str(directory / "server.py"), str(directory / "client.py")


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert workspace().sockets() == [], "the gauntlet left a socket file in the workspace"
    children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    assert children == [], f"the gauntlet left processes running: {children}"


def test_reference_passes_every_attack():
    report = gauntlet(str(SERVER), str(CLIENT))
    assert report.passed, repr(report)
    verdicts = report.verdicts()
    assert list(verdicts) == ATTACKS
    expected_skips = set() if os.geteuid() == 0 else {"a peer of another uid"}
    assert {a for a, v in verdicts.items() if v == "SKIP"} == expected_skips, repr(report)


@pytest.mark.parametrize("case, program, replacements, attack, words", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_program_fails_on_its_line(tmp_path, case, program, replacements, attack, words):
    server, client = _mutant(tmp_path, program, replacements)
    report = gauntlet(server, client, only=[attack])
    line = report.line(attack)
    assert line.startswith(f"FAIL {attack}: "), repr(report)
    assert words in line, line
    assert line.endswith(")") and "(lesson 0" in line, line


def test_a_running_programs_output_is_its_whole_lines_and_all_of_it_once_it_ended(tmp_path):
    """Under PYTHONUNBUFFERED, print() writes a line and its newline apart: lesson 09's server was once seen
    as 'server.py: serving at ... (pid N)' without its newline, and nbval failed the cell."""
    script = tmp_path / "halves.py"
    script.write_text("import os, signal\nos.write(1, b'one line\\nhalf a line')\nsignal.pause()\n")
    program = Program(str(script), output=str(tmp_path / "out"))
    try:
        assert wait_until(program.output, 5) == "one line\n"
        os.kill(program.pid, signal.SIGTERM)
        assert program.wait(5) == -signal.SIGTERM
        assert program.output() == "one line\nhalf a line"
    finally:
        program.kill()


def test_a_syntax_error_is_reported_as_the_program_says_it(tmp_path):
    server, client = _mutant(tmp_path, "server", [("def main():", "def main(:")])
    line = gauntlet(server, client, only=["stale socket file at start-up"]).line("stale socket file at start-up")
    assert line.startswith("FAIL stale socket file at start-up: it exited with status 1 and said 'SyntaxError"), line


def test_skeletons_are_not_started_yet():
    report = gauntlet(str(SKELETONS / "server.py"), str(SKELETONS / "client.py"))
    assert not report.passed
    assert report.lines == []
    assert "server.py: not started yet" in repr(report) and "client.py: not started yet" in repr(report)


def test_skeletons_run_as_programs(tmp_path):
    for name, args in (("server.py", [str(tmp_path / "s.sock")]), ("client.py", [str(tmp_path / "s.sock"), "hi"])):
        run = subprocess.run([sys.executable, str(SKELETONS / name), *args], capture_output=True, timeout=30)
        assert run.returncode == 0, run.stderr


def test_unknown_attack_is_named():
    with pytest.raises(ValueError, match="is not an attack; the attacks are: stale socket file"):
        gauntlet(str(SERVER), str(CLIENT), only=["twenty clients"])


def test_missing_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py: no such file"):
        gauntlet(str(tmp_path / "nope.py"), str(CLIENT))


def test_command_line(tmp_path):
    shutil.copy(SERVER, tmp_path / "server.py")
    shutil.copy(CLIENT, tmp_path / "client.py")
    run = subprocess.run([sys.executable, "-m", "helpers.capstone", "server.py", "client.py",
                          "--only", "3 requests on one connection", "--only", "client.py gets its answer"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["PASS 3 requests on one connection", "PASS client.py gets its answer",
                                       "2 attacks: 2 passed, 0 failed"]
