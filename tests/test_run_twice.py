"""Cells a student re-runs: every code cell of a lesson, run twice in a row on one kernel.

Students press Shift+Enter twice and go back to a cell they liked. A cell must survive that: it
either repeats its experiment (fresh sockets or puppets of its own) or, when it cannot, its second
run ends in one line saying why and which cell to run from. A cell tagged raises-exception must
raise the same exception class both times. Slow (a kernel per lesson, every cell twice): marked
`rerun`, so a quick tier can leave it out with `-m "not rerun"`.
"""

from __future__ import annotations

import pytest
from kernels import NOTEBOOKS, Kernel, code_cells

pytestmark = [pytest.mark.rerun, pytest.mark.skipif(not NOTEBOOKS, reason="no lesson notebooks yet")]


def _kind(error: str | None) -> str | None:
    return error.split(":", 1)[0] if error else None


def rerun_problems(kernel: Kernel, cells) -> list[str]:
    """Run each cell twice; return what went wrong (an unexpected error, or a tagged cell that changed its error)."""
    problems = []
    for index, cell in enumerate(cells):
        first, second = (kernel.run(cell.source, timeout=60).error for _ in range(2))
        head = cell.source.strip().splitlines()[0][:60]
        if cell.may_raise:
            if not first or _kind(first) != _kind(second):
                problems.append(f"code cell {index} ({head}): raised {first!r}, then {second!r}")
        elif first or second:
            problems.append(f"code cell {index} ({head}): {'first' if first else 'second'} run: {first or second}")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_every_cell_can_run_twice_in_a_row(notebook):
    with Kernel() as kernel:
        problems = rerun_problems(kernel, code_cells(notebook))
        kernel.run("from helpers import stop_all; stop_all()")
    assert not problems, "\n".join(problems)
