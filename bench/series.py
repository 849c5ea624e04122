"""How long the whole series takes, against the floor that no lesson can go below.

    series   nbval over every lesson notebook, as `make test` runs it (one worker, tests/conftest.py loaded)
    floor    nbval over as many one-cell notebooks (one kernel start and one trivial cell each)
    ratio    series / floor, in wall seconds and in CPU seconds (user + system of pytest, its
             kernels and their helpers): what the lessons cost on top of starting their kernels
    slow     the cells of 0.5 s or more, mostly the lessons' own timed experiments, against the
             wall time the target allows
    browser  JupyterLab start, to lesson 01 fully run in headless Chromium (when chromium is there)

Per-notebook times come from one run (pytest's junit report), so the slowest lesson is named.
Run: `.venv/bin/python bench/series.py` (part of `make bench`). Prints figures; never fails.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# tests/conftest.py as a plugin, as in `make test`: kernels over AF_UNIX, nbval's messages formatted only if logged
NBVAL = ["--nbval", "--nbval-sanitize-with", str(REPO / "tests/nbval_sanitize.cfg"), "-p", "no:cacheprovider", "-q",
         "-p", "conftest"]
TARGET_WALL = 3.2
TARGET_CPU = 2.5


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nbval(paths: list[Path], report: Path, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one nbval run (CPU of every process it waited for, down the tree)."""
    started, cpu = time.monotonic(), _children_cpu()
    tests = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-m", "pytest", *NBVAL, f"--junitxml={report}", *map(str, paths)],
                   cwd=cwd, capture_output=True, check=False, env=dict(os.environ, PYTHONPATH=tests))
    return time.monotonic() - started, _children_cpu() - cpu


def per_notebook(report: Path) -> dict[str, float]:
    times: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "?").rsplit(".", 2)[-2] + ".ipynb"  # "notebooks.01-x.ipynb"
        times[name] += float(case.get("time", 0))
    return dict(times)


def slow_cells(report: Path, at_least: float = 0.5) -> tuple[int, float]:
    """How many cells took `at_least` seconds or more, and their seconds: mostly the lessons' timed
    experiments (1 s timeouts, SYN resends, a call shown still asleep), which no helper can shorten.
    Each notebook's first cell is left out: its time holds the kernel's start."""
    times = [float(case.get("time", 0)) for case in ET.parse(report).getroot().iter("testcase")
             if not case.get("name", "").endswith("Cell 0")]
    slow = [t for t in times if t >= at_least]
    return len(slow), sum(slow)


def one_cell_notebooks(directory: Path, count: int) -> list[Path]:
    cell = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["1 + 1"],
            "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                         "data": {"text/plain": ["2"]}}]}
    notebook = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                             "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    paths = []
    for i in range(count):
        path = directory / f"floor-{i:02d}.ipynb"
        path.write_text(json.dumps(notebook))
        paths.append(path)
    return paths


def browser_lesson_01() -> str:
    """Seconds from `jupyter lab` starting to lesson 01 having run every cell in Chromium."""
    sys.path.insert(0, str(REPO / "tests"))  # the browser driver lives with the browser tests
    import browser_lab as lab_tools

    if not lab_tools.CHROMIUM.exists():
        return "skipped (no /usr/bin/chromium)"
    with tempfile.TemporaryDirectory() as work:
        started = time.monotonic()
        lab = lab_tools.LabServer(REPO / "notebooks", Path(work))
        try:
            lab.start()
            with lab_tools.chromium() as browser:
                page = lab_tools.new_page(browser)
                lab_tools.open_notebook(page, lab, "01-socket-creation.ipynb")
                lab_tools.run_all(page)
                lab_tools.wait_until_all_ran(page, 120)
                seconds = time.monotonic() - started
                lab.shutdown_kernels()
        finally:
            lab.stop()
    return f"{seconds:.1f} s"


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        series = nbval(NOTEBOOKS, work_dir / "series.xml", REPO)
        floor = nbval(one_cell_notebooks(work_dir, len(NOTEBOOKS)), work_dir / "floor.xml", work_dir)
        lessons = per_notebook(work_dir / "series.xml")
        slow_count, slow_seconds = slow_cells(work_dir / "series.xml")
    print(f"{'notebook':32} {'seconds':>8}")
    for name, seconds in sorted(lessons.items()):
        print(f"{name:32} {seconds:8.1f}")
    for what, index, target in (("wall", 0, TARGET_WALL), ("CPU", 1, TARGET_CPU)):
        ratio = series[index] / floor[index]
        verdict = "PASS" if ratio <= target else "FAIL"
        print(f"{what:4} series ({len(NOTEBOOKS)} notebooks) {series[index]:6.1f} s, floor ({len(NOTEBOOKS)} one-cell "
              f"notebooks) {floor[index]:6.1f} s, ratio {ratio:5.2f}x   target <= {target}x: {verdict}")
    print(f"cells of 0.5 s or more: {slow_count}, {slow_seconds:.1f} s in all (the wall target allows "
          f"{TARGET_WALL * floor[0]:.1f} s for the whole series)")
    print(f"JupyterLab start -> lesson 01 fully run in Chromium: {browser_lesson_01()}")


if __name__ == "__main__":
    main()
