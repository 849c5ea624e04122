"""The grading command: a folder of generated notebooks (one passing, one failing, one stub) gives
one CSV row per student and exercise, with the verdict a student would see."""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
from exercise_support import nothing_left_behind  # noqa: F401 (autouse fixture)

PASSING = '''import os

def socket_fds(pid):
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                found.append(int(name))
        except OSError:
            pass
    return sorted(found)

print("top-level code of the cell: never run by the grader")
'''
FAILING = '''def socket_fds(pid):
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
'''
STUB = '''def socket_fds(pid):
    """The descriptor numbers (sorted ints) of process `pid` that refer to sockets."""
    ...  # your code here
'''


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 01"), *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)


def test_grading_a_folder_writes_one_row_per_student_and_exercise(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    _notebook(folder / "ada.ipynb", STUB, PASSING)  # the last definition counts
    _notebook(folder / "bob.ipynb", FAILING)
    _notebook(folder / "cy.ipynb", STUB)
    out = tmp_path / "grades.csv"
    done = subprocess.run([sys.executable, "-m", "helpers.exercises.grade", str(folder), "--out", str(out),
                           "--only", "socket_fds,next_fd"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(out.open())}
    assert len(rows) == 6
    assert rows["ada", "socket_fds"]["status"] == "passed"
    assert rows["bob", "socket_fds"]["status"] == "failed"
    assert "not sockets" in rows["bob", "socket_fds"]["first failure"]
    assert "seed" in rows["bob", "socket_fds"]["first failure"]
    assert rows["cy", "socket_fds"]["status"] == "not started"
    assert {rows[s, "next_fd"]["status"] for s in ("ada", "bob", "cy")} == {"not started"}


def test_unknown_exercise_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "helpers.exercises.grade", str(tmp_path), "--only", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown exercise(s) nope" in done.stderr
