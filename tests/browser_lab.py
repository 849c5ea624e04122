"""A real JupyterLab driven by Debian's headless Chromium, for tests/test_browser.py.

    lab = LabServer(Path("notebooks"), workdir)    # jupyter lab on 127.0.0.1:<free port> with a token,
    lab.start()                                    #   fresh config/data/runtime dirs, a *copy* of notebooks/
    with chromium() as browser:                    # /usr/bin/chromium through Playwright (sync API)
        page = new_page(browser)
        open_notebook(page, lab, "01-socket-creation.ipynb")   # waits for "| Idle" in the status bar
        run_all(page)                              # clear outputs, Run All
        cells = wait_until_all_ran(page, 120)      # every code cell shows [N], kernel Idle again
        lab.shutdown_kernels()                     # DELETE /api/sessions/..., then check no process survives
    lab.stop()                                     # SIGTERM (it shuts its kernels down), wait, kill if needed

Two pitfalls shape it: Playwright's own browser download does not work here (Debian's chromium is
used instead), and a Run All sent before the status bar says `| Idle` is silently lost.
The notebook under test is a copy and autosave is off, so a run never rewrites a committed notebook.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from kernels import kernel_runtime_dir

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
# The student's overrides (etc/) plus what a test needs: every cell in the DOM, no autosave.
TEST_SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}
# The notebook shown (others may be open behind it, hidden by Lumino): every selector starts here.
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"
IDLE = re.compile(r"^(?!No Kernel).*\| Idle$")  # "Python 3 (ipykernel) | Idle"
PROMPT_DONE = re.compile(r"^\[\d+\]")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_chromium() -> None:
    """Skip (or, under CI=true, fail) when Debian's chromium is not installed."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install it as root with `apt-get install chromium` (`make test` does)"
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # preexec_fn: if pytest is killed, the server goes too
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class LabServer:
    """`jupyter lab` on 127.0.0.1 serving a temp copy of `source` (a notebooks/ folder)."""

    def __init__(self, source: Path, workdir: Path, student: bool = False):
        """`student=True` serves what `make lab` serves: the student's edition made by `Edition.sync()`
        from a copy of `source` (kept as `self.reference`, the folder a `git pull` would change)."""
        self.workdir = workdir
        self.root_dir = workdir / "root"
        self.reference = workdir / "reference"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "jupyterlab.log"
        self.runtime_dir = kernel_runtime_dir()
        self.proc: subprocess.Popen | None = None
        self.seen: dict[int, tuple[float, str]] = {}  # pid -> (create time, cmdline): every descendant seen
        self.sync_lines: list[str] = []  # what the student's first `make lab` printed
        ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
        if student:
            from helpers.edition import Edition

            shutil.copytree(source, self.reference, ignore=ignore)
            self.sync_lines = Edition(self.reference, self.root_dir).sync()
        else:
            shutil.copytree(source, self.root_dir, ignore=ignore)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            path = self.workdir / var.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[var] = str(path)
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime_dir)
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_CONFIG_PATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _settings_dir(self) -> Path:
        settings = json.loads((REPO / "etc" / "jupyterlab-overrides.json").read_text())
        for plugin, values in TEST_SETTINGS.items():
            settings.setdefault(plugin, {}).update(values)
        directory = self.workdir / "lab-settings"
        directory.mkdir(exist_ok=True)
        (directory / "overrides.json").write_text(json.dumps(settings, indent=2))
        return directory

    def start(self, timeout: float = 60.0) -> None:
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}", "--LabApp.expose_app_in_browser=True",
            f"--LabApp.app_settings_dir={self._settings_dir()}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
            "--KernelManager.transport=ipc",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self._env(), cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"jupyter lab did not answer /api/status within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, timeout: float = 10.0):
        """One REST call with the token; returns the decoded JSON (or None for an empty body)."""
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def remember_descendants(self) -> None:
        """Note every process below the server now (kernels, puppets), to check later none survives."""
        if self.proc is None:
            return
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            try:
                self.seen[child.pid] = (child.create_time(), " ".join(child.cmdline())[:200])
            except psutil.Error:
                pass

    def survivors(self) -> list[psutil.Process]:
        """Processes that were once below the server and are still alive (not counting the server)."""
        alive = []
        for pid, (created, _) in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.Error:
                pass
        return alive

    def shutdown_kernels(self, timeout: float = 20.0) -> list[str]:
        """Delete every session (and so its kernel); wait until no kernel and no process of theirs is left.

        Returns a description of each process that had to be killed (empty when all went by themselves).
        """
        self.remember_descendants()
        for session in self.api("GET", "/api/sessions"):
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=timeout)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.api("GET", "/api/kernels") or self.survivors()):
            time.sleep(0.1)
        return self.kill_survivors()

    def kill_survivors(self) -> list[str]:
        killed = []
        for process in self.survivors():
            killed.append(f"pid {process.pid}: {self.seen[process.pid][1]}")
            try:
                process.kill()
            except psutil.Error:
                pass
        self.seen.clear()
        return killed

    def stop(self, timeout: float = 20.0) -> list[str]:
        """SIGTERM (the server shuts its kernels down), wait, SIGKILL if needed; kill any leftover child."""
        if self.proc is None:
            return []
        self.remember_descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.survivors():
            time.sleep(0.1)
        leftovers = self.kill_survivors()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        return leftovers


@contextmanager
def running_lab(source: Path, workdir: Path, log_copy: Path, student: bool = False):
    """A started LabServer; afterwards stopped, its log copied to `log_copy`, and no process of it alive."""
    server = LabServer(source, workdir, student=student)
    server.start()
    try:
        yield server
    finally:
        leftovers = server.stop()
        log_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(server.log_path, log_copy)
    assert not leftovers, f"processes still alive after jupyter lab stopped (killed now): {leftovers}"


@contextmanager
def chromium():
    """Debian's chromium through Playwright: one browser for many pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int = 1280, height: int = 2000):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def close_page(page) -> None:
    page.context.close()


def status_idle(page) -> bool:
    return page.locator(".jp-StatusBar-Widget").get_by_text(IDLE).count() > 0


def wait_for_idle(page, timeout: float = 60.0) -> None:
    page.locator(".jp-StatusBar-Widget").get_by_text(IDLE).first.wait_for(timeout=timeout * 1000)


def open_notebook(page, lab: LabServer, name: str, timeout: float = 90.0) -> None:
    """Open `name` and wait until its kernel is idle. A page that has not loaded JupyterLab yet loads it
    with the notebook in a fresh workspace (?reset: no notebook of an earlier run comes back); one that
    has opens it in the JupyterLab it holds (`docmanager:open`), which spares loading the whole
    application again (~5 s of CPU). A notebook opened earlier stays open behind it until
    `close_notebooks`."""
    if page.evaluate("() => !!(window.jupyterapp && window.jupyterapp.started)"):
        command(page, "docmanager:open", {"path": name})
    else:
        page.goto(lab.url(f"/lab/tree/{name}?reset"))
    page.wait_for_function(  # shown, with its cells (another notebook may be open behind it)
        "name => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path.endsWith(name) && w.isVisible && w.content.widgets.length > 0; }",
        arg=name, timeout=timeout * 1000,
    )
    # The status bar follows the current notebook; its kernel's own status first, so that the
    # status bar cannot still show the previous notebook's "Idle".
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
        " return s.session && s.session.kernel && s.session.kernel.status === 'idle'; }",
        timeout=timeout * 1000,
    )
    wait_for_idle(page, timeout)


def close_notebooks(page) -> None:
    """Close every open document without the "save your work?" dialog (the copy under test is never
    saved); their kernels keep running until `LabServer.shutdown_kernels()`."""
    page.evaluate("""() => {
        for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
            if (widget.context) widget.context.model.dirty = false;
            widget.dispose();
        }
    }""")


class Tab:
    """One browser page kept for many tests, each opening its notebook in the JupyterLab it loaded once.

    `use()` gives the page; `done()` closes its notebooks and shuts their kernels down, returning
    whatever had to be killed; a page left in an unknown state (an error while closing) is thrown
    away, and the next `use()` loads JupyterLab in a new one.
    """

    def __init__(self, browser, lab: LabServer):
        self._browser, self._lab, self._page = browser, lab, None

    def use(self):
        if self._page is None or self._page.is_closed():
            self._page = new_page(self._browser)
        return self._page

    def done(self) -> list[str]:
        try:
            close_notebooks(self._page)
        except Exception:  # whatever broke, a fresh page starts clean
            self.close()
        return self._lab.shutdown_kernels()

    def close(self) -> None:
        if self._page is not None and not self._page.is_closed():
            close_page(self._page)
        self._page = None


def command(page, name: str, args: dict | None = None) -> None:
    """Run a JupyterLab command and wait for it. Its value stays in the page: `docmanager:open`'s is the
    notebook widget, whose whole object graph Playwright would otherwise copy over (~3 s of CPU)."""
    page.evaluate("async ([name, args]) => { await window.jupyterapp.commands.execute(name, args || {}); }",
                  [name, args])


def run_all(page) -> None:
    """Clear every output and execution count (so `[N]` can only come from this run), then Run All."""
    command(page, "notebook:clear-all-cell-outputs")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{SHOWN} .jp-CodeCell .jp-InputPrompt')]"
        ".every(p => !/\\[\\d+\\]/.test(p.textContent))", timeout=10_000,
    )
    command(page, "notebook:run-all-cells")


# What the live notebook model says about each cell: the source of truth for tags and outputs.
_CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => {
    const model = cell.model;
    const code = model.type === 'code';
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    return {
      index, type: model.type, source: model.sharedModel.getSource(),
      count: code ? model.executionCount : null,
      prompt: prompt ? prompt.textContent.trim() : '',
      tags: model.getMetadata('tags') || [],
      outputs: code ? model.outputs.toJSON().map(o => ({
        output_type: o.output_type, name: o.name || null, ename: o.ename || null, evalue: o.evalue || null,
        text: o.output_type === 'stream' ? String(o.text).slice(0, 500) : null,
      })) : [],
      stderr_nodes: cell.node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
    };
  });
}"""


def cells(page) -> list[dict]:
    return page.evaluate(_CELLS_JS)


def code_cells(all_cells: list[dict]) -> list[dict]:
    """The code cells a run executes (an empty code cell never gets an execution count)."""
    return [c for c in all_cells if c["type"] == "code" and c["source"].strip()]


def unexpected_errors(all_cells: list[dict]) -> list[str]:
    """Errors and stderr in cells not tagged raises-exception, one line each."""
    problems = []
    for cell in code_cells(all_cells):
        if "raises-exception" in cell["tags"]:
            continue
        for out in cell["outputs"]:
            if out["output_type"] == "error":
                problems.append(f"cell {cell['index']}: {out['ename']}: {out['evalue']}")
            elif out["output_type"] == "stream" and out["name"] == "stderr":
                problems.append(f"cell {cell['index']}: stderr: {out['text']!r}")
        if cell["stderr_nodes"] and not any(o["output_type"] in ("error", "stream") for o in cell["outputs"]):
            problems.append(f"cell {cell['index']}: {cell['stderr_nodes']} stderr output(s) in the page")
    return problems


# A cheap look at a running notebook, four times a second: how many code cells have no `[N]` yet,
# and whether a cell not tagged raises-exception has an error or stderr output (cells() once then).
_PROGRESS_JS = """() => {
  let pending = 0, troubled = false;
  for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) {
    const model = cell.model;
    if (model.type !== 'code' || !model.sharedModel.getSource().trim()) continue;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    if (!/^\\[\\d+\\]/.test(prompt ? prompt.textContent.trim() : '')) pending++;
    if ((model.getMetadata('tags') || []).includes('raises-exception')) continue;
    for (let i = 0; i < model.outputs.length; i++) {
      const out = model.outputs.get(i);
      if (out.type === 'error' || (out.type === 'stream' && out.toJSON().name === 'stderr')) troubled = true;
    }
  }
  return {pending, troubled};
}"""


def wait_until_all_ran(page, timeout: float = 120.0) -> list[dict]:
    """Poll until every code cell shows `[N]` and the kernel is Idle; stop early on an unexpected error."""
    deadline = time.monotonic() + timeout
    while True:
        progress = page.evaluate(_PROGRESS_JS)
        if progress["troubled"]:
            # Run All stops at an untagged error; give the status bar a moment, then report.
            return cells(page)
        if not progress["pending"] and status_idle(page):
            return cells(page)
        if time.monotonic() > deadline:
            now = cells(page)
            pending = [c["index"] for c in code_cells(now) if not PROMPT_DONE.match(c["prompt"])]
            raise TimeoutError(f"after {timeout} s, code cells {pending} have not run "
                               f"(prompts: {[c['prompt'] for c in code_cells(now)]})")
        time.sleep(0.25)


def wait_for_counts(page, counts: dict[int, int], timeout: float = 30.0) -> list[dict]:
    """Wait until the cells at these indexes show these execution counts and the kernel is Idle."""
    deadline = time.monotonic() + timeout
    while True:
        now = cells(page)
        if all(now[i]["count"] == n for i, n in counts.items()) and status_idle(page):
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"wanted counts {counts}, prompts are {[c['prompt'] for c in now]}")
        time.sleep(0.1)


_SCROLLER = (f"(document.querySelector('{SHOWN} .jp-WindowedPanel-outer')"
             f" || document.querySelector('{SHOWN} .jp-NotebookPanel-notebook'))")


# Resolves once the page has painted what the last scroll showed: two animation frames later.
_PAINTED_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def screenshot(page, path: Path, max_tiles: int = 60) -> None:
    """The notebook in one JPEG (a PNG this tall takes a second to write), from the top down to its end
    or to `max_tiles` screenfuls. JupyterLab scrolls inside its own panel (and Chromium caps the viewport
    near 16k px), so we scroll that panel a screenful at a time and stitch the pieces."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    box = page.evaluate(f"""() => {{
        const s = {_SCROLLER};
        const last = [...document.querySelectorAll('{SHOWN} .jp-Cell')].pop();
        if (!s || !last) return null;
        s.scrollTop = 0;
        const r = s.getBoundingClientRect();
        return {{x: Math.floor(r.x), y: Math.floor(r.y), width: Math.floor(r.width), height: Math.floor(s.clientHeight),
                 end: Math.ceil(last.getBoundingClientRect().bottom - r.y) + 16}};
    }}""")
    if box is None:
        page.screenshot(path=str(path))
        return
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"]}
    canvas = Image.new("RGB", (box["width"], max(box["end"], box["height"])), "white")
    offset = bottom = 0
    for _ in range(max_tiles):
        top = page.evaluate(f"o => {{ const s = {_SCROLLER}; s.scrollTop = o; return Math.round(s.scrollTop); }}", offset)
        page.evaluate(_PAINTED_JS)
        canvas.paste(Image.open(io.BytesIO(page.screenshot(clip=clip, type="jpeg", quality=90))), (0, top))
        bottom = top + box["height"]
        if bottom >= box["end"] or top < offset:  # done, or the panel scrolls no further
            break
        offset = bottom
    page.evaluate(f"() => {{ {_SCROLLER}.scrollTop = 0; }}")
    canvas.crop((0, 0, box["width"], max(min(box["end"], bottom), 1))).save(path, quality=90)
