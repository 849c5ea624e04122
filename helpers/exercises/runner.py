"""Run a student's function in a child process, with a timeout, and bring back what happened.

The function is sent as source code (the notebook keeps every cell's source), executed in a fresh
interpreter with the usual modules already imported, and called with plain arguments:

    kernel                                   child (python -m helpers.exercises.runner)
    run_student(f, path, timeout=5) --->     exec(source); value = f(path)
            <--- result file: value or exception, seconds, descriptors left open

A student function that hangs is killed at the timeout, one that raises has its exception
brought back, one that leaves sockets open is reported: nothing of it survives in the kernel.
"""

from __future__ import annotations

import ast
import inspect
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field

from helpers import processes
from helpers.socket_dir import workspace

__all__ = ["Background", "Outcome", "is_stub", "run_student", "source_of"]

PRELUDE = "import errno, os, random, select, selectors, signal, socket, stat, threading, time\n"


@dataclass
class Outcome:
    """What happened when the student's function ran."""

    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""
    left_open: list[str] = field(default_factory=list)  # e.g. ["fd 3 -> socket:[1234]"]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    def problem(self) -> str:
        """'' if it ran fine, else one sentence on what went wrong."""
        if self.timed_out:
            return f"did not return within {self.seconds:.1f} s (it was stopped): does it wait forever somewhere?"
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return ""


def source_of(func) -> str:
    try:
        return textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise TypeError(f"{func!r}: pass the function itself (defined with def in a cell), not its result") from exc


def is_stub(func) -> bool:
    """True while the function body is still only `...` or `pass` (plus a docstring)."""
    try:
        tree = ast.parse(source_of(func))
    except (TypeError, SyntaxError):
        return False
    definition = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if definition is None:
        return False
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return all(isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                           and n.value.value is Ellipsis) for n in body)


def run_student(func, *args, timeout: float = 5.0) -> Outcome:
    """Call `func(*args)` in a fresh child process; kill it after `timeout` seconds."""
    if not callable(func):
        raise TypeError(f"expected a function, got {type(func).__name__}: define it with def, then pass its name")
    result_path = os.path.join(workspace().dir, f"result-{uuid.uuid4().hex[:8]}.pickle")
    job = pickle.dumps((source_of(func), func.__name__, args, result_path))
    started = time.monotonic()
    proc = processes.start("exercises.runner", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=workspace().dir)
    try:
        output, _ = proc.communicate(job, timeout=timeout + 1.0)  # +1 s: the interpreter's own start
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        return Outcome(timed_out=True, seconds=timeout, output=output.decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        with open(result_path, "rb") as f:
            outcome: Outcome = pickle.load(f)
        os.unlink(result_path)
    except (OSError, EOFError, pickle.UnpicklingError):
        outcome = Outcome(error=RuntimeError(f"the process running it died (exit status {proc.returncode})"),
                          seconds=time.monotonic() - started)
    outcome.output = output.decode(errors="replace")
    return outcome


class Background:
    """`run_student(func, *args)` in a thread of ours, so that a checker can play the peer meanwhile.

    The checker drives puppets (the other end of the student's socket) while the student's function
    runs; `done()` says whether it has finished, `join()` returns its Outcome. Introduced in 06.
    """

    def __init__(self, func, *args, timeout: float = 5.0):
        self.outcome: Outcome | None = None
        self._timeout = timeout
        self._thread = threading.Thread(target=self._run, args=(func, args), daemon=True)
        self._thread.start()

    def _run(self, func, args) -> None:
        try:
            self.outcome = run_student(func, *args, timeout=self._timeout)
        except BaseException as error:  # e.g. a source that cannot be read: reported like an error of theirs
            self.outcome = Outcome(error=error)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> Outcome:
        """Wait for the run (it ends by itself: run_student kills the child at its timeout)."""
        self._thread.join(self._timeout + 10.0)
        return self.outcome or Outcome(error=RuntimeError("the run did not finish"))


def _open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return fds


def main() -> None:
    processes.die_with_parent()
    source, name, args, result_path = pickle.loads(sys.stdin.buffer.read())
    namespace: dict = {"__name__": "__student__"}
    exec(PRELUDE, namespace)
    before = _open_fds()
    started = time.monotonic()
    outcome = Outcome()
    try:
        exec(compile(source, "<your cell>", "exec"), namespace)
        outcome.value = namespace[name](*args)
    except BaseException as exc:  # the student's error is a result, not a crash of the checker
        exc.__traceback__ = None
        outcome.error = exc
    outcome.seconds = time.monotonic() - started
    after = _open_fds()
    outcome.left_open = [f"fd {fd} -> {target}" for fd, target in sorted(after.items())
                         if fd not in before and target.startswith("socket:")]
    try:
        data = pickle.dumps(outcome)
    except Exception:
        outcome.value = repr(outcome.value)
        outcome.error = RuntimeError(repr(outcome.error)) if outcome.error else None
        data = pickle.dumps(outcome)
    with open(result_path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    from helpers.exercises import runner  # so that pickles name helpers.exercises.runner.Outcome, not __main__

    runner.main()
