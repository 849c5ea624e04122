"""The student's edition in a real JupyterLab: what a student sees, does, and keeps.

One JupyterLab serves the student's edition, made as `make lab` makes it (`Edition.sync()` from a
copy of notebooks/, see browser_lab.py). We walk it as a student does:

- a lesson opens with no experiment output in any code cell;
- in 01, we answer the first prediction (a choice, then "Lock in my answer"), run the experiment,
  and the reveal shows our answer beside what the kernel did;
- 00's progress view counts that prediction;
- a `git pull` that changes the reference lesson leaves the student's saved copy byte for byte;
- the three diagrams render (00's life of a socket, 03's accept queue, 06's TCP close);
- a "Going deeper" section (06's) opens folded.

Screenshots go to artifacts/browser/: student-prediction-before.png, student-prediction-after.png,
student-progress.png, diagram-socket-life.png, diagram-accept-queue.png, diagram-tcp-close.png,
student-going-deeper-folded.png. Every wait is a Playwright wait with a timeout.
Skips without /usr/bin/chromium, except under CI=true where that is a failure.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from browser_lab import (
    REPO,
    SHOWN,
    LabServer,
    command,
    open_notebook,
    require_chromium,
    running_lab,
    wait_for_idle,
)

from helpers.edition import Edition

pytestmark = [pytest.mark.browser, pytest.mark.lessons]

ARTIFACTS = REPO / "artifacts" / "browser"
LESSON = "01-socket-creation.ipynb"
QUESTION = "01-first-fd"
ANSWER = "the lowest free number"
CELL_TIMEOUT_MS = 60_000
DIAGRAMS = {  # figure -> the lesson that shows it
    "socket-life": "00-start-here.ipynb",
    "accept-queue": "03-listen-and-backlog.ipynb",
    "tcp-close": "06-close-semantics.ipynb",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab serving the student's edition, as `make lab` does."""
    require_chromium()
    with running_lab(REPO / "notebooks", tmp_path_factory.mktemp("student-lab"), ARTIFACTS / "jupyterlab-student.log",
                     student=True) as server:
        yield server


def notebook_cells(page):
    return page.locator(f"{SHOWN} .jp-Cell")


def cell_index(path, needle: str) -> int:
    """The index of the first cell whose source contains `needle` (in the student's copy on disk)."""
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if needle in cell.source:
            return index
    raise AssertionError(f"no cell of {path.name} contains {needle!r}")


def open_lesson_unrun(page, lab: LabServer, name: str) -> None:
    """Open the student's copy of a lesson and check that no code cell shows any output yet."""
    open_notebook(page, lab, name)
    outputs = page.locator(f"{SHOWN} .jp-CodeCell .jp-OutputArea-output")
    assert outputs.count() == 0, f"{name}: {outputs.count()} outputs visible before any cell ran"


def run_cell(page, index: int, count: int) -> None:
    """Run the cell at `index` as Shift+Enter would; wait until it shows `[count]` and the kernel is Idle."""
    page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index)
    command(page, "notebook:run-cell")
    page.wait_for_function(
        "([i, n]) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount === n",
        arg=[index, count], timeout=CELL_TIMEOUT_MS,
    )
    wait_for_idle(page)


def answer_prediction(cell, choice: str) -> None:
    """Click a choice of the predict widget, then "Lock in my answer"; wait until it says it is recorded."""
    from playwright.sync_api import expect

    cell.get_by_role("button", name=choice, exact=True).click()
    cell.get_by_role("button", name="Lock in my answer").click()
    expect(cell.locator(".widget-html-content").last).to_contain_text(f"recorded: you said {choice}", timeout=15_000)


def screenshot_cells(page, first: int, last: int, name: str) -> None:
    """One PNG of the cells `first` to `last` (scrolled to the top of the notebook panel)."""
    cells = notebook_cells(page)
    cells.nth(first).evaluate("node => node.scrollIntoView({block: 'start'})")
    top, bottom = cells.nth(first).bounding_box(), cells.nth(last).bounding_box()
    clip = {"x": top["x"], "y": top["y"], "width": top["width"], "height": bottom["y"] + bottom["height"] - top["y"]}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), clip=clip)


def save_notebook(page) -> None:
    """Save as a student does (autosave is off here): wait until the document is no longer dirty."""
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"), "nothing to save"
    command(page, "docmanager:save")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)


def progress_row(cell, lesson: str) -> list[str]:
    """The progress table's cells for one lesson ("01 socket creation", "1 of 7", "1", "0 of 3")."""
    row = cell.locator("tr", has_text=lesson)
    row.wait_for(timeout=CELL_TIMEOUT_MS)
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def pull_a_change(reference) -> None:
    """What a `git pull` of a course update does: a new sentence in the reference lesson's first cell."""
    nb = nbformat.read(reference, as_version=4)
    nb.cells[0].source += "\n\nA sentence the course added after your copy was made."
    nbformat.write(nb, reference)


def test_prediction_counts_and_survives_a_pull(lab, page):
    from playwright.sync_api import expect

    assert any("made your own copies" in line for line in lab.sync_lines), lab.sync_lines
    copy = lab.root_dir / LESSON
    asked, experiment = cell_index(copy, f'predict("{QUESTION}"'), cell_index(copy, f'reveal("{QUESTION}"')
    open_lesson_unrun(page, lab, LESSON)

    # Everything up to the question, as a student runs it: code cells only, one after the other.
    before = [i for i, c in enumerate(nbformat.read(copy, as_version=4).cells[:asked + 1])
              if c.cell_type == "code" and c.source.strip()]
    for count, index in enumerate(before, start=1):
        run_cell(page, index, count)
    cells = notebook_cells(page)
    answer_prediction(cells.nth(asked), ANSWER)
    assert cells.nth(experiment).locator(".jp-OutputArea-output").count() == 0, "the experiment shows output unrun"
    screenshot_cells(page, asked - 1, experiment, "student-prediction-before.png")

    run_cell(page, experiment, len(before) + 1)
    verdict = cells.nth(experiment).locator(".jp-OutputArea-output").first
    expect(verdict).to_contain_text(re.compile(rf"^[✓✗] you said {ANSWER}, the kernel gave it \d+: "), timeout=15_000)
    right = verdict.inner_text().startswith("✓")
    question = cells.nth(asked)
    expect(question.locator(".widget-html-content").last).to_contain_text(f"you said {ANSWER}, the kernel gave it")
    expect(question.get_by_role("button", name="Lock in my answer")).to_be_disabled()
    screenshot_cells(page, asked - 1, experiment, "student-prediction-after.png")
    save_notebook(page)  # the student keeps their work: the copy now differs from the one `sync` made
    saved = copy.read_bytes()
    assert b"you said the lowest free number" in saved

    # 00's progress view counts the prediction.
    start = lab.root_dir / "00-start-here.ipynb"
    view = cell_index(start, "progress()")
    open_lesson_unrun(page, lab, start.name)
    run_cell(page, cell_index(start, "from helpers.progress import progress"), 1)
    run_cell(page, view, 2)
    lesson, made, right_count, _ = progress_row(notebook_cells(page).nth(view), "01 socket creation")
    assert re.fullmatch(r"1 of \d+", made), f"row {lesson}: predictions made {made!r}, want 1 of the lesson's"
    assert right_count == ("1" if right else "0")
    screenshot_cells(page, view - 1, view, "student-progress.png")

    # A `git pull` changes the reference lesson: the next `make lab` says so and keeps the copy.
    pull_a_change(lab.reference / LESSON)
    lines = Edition(lab.reference, lab.root_dir).sync()
    assert lines == ["lesson 01 has a newer version; your copy is kept; `make reset LESSON=01` "
                     "gives you the new one (your copy is saved beside it first)"], lines
    assert copy.read_bytes() == saved, "sync rewrote the student's copy"


@pytest.mark.parametrize("figure", DIAGRAMS)
def test_diagram_renders(lab, page, figure):
    lesson = DIAGRAMS[figure]
    open_lesson_unrun(page, lab, lesson)
    image = page.locator(f'.jp-RenderedMarkdown img[src*="{figure}.svg"]')
    found = image.count()
    assert found == 1, f"{lesson}: {found} images of {figure}.svg"
    image.evaluate("node => node.scrollIntoView({block: 'center'})")
    page.wait_for_function("node => node.complete", arg=image.element_handle(), timeout=30_000)  # loaded, or failed
    size = image.evaluate("node => [node.naturalWidth, node.clientWidth, node.clientHeight]")
    assert size[0] > 0 and min(size[1:]) > 100, f"{figure}.svg did not render: natural width, shown size {size}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.screenshot(path=str(ARTIFACTS / f"diagram-{figure}.png"))


def first_heading_level(cell) -> int | None:
    """The level of a markdown cell's first heading, wherever it is in the cell, as JupyterLab reads it."""
    match = re.search(r"^(#{1,6}) ", cell.source, re.M) if cell.cell_type == "markdown" else None
    return len(match.group(1)) if match else None


def test_going_deeper_opens_folded(lab, page):
    lesson = "06-close-semantics.ipynb"  # one the other tests never save
    nb = nbformat.read(lab.root_dir / lesson, as_version=4)
    heading = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Going deeper"))
    assert nb.cells[heading].metadata.get("jp-MarkdownHeadingCollapsed") is True
    end = next(i for i in range(heading + 1, len(nb.cells)) if (first_heading_level(nb.cells[i]) or 9) <= 2)
    open_lesson_unrun(page, lab, lesson)
    cells = notebook_cells(page)
    cells.nth(heading).wait_for(state="visible", timeout=10_000)
    hidden = [i for i in range(heading + 1, end) if cells.nth(i).is_hidden()]
    assert hidden == list(range(heading + 1, end)), f"cells {heading + 1}..{end - 1} under Going deeper: hidden {hidden}"
    assert cells.nth(end).is_visible(), "the section after Going deeper is folded too"
    screenshot_cells(page, heading - 1, end, "student-going-deeper-folded.png")
