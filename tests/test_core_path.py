"""A core path of at most 45 minutes per lesson, exercises apart, by one formula.

The formula (docs/lessons.md): prose words / 130 per minute + 0.5 min per code cell + 1 min per
prediction, over the cells before the lesson's "## Going deeper" or "## Exercises" heading,
whichever comes first. A code cell that asks a prediction (`predict(...)`) counts as the
prediction, not also as a code cell. 00's lesson map states each lesson's minutes: they must
agree with the formula.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb"))
LIMIT = 45
WORDS_PER_MINUTE = 130
_END = re.compile(r"^## (Going deeper|Exercises)\b", re.M)
_PREDICT = re.compile(r"\bpredict\(")
_MAP_ROW = re.compile(r"^\| \[(\d\d) · [^]]+\]\([^)]+\) \| (\d+) min \|", re.M)


def core_path_minutes(notebook: Path) -> float:
    """The core path's estimated minutes: prose, code cells and predictions before "Going deeper"/"Exercises"."""
    words = code = predictions = 0
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            before, *end = _END.split(source, maxsplit=1)
            words += len(before.split())
            if end:
                break
        elif source.strip():
            asked = len(_PREDICT.findall(source))
            predictions += asked
            code += 0 if asked else 1
    return words / WORDS_PER_MINUTE + 0.5 * code + predictions


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_the_core_path_takes_at_most_45_minutes(notebook):
    minutes = core_path_minutes(notebook)
    assert minutes <= LIMIT, f"{notebook.stem}: core path {minutes:.0f} min; move side roads to '## Going deeper'"


def test_the_lesson_map_in_00_states_each_lessons_minutes():
    start = next(nb for nb in NOTEBOOKS if nb.stem.startswith("00-"))
    text = "".join("".join(c["source"]) for c in json.loads(start.read_text())["cells"] if c["cell_type"] == "markdown")
    stated = {number: int(minutes) for number, minutes in _MAP_ROW.findall(text)}
    assert sorted(stated) == sorted(nb.stem[:2] for nb in NOTEBOOKS), "one map row per lesson, with its minutes"
    wrong = {nb.stem: (stated[nb.stem[:2]], round(core_path_minutes(nb))) for nb in NOTEBOOKS
             if abs(stated[nb.stem[:2]] - core_path_minutes(nb)) > 3}
    assert not wrong, f"the map says / the formula gives (minutes): {wrong}"


def test_the_formula_counts_prose_cells_and_predictions_up_to_going_deeper(tmp_path):
    cells = [{"cell_type": "markdown", "source": "word " * 130},
             {"cell_type": "code", "source": "x = 1"},
             {"cell_type": "code", "source": 'predict("98-x", "Which?")'},
             {"cell_type": "markdown", "source": "ten words " * 5 + "\n## Going deeper\nnot counted " * 50},
             {"cell_type": "code", "source": "not counted"}]
    notebook = tmp_path / "98-demo.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert core_path_minutes(notebook) == pytest.approx(1 + 10 / 130 + 0.5 + 1)
