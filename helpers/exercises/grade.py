"""Grade a folder of students' notebooks: every checker over every notebook, one CSV row per
student and exercise.

    python -m helpers.exercises.grade submissions/ --out grades.csv [--only socket_fds,next_fd]

A student is a notebook file (its path under the folder, without .ipynb). In each notebook, the
exercise's function is the last code cell's `def` of that name. Only that definition is taken,
never the rest of the cell, and it is built without running anything in this process (not even
default values): the checkers then run it in their sandboxes, as in the lesson. Each row says
passed, failed (with the first failing line) or not started (no such function, or still a stub).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import linecache
import sys
import types
from pathlib import Path

from helpers import exercises

__all__ = ["EXERCISES", "grade_folder", "main"]

EXERCISES = {name.removeprefix("check_"): getattr(exercises, name)
             for name in exercises.__all__ if name.startswith("check_")}


def _definitions(notebook: Path) -> dict[str, str]:
    """Function name -> the source of its last `def` in the notebook's code cells."""
    found: dict[str, str] = {}
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", []))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in EXERCISES:
                node.decorator_list = []
                found[node.name] = ast.get_source_segment(source, node) or ast.unparse(node)
    return found


def function_from_source(source: str, name: str, label: str) -> types.FunctionType:
    """A function object for a `def`, with its source findable by inspect, built without running it."""
    filename = f"<grade {label}>"
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    code = compile(source, filename, "exec")
    body = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    return types.FunctionType(body, {}, name)


def _row(student: str, exercise: str, source: str | None) -> dict:
    row = {"student": student, "exercise": exercise, "status": "not started", "first failure": ""}
    if source is None:
        return row
    report = EXERCISES[exercise](function_from_source(source, exercise, f"{student}:{exercise}"))
    if report.not_started:
        return row
    row["status"] = "passed" if report.passed else "failed"
    row["first failure"] = report.first_failure().splitlines()[0] if not report.passed else ""
    if not report.passed:
        row["first failure"] += f" (seed {report.seed})"
    return row


def grade_folder(folder: Path, only: list[str] | None = None) -> list[dict]:
    rows = []
    for notebook in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in notebook.parts:
            continue
        student = str(notebook.relative_to(folder).with_suffix(""))
        definitions = _definitions(notebook)
        for exercise in only or EXERCISES:
            rows.append(_row(student, exercise, definitions.get(exercise)))
            print(f"{student}: {exercise}: {rows[-1]['status']}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.exercises.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of students' notebooks (.ipynb, searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="the CSV file to write")
    parser.add_argument("--only", default="", help="comma-separated exercise names (default: all)")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()] or None
    unknown = sorted(set(only or []) - set(EXERCISES))
    if unknown:
        parser.error(f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(EXERCISES)}")
    rows = grade_folder(args.folder, only)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "exercise", "status", "first failure"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
