"""The student's edition: copies made once with outputs cleared, never overwritten, reset on request."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers.edition import MANIFEST, Edition, lesson_number, main

REPO = Path(__file__).resolve().parent.parent


def write_lesson(folder: Path, name: str, code: str, result: str) -> Path:
    """A lesson as the reference edition commits it: a code cell with its output, saved widget state."""
    output = new_output("execute_result", {"text/plain": result}, execution_count=1)
    cell = new_code_cell(code, execution_count=1, outputs=[output])
    nb = new_notebook(cells=[new_markdown_cell(f"# {name}"), cell],
                      metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"x": result}}}})
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def edition(tmp_path) -> Edition:
    reference = tmp_path / "notebooks"
    (reference / "solutions").mkdir(parents=True)
    (reference / "solutions" / "01_first.py").write_text("def answer():\n    return 42\n")
    write_lesson(reference, "00-start.ipynb", "1 + 1", "2")
    write_lesson(reference, "01-first.ipynb", "6 * 7", "42")
    return Edition(reference, tmp_path / "my-notebooks")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def student_edits(path: Path, code: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = code
    nbformat.write(nb, path)


def test_first_start_copies_every_lesson_with_outputs_cleared(edition):
    lines = edition.sync()
    assert lines == [f"made your own copies of lessons 00, 01 in {edition.student}/ "
                     "(outputs cleared: each experiment shows its result when you run it)"]
    for name in ("00-start.ipynb", "01-first.ipynb"):
        copy = nbformat.read(edition.student / name, as_version=4)
        assert [c.cell_type for c in copy.cells] == ["markdown", "code"]
        assert copy.cells[1].outputs == [] and copy.cells[1].execution_count is None
        assert "widgets" not in copy.metadata
    assert (edition.student / "solutions" / "01_first.py").read_text().startswith("def answer")
    assert (edition.student / "solutions").is_symlink()


def test_a_second_start_changes_nothing(edition):
    edition.sync()
    before = snapshot(edition.student)
    assert edition.sync() == []
    assert snapshot(edition.student) == before


def test_a_reference_rerun_with_new_outputs_is_not_a_change(edition):
    edition.sync()
    path = edition.reference / "01-first.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs[0].data["text/plain"] = "42 (another run)"
    nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]["x"] = "another run"
    nbformat.write(nb, path)
    assert edition.sync() == []


def test_a_changed_lesson_is_reported_and_an_edited_copy_kept(edition):
    """The `git pull` case: the reference changes under a copy the student has worked in."""
    edition.sync()
    student_edits(edition.student / "01-first.ipynb", "my_answer = 6 * 7")
    mine = (edition.student / "01-first.ipynb").read_bytes()
    write_lesson(edition.reference, "01-first.ipynb", "6 * 7  # explained better", "42")
    expected = ["lesson 01 has a newer version; your copy is kept; `make reset LESSON=01` gives you the new one "
                "(your copy is saved beside it first)"]
    assert edition.sync() == expected
    assert (edition.student / "01-first.ipynb").read_bytes() == mine
    assert edition.sync() == expected  # told at every start until the student decides


def test_an_untouched_copy_of_a_changed_lesson_is_replaced(edition):
    edition.sync()
    write_lesson(edition.reference, "00-start.ipynb", "1 + 1  # new", "2")
    assert edition.sync() == ["lesson 00 has a newer version: your copy was untouched, so it is replaced"]
    assert nbformat.read(edition.student / "00-start.ipynb", as_version=4).cells[1].source == "1 + 1  # new"
    assert edition.sync() == []


def test_reset_replaces_one_lesson_and_keeps_the_old_copy_beside_it(edition):
    edition.sync()
    student_edits(edition.student / "01-first.ipynb", "my_answer = 6 * 7")
    mine = (edition.student / "01-first.ipynb").read_bytes()
    untouched = (edition.student / "00-start.ipynb").read_bytes()
    write_lesson(edition.reference, "01-first.ipynb", "6 * 7  # explained better", "42")

    lines = edition.reset("1")

    backups = list(edition.student.glob("01-first.saved-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == mine
    assert lines[0] == f"your copy of lesson 01 is saved as {backups[0]}"
    assert nbformat.read(edition.student / "01-first.ipynb", as_version=4).cells[1].source == "6 * 7  # explained better"
    assert (edition.student / "00-start.ipynb").read_bytes() == untouched
    assert edition.sync() == []  # the new copy is current: nothing more to say


def test_two_resets_in_one_second_keep_both_old_copies(edition):
    edition.sync()
    edition.reset("01")
    edition.reset("01")
    assert len(list(edition.student.glob("01-first.saved-*.ipynb"))) == 2


def test_a_deleted_copy_comes_back_and_a_new_lesson_is_added(edition):
    edition.sync()
    (edition.student / "00-start.ipynb").unlink()
    write_lesson(edition.reference, "02-second.ipynb", "2 ** 10", "1024")
    assert edition.sync() == [f"added your own copies of lessons 00, 02 in {edition.student}/ "
                              "(outputs cleared: each experiment shows its result when you run it)"]
    assert (edition.student / "02-second.ipynb").exists()


def test_a_lost_manifest_adopts_the_copies_without_touching_them(edition):
    edition.sync()
    student_edits(edition.student / "01-first.ipynb", "my_answer = 6 * 7")
    before = snapshot(edition.student)
    (edition.student / MANIFEST).unlink()
    assert edition.sync() == []
    after = snapshot(edition.student)
    assert {k: v for k, v in after.items() if k != MANIFEST} == {k: v for k, v in before.items() if k != MANIFEST}


def test_lesson_numbers_are_read_kindly_and_refused_clearly(edition):
    assert [lesson_number(t) for t in ("3", "03", "03-listen-and-backlog", "03-listen-and-backlog.ipynb")] == ["03"] * 4
    with pytest.raises(ValueError, match="is not a lesson: give its number"):
        lesson_number("three")
    with pytest.raises(ValueError, match="there is no lesson 09 in .*; lessons: 00, 01"):
        edition.reset("9")


def test_the_command_line(edition, capsys):
    args = ["--reference", str(edition.reference), "--student", str(edition.student)]
    assert main([*args, "sync"]) == 0
    assert capsys.readouterr().out.startswith("made your own copies of lessons 00, 01")
    assert main([*args, "reset", "7"]) == 2
    assert "error: there is no lesson 07" in capsys.readouterr().err
    assert main(["--reference", str(edition.student / "nothing"), "--student", str(edition.student), "sync"]) == 2
    assert "no lessons (NN-name.ipynb)" in capsys.readouterr().err


def test_the_real_lessons_copy_without_a_single_output(tmp_path):
    edition = Edition(REPO / "notebooks", tmp_path / "my-notebooks")
    edition.sync()
    lessons = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert sorted(p.name for p in edition.student.glob("*.ipynb")) == lessons
    for name in lessons:
        copy = json.loads((edition.student / name).read_text())
        assert [c.get("outputs") for c in copy["cells"] if c["cell_type"] == "code"] == \
               [[] for c in copy["cells"] if c["cell_type"] == "code"], name
    # the lessons name their reference solutions as `solutions/NN_name.py`, beside them
    assert sorted(p.name for p in (edition.student / "solutions").glob("*.py")) == \
           sorted(p.name for p in (REPO / "notebooks" / "solutions").glob("*.py"))
    # and their diagrams as `figures/name.svg`: every image a lesson links shows in the student's copy too
    linked = {m for name in lessons for m in re.findall(r"\]\((figures/[^)]+)\)", (REPO / "notebooks" / name).read_text())}
    assert linked and all((edition.student / path).is_file() for path in linked), linked


def test_the_capstones_starting_files_are_copied_once_and_never_overwritten(edition):
    (edition.reference / "capstone").mkdir()
    (edition.reference / "capstone" / "server.py").write_text("# TODO: your server\n")
    edition.sync()
    copy = edition.student / "capstone" / "server.py"
    assert copy.read_text() == "# TODO: your server\n" and not copy.is_symlink()
    copy.write_text("# the student's server\n")
    (edition.reference / "capstone" / "server.py").write_text("# a newer skeleton\n")
    assert edition.sync() == []
    assert copy.read_text() == "# the student's server\n"


def test_figures_are_real_files_in_the_students_folder_and_kept_current(edition):
    """JupyterLab shows an image only from inside the folder it serves: a link to notebooks/figures is refused."""
    figures = edition.reference / "figures"
    figures.mkdir()
    (figures / "life.svg").write_text("<svg>one</svg>")
    edition.student.mkdir()
    (edition.student / "figures").symlink_to(figures, target_is_directory=True)  # what an earlier sync made
    edition.sync()
    copy = edition.student / "figures" / "life.svg"
    assert not (edition.student / "figures").is_symlink() and not copy.is_symlink()
    assert copy.read_text() == "<svg>one</svg>"
    (figures / "life.svg").write_text("<svg>two</svg>")  # a pull redraws the diagram
    edition.sync()
    assert copy.read_text() == "<svg>two</svg>"
