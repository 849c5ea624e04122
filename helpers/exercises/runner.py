"""Run a function in a fresh process that nothing escapes, and bring back what happened as plain data.

The function travels as source code (the notebook keeps every cell's source) and runs in a fresh
process under a supervisor (`sandbox`) that owns every process it starts:

    kernel                                   supervisor, then the function's own process
    run_isolated(f, path, timeout=5) --->    exec(source); value = f(path)
            <--- JSON: value or exception, seconds and CPU seconds (timed by the supervisor),
                 printed output (first and last lines), sockets left open or closed by the
                 garbage collector, threads and processes left running (then killed)

Used by every exercise checker, and by lessons to run a demonstration away from the kernel.
"""

from __future__ import annotations

import ast
import inspect
import json
import pickle
import signal
import subprocess
import textwrap
import threading
from dataclasses import dataclass, field

from helpers import processes
from helpers.exercises import plain
from helpers.socket_dir import workspace

__all__ = ["Background", "Outcome", "is_stub", "run_isolated", "source_of"]

MARGIN = 10.0  # seconds on top of a run's timeout for the supervisor's start and clean-up, under load
OUTPUT_LINES = 3  # lines of the student's printed output shown from its start, and as many from its end


@dataclass
class Outcome:
    """What happened when the function ran (every field is plain data)."""

    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    timeout: float = 0.0
    seconds: float = 0.0  # from the call to its return, measured by the supervisor
    cpu_seconds: float = 0.0  # user + system time of the function's process
    ended: str = ""  # how its process ended before the function returned, e.g. "exit status 0"
    output: str = ""  # what it printed: the first and the last lines
    left_open: list[str] = field(default_factory=list)  # e.g. ["fd 3 -> socket:[1234]"]
    unclosed: int = 0  # sockets it never closed that the garbage collector closed
    threads: list[str] = field(default_factory=list)  # threads still running after it returned
    left_running: list[str] = field(default_factory=list)  # its processes still running, then killed

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and not self.ended

    def problem(self) -> str:
        """'' if it returned, else one sentence on what went wrong."""
        if self.timed_out:
            return (f"did not return within {self.timeout:.1f} s (it was stopped): does it wait forever "
                    "somewhere?")
        if self.ended:
            return self.ended
        if self.error is not None:
            return _raised(self.error)
        return ""


def _raised(error: BaseException) -> str:
    name, text = type(error).__name__, getattr(error, "text", str(error))
    if isinstance(error, NameError):
        return (f"raised NameError: {text}. Only your function's own source runs, in a fresh process: "
                "import modules and define helpers inside the function")
    if isinstance(error, KeyboardInterrupt):
        return "raised KeyboardInterrupt (what Ctrl-C raises): return a value instead"
    if isinstance(error, SystemExit):
        return f"called sys.exit({text}) (SystemExit): return a value instead of ending the program"
    return f"raised {name}: {text}" if text else f"raised {name}"


def _ended(status: dict) -> str:
    if "signal" in status:
        try:
            name = signal.Signals(status["signal"]).name
        except ValueError:
            name = f"signal {status['signal']}"
        return f"was killed by {name} before it returned (did it signal its own process?)"
    return (f"ended its own process (exit status {status.get('exit')}, e.g. os._exit) before returning: "
            "return a value instead")


def _shown_output(output: dict) -> str:
    """The first and the last OUTPUT_LINES lines the function printed."""
    head, tail, total = output.get("head", ""), output.get("tail", ""), output.get("bytes", 0)
    if not total:
        return ""
    if total <= len(head.encode()) + len(tail.encode()):
        first = last = (head + tail).splitlines()
    else:
        first, last = head.splitlines()[:-1], tail.splitlines()[1:]
    if first is last and len(first) <= 2 * OUTPUT_LINES + 1:
        lines = first
    else:
        lines = first[:OUTPUT_LINES] + [f"... ({total} bytes printed in all) ..."] + last[-OUTPUT_LINES:]
    return "\n".join(line[:200] for line in lines)


def _outcome(report: dict, timeout: float) -> Outcome:
    """Build the Outcome from the supervisor's JSON report; only plain.decode rebuilds values."""
    result = report.get("result") or {}
    outcome = Outcome(timed_out=bool(report.get("timed_out")), timeout=timeout,
                      seconds=float(report.get("seconds", 0.0)), cpu_seconds=float(report.get("cpu_seconds", 0.0)),
                      output=_shown_output(report.get("output") or {}),
                      left_running=[str(p) for p in report.get("left_running", [])])
    if report.get("ended"):
        outcome.ended = _ended(report["ended"])
    elif report.get("stuck_after_return"):
        outcome.ended = "returned, but its process could not finish afterwards (it was stopped)"
    elif not outcome.timed_out and not result:
        outcome.ended = "returned nothing we could read (did it write to a descriptor it did not open?)"
    if "error" in result:
        error = plain.decode(result["error"])
        outcome.error = error if isinstance(error, BaseException) else RuntimeError(repr(error))
    else:
        outcome.value = plain.decode(result.get("value"))
    outcome.left_open = [str(s) for s in result.get("left_open", [])]
    outcome.unclosed = len(result.get("unclosed", []))
    outcome.threads = [str(t) for t in result.get("threads", [])]
    return outcome


def source_of(func) -> tuple[str, str]:
    """(source that defines the function, its name there): a def as written, or a lambda given a name."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise TypeError(f"{func!r}: pass a function defined with def in a cell (its source is what runs)") from exc
    if func.__name__ != "<lambda>":
        return source, func.__name__
    wanted = list(func.__code__.co_varnames[:func.__code__.co_argcount])
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a lambda inside a longer statement: parse that line's statement alone
        tree = ast.parse(source.strip().rstrip(",)") + ")") if source.count("(") > source.count(")") else None
    lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)
               and [a.arg for a in n.args.args] == wanted] if tree else []
    if len(lambdas) != 1:
        raise TypeError("this lambda cannot be told apart from the others on its line: define the function with def")
    return f"student_lambda = {ast.unparse(lambdas[0])}\n", "student_lambda"


def is_stub(func) -> bool:
    """True while the function body is still only `...` or `pass` (plus a docstring)."""
    try:
        tree = ast.parse(source_of(func)[0])
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


def _broken(text: str) -> Outcome:
    return Outcome(error=RuntimeError(f"the exercise runner itself failed: {text}"))


def run_isolated(func, *args, timeout: float = 5.0, repeat: int | None = None, on_start=None) -> Outcome:
    """Call `func(*args)` in a fresh process under a supervisor; stop it after `timeout` seconds.
    With `repeat`, call it that many times there and bring back the list of values. `on_start`
    is called with the supervisor's pid once it runs (Background uses it to see the function start).

    Whatever the function does (fork, detach, print forever, leave threads or sockets), it comes
    back as an Outcome, every process it started is killed, and this returns within
    timeout + MARGIN seconds.
    """
    if not callable(func):
        raise TypeError(f"expected a function, got {type(func).__name__}: define it with def, then pass its name")
    source, name = source_of(func)
    job = pickle.dumps({"source": source, "name": name, "args": args, "timeout": timeout, "repeat": repeat})
    proc = processes.start("exercises.sandbox", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=workspace().dir, skip_site=True)
    if on_start is not None:
        on_start(proc.pid)
    try:
        out, err = proc.communicate(job, timeout=timeout + MARGIN)
    except subprocess.TimeoutExpired:
        return _broken(f"no report within {timeout + MARGIN:.0f} s")
    finally:
        if proc.poll() is None:
            processes.stop(proc, timeout=3.0)  # SIGTERM: the supervisor kills its descendants first
    try:
        report = json.loads(out.decode())
    except ValueError:
        lines = err.decode(errors="replace").strip().splitlines()
        return _broken(f"exit status {proc.returncode}" + (f", {lines[-1]}" if lines else ""))
    return _outcome(report, timeout)


class Background:
    """`run_isolated(func, *args)` in a thread of ours, so that a checker can play the peer meanwhile.

    The checker drives puppets (the other end of the student's socket) while the function runs;
    `done()` says whether it has finished, `join()` returns its Outcome. Introduced in 06.
    """

    def __init__(self, func, *args, timeout: float = 5.0):
        self.outcome: Outcome | None = None
        self._timeout = timeout
        self._supervisor: int | None = None
        self._thread = threading.Thread(target=self._run, args=(func, args), daemon=True, name="exercise-run")
        self._thread.start()

    def _run(self, func, args) -> None:
        try:
            self.outcome = run_isolated(func, *args, timeout=self._timeout, on_start=self._started_by)
        except BaseException as error:  # e.g. a source that cannot be read: reported like an error of theirs
            self.outcome = Outcome(error=error)

    def _started_by(self, pid: int) -> None:
        self._supervisor = pid

    def started(self) -> bool:
        """Has the function's own process started (the supervisor forked it), or the run ended?

        A checker waits for this before its scenario's clock starts: starting the supervisor takes
        a while on a busy machine, and that time is not the student's."""
        return self.done() or self.student_pid() is not None

    def student_pid(self) -> int | None:
        """The pid of the process running the function, while it runs (the supervisor's only child)."""
        try:
            with open(f"/proc/{self._supervisor}/task/{self._supervisor}/children") as f:
                pids = f.read().split()
        except (OSError, TypeError):
            return None
        return int(pids[0]) if pids else None

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> Outcome:
        """Wait for the run: run_isolated itself ends within its timeout + MARGIN."""
        self._thread.join(self._timeout + MARGIN + 5.0)
        return self.outcome or _broken("the run did not finish")
