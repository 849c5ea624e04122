"""Every notebook, run for real in JupyterLab in headless Chromium; and a live card flipping by itself.

One JupyterLab serves the whole module: the student's edition (outputs cleared) of a temp copy of
notebooks/, as `make lab` serves it (see browser_lab.py). It is loaded once in one page, and each
notebook is opened there with a fresh kernel: Run All, every code cell must show `[N]` with counts
1..n, no error or stderr outside cells tagged `raises-exception`; then the notebook is closed, its
kernel shut down, and no process it started may survive (the `page` fixture, tests/conftest.py). Screenshots go to
artifacts/browser/<notebook>.jpg: its first screenful, or the whole notebook when something failed.

Skips without /usr/bin/chromium, except under CI=true where that is a failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from browser_lab import (
    REPO,
    SHOWN,
    code_cells,
    command,
    open_notebook,
    require_chromium,
    run_all,
    running_lab,
    screenshot,
    unexpected_errors,
    wait_for_counts,
    wait_until_all_ran,
)

pytestmark = [pytest.mark.browser, pytest.mark.lessons]

ARTIFACTS = REPO / "artifacts" / "browser"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
RUN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab for the module, serving the student's edition as `make lab` does (outputs cleared);
    stopped (SIGTERM, then kill) as soon as the module is done."""
    require_chromium()
    with running_lab(REPO / "notebooks", tmp_path_factory.mktemp("jupyterlab"), ARTIFACTS / "jupyterlab.log",
                     student=True) as server:
        yield server


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS] or [
    pytest.param("none", marks=pytest.mark.skip(reason="notebooks/ holds no notebook yet")),
])
def test_notebook_runs_in_jupyterlab(lab, page, name):
    committed = json.loads((lab.root_dir / name).read_text())
    shot = ARTIFACTS / f"{Path(name).stem}.jpg"
    open_notebook(page, lab, name)
    run_all(page)
    try:
        seen = wait_until_all_ran(page, RUN_TIMEOUT)
    except BaseException:
        screenshot(page, shot)
        raise
    errors = unexpected_errors(seen)
    ran = code_cells(seen)
    counts = [c["count"] for c in ran]
    in_order = counts == list(range(1, len(ran) + 1))
    screenshot(page, shot, max_tiles=60 if errors or not in_order else 1)

    assert len(seen) == len(committed["cells"]), "JupyterLab shows a different number of cells than the file"
    assert not errors, "error output in cells not tagged raises-exception:\n" + "\n".join(errors)
    assert in_order, f"execution counts {counts}: not every code cell ran, in order"


LIVE_CELLS = [
    "from helpers import Puppet, workspace\nimport socket",
    'srv = Puppet("server")\ns = srv.socket(socket.AF_UNIX)\np = workspace().path("live.sock")\n'
    "s.bind(p)\ns.listen(1)\ncall = s.accept()\ncall",
    'cli = Puppet("client")\nc = cli.socket(socket.AF_UNIX)\nc.connect(p)',
]


def test_live_card_changes_without_rerunning_the_cell(lab, page):
    from playwright.sync_api import expect

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in LIVE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    name = "zz-live-card.ipynb"
    nbformat.write(nb, lab.root_dir / name)

    open_notebook(page, lab, name)
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0; }")
    command(page, "notebook:run-cell-and-select-next")
    command(page, "notebook:run-cell-and-select-next")
    card = page.locator(f"{SHOWN} .jp-Cell").nth(1).locator(".widget-html-content")
    try:
        expect(card).to_contain_text("blocked in accept4", timeout=30_000)
        before = wait_for_counts(page, {0: 1, 1: 2})
        assert before[2]["count"] is None
        blocked_text = card.inner_text()

        command(page, "notebook:run-cell-and-select-next")  # the client connects: accept returns
        expect(card).to_contain_text("returned", timeout=15_000)
        after = wait_for_counts(page, {2: 3})
    finally:
        screenshot(page, ARTIFACTS / "live-card-timeline.jpg")
    assert after[1]["count"] == 2, "the accept cell was re-run"
    assert not unexpected_errors(after), unexpected_errors(after)
    assert "blocked in accept4" in blocked_text and "returned" in card.inner_text()
    assert re.search(r"blocked in accept4.* at \d+\.\d\d s.*\n.*returned.* at \d+\.\d\d s", card.inner_text()), (
        "the flipped card keeps its timeline: blocked at ..., then returned at ...")
