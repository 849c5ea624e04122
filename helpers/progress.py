"""The student's record: predictions made and right, exercises passed, and a view of it per lesson.

The record lives in the student's edition (see `helpers.edition`), as a JSON file beside their
copies, so it survives kernel restarts and `git pull`s. A kernel finds it from its working folder,
which JupyterLab sets to the notebook's folder: the student's folder holds the edition's manifest,
the reference folder (`notebooks/`, run by nbval with no student) does not. There the record is
kept in memory for the kernel's life only, and `progress()` says so in one stable line.

    progress()                                       # in 00: a table, one row per lesson
    record_exercise("02", "remove_if_stale", True)   # what an exercise checker calls with its verdict
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import nbformat

from helpers.edition import LESSON_FILE, MANIFEST, lesson_number

__all__ = ["Progress", "progress", "read", "record_exercise", "update"]

RECORD = ".lab-progress.json"
_memory: dict = {"predictions": {}, "exercises": {}}  # the reference edition's record: this kernel only


def _folder() -> Path | None:
    """The student's folder if this kernel runs in it, else None (the reference edition)."""
    here = Path.cwd()
    return here if (here / MANIFEST).exists() else None


def read() -> dict:
    folder = _folder()
    if folder is None:
        return _memory
    path = folder / RECORD
    return json.loads(path.read_text()) if path.exists() else {"predictions": {}, "exercises": {}}


def update(change: Callable[[dict], None]) -> dict:
    """Apply `change` to the record and save it; two kernels (two open lessons) never lose a write."""
    folder = _folder()
    if folder is None:
        change(_memory)
        return _memory
    lock = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read()
        change(data)
        temporary = folder / f"{RECORD}.{os.getpid()}"
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        temporary.replace(folder / RECORD)
        return data
    finally:
        os.close(lock)  # releases the lock


def record_exercise(lesson: str, name: str, passed: bool) -> None:
    """Record a checker's verdict on the student's function `name` (latest run wins) for the progress view."""
    number, name = lesson_number(lesson), name.removeprefix("check_")
    update(lambda data: data["exercises"].setdefault(number, {}).__setitem__(name, {"passed": bool(passed)}))


_PREDICT_CALL = re.compile(r"""\bpredict\(\s*["'](\d\d-[\w-]+)["']""")
_CHECK_CALL = re.compile(r"\bcheck_(\w+)\(")


class Progress:
    """Per lesson: predictions made of those asked, how many were right, exercises passed of all."""

    HEADER = ("lesson", "predictions made", "right", "exercises passed")

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.rows = self._rows() if folder else []

    def _rows(self) -> list[tuple[str, str, str, str]]:
        record = read()
        rows = []
        for path in sorted(self.folder.glob("*.ipynb")):
            if not LESSON_FILE.match(path.name):
                continue  # saved copies (NN-name.saved-....ipynb) and the student's own notebooks
            number = path.name[:2]
            asked, checked = self._asked(path)
            predictions = {q: e for q, e in record["predictions"].items() if q.startswith(f"{number}-")}
            exercises = record["exercises"].get(number, {})
            made = sum(e.get("answer") is not None for e in predictions.values())
            right = sum(e.get("right") is True for e in predictions.values())
            passed = sum(e["passed"] for e in exercises.values())
            title = path.stem[3:].replace("-", " ")
            rows.append((f"{number} {title}", f"{made} of {len(asked | predictions.keys())}", str(right),
                         f"{passed} of {len(checked | exercises.keys())}"))
        return rows

    @staticmethod
    def _asked(path: Path) -> tuple[set[str], set[str]]:
        """The prediction ids and exercise names a lesson's code cells mention."""
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        return set(_PREDICT_CALL.findall(code)), set(_CHECK_CALL.findall(code))

    def __repr__(self) -> str:
        if self.folder is None:
            return ("Your progress shows here in your own copy of the lessons (`make lab` opens it); "
                    "this is the reference edition, which keeps no record.")
        table = [self.HEADER, *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        return "\n".join("  ".join([row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in range(1, 4))]).rstrip()
                         for row in table)

    def _repr_html_(self) -> str:
        if self.folder is None:
            return f"<i>{html.escape(repr(self))}</i>"
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.HEADER)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def progress() -> Progress:
    """The student's progress, one row per lesson in their folder (a table in the browser, text elsewhere)."""
    return Progress(_folder())
