"""Run lesson notebooks cell by cell in real Jupyter kernels, and look at the processes they leave.

The fault tests need what nbval does not give: the kernel's pid (to kill it), the helper
processes under it, its open descriptors between cells, and control over when to interrupt.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from jupyter_client.manager import KernelManager

from helpers.observe import wait_until
from helpers.socket_dir import short_base

ROOT = Path(__file__).resolve().parent.parent
_LIBRARY_DIRS = tuple({sys.prefix + "/", sys.base_prefix + "/"})
_TRANSIENT = {"anon_inode:[eventfd]"}
_HISTORY = re.compile(r"/history\.sqlite(-journal|-wal|-shm)?$|/profile_[^/]+$")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@dataclass
class Cell:
    source: str
    tags: tuple[str, ...]

    @property
    def may_raise(self) -> bool:
        return "raises-exception" in self.tags


def code_cells(notebook: Path) -> list[Cell]:
    cells = json.loads(notebook.read_text())["cells"]
    return [Cell("".join(c["source"]), tuple(c.get("metadata", {}).get("tags", [])))
            for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


@dataclass
class Result:
    error: str | None = None  # "KeyboardInterrupt: ..." etc.
    outputs: list[dict] = field(default_factory=list)


def kernel_runtime_dir() -> Path:
    """A private directory (0700) for kernels' connection files and their AF_UNIX sockets.

    The tests' kernels (here, nbval's and the test lab's) talk over AF_UNIX sockets (transport "ipc"), not
    TCP: over TCP, jupyter_client picks a kernel's ports by binding port 0 and letting go, and on a
    loaded test run another process can take one before the kernel binds it; the kernel then dies,
    and every restart reuses the same ports (seen: 'Address already in use' six times, then 'Kernel
    died'). Their paths, <dir>/kernel-<uuid>-ipc-<n> at most, must fit in sun_path: a short base."""
    longest = len("/sll-kernel-12345678/kernel-") + 36 + len("-ipc-5")
    return Path(tempfile.mkdtemp(prefix="sll-kernel-", dir=short_base(room=longest)))


def start_kernel(kernel_name: str = "python3", startup_timeout: float = 60.0, kernel_spec_manager=None, **start):
    """jupyter_client's start_new_kernel (nbval has a copy), over AF_UNIX sockets in a directory of its own
    (`kernel_runtime_dir`): the kernel's manager and a client that has seen it ready. `start` goes to
    start_kernel (cwd, env, ...). The directory goes when the manager is collected (a reference cycle keeps
    it until CPython's next collection: nbval's kernels, which we cannot see stop), or by `Kernel.shutdown`."""
    runtime_dir = kernel_runtime_dir()
    options = {"kernel_spec_manager": kernel_spec_manager} if kernel_spec_manager is not None else {}
    manager = KernelManager(kernel_name=kernel_name, transport="ipc",
                            connection_file=str(runtime_dir / "kernel.json"), **options)
    weakref.finalize(manager, shutil.rmtree, runtime_dir, True)
    manager.start_kernel(**start)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=startup_timeout)
    except RuntimeError:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        raise
    return manager, client


class Kernel:
    """A Python kernel started in notebooks/, as JupyterLab and nbval start it (over AF_UNIX sockets:
    `start_kernel`).

    Cells are sent with stop_on_error=False, as nbval sends them: ipykernel sends a failed cell's reply
    first and only then starts to abort the requests queued behind it, so a cell sent the moment that
    reply arrives was sometimes aborted unrun (status "aborted": seen after the Stop button's
    KeyboardInterrupt, in lessons 00 and 09). A student runs the next cell later than that; Run All's
    own stop at an error is the browser tests' to see.
    """

    def __init__(self, env: dict | None = None):
        self.env = dict(os.environ, **(env or {}))
        self.manager, self.client = start_kernel("python3", 60, cwd=str(ROOT / "notebooks"), env=self.env)
        self.pid = self.manager.provisioner.pid

    def run(self, code: str, timeout: float = 60.0) -> Result:
        """Execute `code`; return its error (if any) and outputs."""
        result = Result()

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            if kind in ("stream", "display_data", "execute_result", "error"):
                result.outputs.append(content)

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False,
                                                stop_on_error=False)
        content = reply["content"]
        if content["status"] != "ok" and result.error is None:
            # the reply carries the outcome where IOPub shows none: a request aborted unrun ("aborted"), or an
            # error message lost on IOPub, which is publish/subscribe (the shell channel drops nothing)
            result.error = f"{content.get('ename', content['status'])}: {content.get('evalue', '')} (from the reply)"
        return result

    def start(self, code: str) -> str:
        """Send `code` without waiting for it; returns the message id."""
        return self.client.execute(code, allow_stdin=False, stop_on_error=False)

    def wait_output(self, msg_id: str, text: str, timeout: float) -> None:
        """Wait until the cell `msg_id` has printed `text`: its code is running, not just announced."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if (msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id
                    and text in msg["content"]["text"]):
                return

    def wait_reply(self, msg_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.client.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no reply within {timeout} s") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def helpers(self) -> list[psutil.Process]:
        """The kernel's child processes (puppets, exercise runners)."""
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def fds(self) -> dict[int, str]:
        """The kernel's descriptors, leaving out those that are not ours to leak.

        - matplotlib opens its font files at the first plot and keeps them in a cache for the life
          of the process: files under the Python installation, opened once, never sockets or pipes;
        - ipykernel opens an eventfd for each thread that sends output (our cards are updated from
          other threads) and closes those of ended threads only every 10 s;
        - the IPython history database is open only while it writes, and so is its directory (the
          profile's), which SQLite opens to sync it after a write (seen once at the end of a lesson).
        The helpers never make an eventfd, so leaving them out hides no leak of ours.
        """
        table = {}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except OSError:
                continue
            if not (target.startswith(_LIBRARY_DIRS) or target in _TRANSIENT or _HISTORY.search(target)):
                table[int(name)] = target
        return table

    def settled_fds(self, expected: dict[int, str], timeout: float = 2.0) -> dict[int, str]:
        """The kernel's descriptors once they are back to `expected` (or whatever they are at the timeout):
        a helper's pipes close when its reader sees the end, a moment after the cell returns.

        Garbage is collected first. A socket held only by a reference cycle (registered in a selector
        that a re-run cell replaced: the selector's map points back at the selector) is closed at
        CPython's next collection, which comes when it comes: late, not leaked."""
        self.client.execute_interactive("__import__('gc').collect()", silent=True, timeout=30)
        wait_until(lambda: len(self.fds()) == len(expected), timeout)
        return self.fds()

    def restart(self) -> None:
        """Restart the kernel as JupyterLab's Restart does (the old one is killed with its process group)."""
        self.manager.restart_kernel(now=True)
        self.pid = self.manager.provisioner.pid
        self.client.wait_for_ready(timeout=60)

    def shutdown(self) -> None:
        try:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=True)
        except Exception:
            pass
        shutil.rmtree(Path(self.manager.connection_file).parent, ignore_errors=True)  # at once, not at collection

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def gone_within(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited (or is a zombie); return those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def long_tmpdir(base: Path, length: int = 150) -> Path:
    """A directory whose path is exactly `length` bytes long, created under `base`."""
    path = (str(base) + ("/" + "d" * 40) * (length // 41 + 1))[:length]
    if path.endswith("/"):
        path = path[:-1] + "x"
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    assert len(os.fsencode(str(directory))) == length
    return directory
