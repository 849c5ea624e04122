"""Every lesson follows the notebook template (docs/architecture.md): checked on the committed .ipynb files.

Name `NN-kebab-title.ipynb`; a `# ` title first; nav lines with working links at the top and the
bottom (00 links to every lesson); objectives and key points; a setup cell of imports only;
outputs committed from one fresh run (counts 1..n); errors only where a cell is tagged
`raises-exception`; lessons 01-07 have exercises and a reference solution in notebooks/solutions/.
Also checks that tests/nbval_sanitize.cfg parses the way nbval reads it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAME = re.compile(r"^(\d\d)-[a-z0-9-]+\.ipynb$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+\.ipynb)(?:#[^)]*)?\)")
LESSON_LINK = re.compile(r"\[[^\]]*\]\((\d\d-[a-z0-9-]+\.ipynb)(?:#[^)]*)?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.M)
NEAR = 3  # a nav line must be within the first / last NEAR cells
EXERCISE_LESSONS = {f"{n:02d}" for n in range(1, 9)}

params = [pytest.param(p, id=p.name) for p in NOTEBOOKS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="notebooks/ holds no notebook yet"), id="none")
]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def markdown(cells) -> str:
    return "\n".join(c.source for c in cells if c.cell_type == "markdown")


def headings(nb) -> list[str]:
    return HEADING.findall(markdown(nb.cells))


def nav_lines(cells) -> list[str]:
    """Lines of markdown that link to a lesson notebook."""
    return [line for line in markdown(cells).splitlines() if LESSON_LINK.search(line)]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def lesson_number(path: Path) -> str:
    m = NAME.match(path.name)
    return m.group(1) if m else ""


def neighbours(path: Path) -> list[Path]:
    """The lessons numbered one below and one above, among those that exist."""
    number = int(lesson_number(path))
    return [p for p in NOTEBOOKS if NAME.match(p.name) and abs(int(lesson_number(p)) - number) == 1]


@pytest.mark.parametrize("path", params)
def test_name(path):
    assert NAME.match(path.name), f"{path.name}: name it NN-kebab-title.ipynb (lowercase, digits, dashes)"


@pytest.mark.parametrize("path", params)
def test_valid_nbformat(path):
    nbformat.validate(load(path))


@pytest.mark.parametrize("path", params)
def test_title_first(path):
    first = load(path).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown with the title"
    assert re.search(r"^# \S", first.source, re.M), f"{path.name}: the first cell has no `# Title` line"


@pytest.mark.parametrize("path", params)
def test_nav_lines_top_and_bottom(path):
    nb = load(path)
    top, bottom = nav_lines(nb.cells[:NEAR]), nav_lines(nb.cells[-NEAR:])
    assert top, f"{path.name}: no nav line (a link to an NN-*.ipynb) in the first {NEAR} cells"
    assert bottom, f"{path.name}: no nav line (a link to an NN-*.ipynb) in the last {NEAR} cells"
    for where, lines in (("top", top), ("bottom", bottom)):
        targets = {t for line in lines for t in LESSON_LINK.findall(line)}
        for want in neighbours(path) if NAME.match(path.name) else []:
            assert want.name in targets, f"{path.name}: the {where} nav line does not link to {want.name}"


@pytest.mark.parametrize("path", params)
def test_links_to_notebooks_exist(path):
    targets = LINK.findall(markdown(load(path).cells))
    missing = sorted({t for t in targets if "://" not in t and not (path.parent / t).exists()})
    assert not missing, f"{path.name}: links to notebooks that do not exist: {missing}"


def test_index_links_every_lesson():
    index = NOTEBOOK_DIR / "00-start-here.ipynb"
    if not index.exists():
        pytest.skip("notebooks/00-start-here.ipynb does not exist yet")
    linked = set(LINK.findall(markdown(load(index).cells)))
    lessons = {p.name for p in NOTEBOOKS if p != index}
    assert not lessons - linked, f"00-start-here.ipynb does not link to {sorted(lessons - linked)}"


@pytest.mark.parametrize("path", params)
def test_objectives_and_key_points(path):
    found = headings(load(path))
    assert any(re.search(r"objectives|you will", h, re.I) for h in found), \
        f"{path.name}: no learning objectives heading (containing 'Objectives' or 'you will'); headings: {found}"
    assert any(re.search(r"key points", h, re.I) for h in found), \
        f"{path.name}: no 'Key points' heading; headings: {found}"


@pytest.mark.parametrize("path", params)
def test_setup_cell_imports_only(path):
    cells = code_cells(load(path))
    assert cells, f"{path.name}: no code cell"
    source = cells[0].source
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        pytest.fail(f"{path.name}: the setup cell is not plain Python ({e.msg}): {source!r}")
    assert tree.body, f"{path.name}: the first code cell (the setup cell) is empty"
    for stmt in tree.body:
        line = ast.get_source_segment(source, stmt)
        if isinstance(stmt, ast.ImportFrom):
            assert stmt.module and (stmt.module == "helpers" or stmt.module.startswith("helpers.")), \
                f"{path.name}: setup cell: only `from helpers import ...` and `import ...`, not {line!r}"
        else:
            assert isinstance(stmt, ast.Import), \
                f"{path.name}: the setup cell holds only imports (no sys.path hacks or other code), not {line!r}"


@pytest.mark.parametrize("path", params)
def test_outputs_from_one_fresh_run(path):
    ran = [c for c in code_cells(load(path)) if c.source.strip()]
    counts = [c.execution_count for c in ran]
    assert counts == list(range(1, len(ran) + 1)), (
        f"{path.name}: execution counts {counts}: commit the outputs of one Restart & Run All "
        "(every non-empty code cell, counts 1..n in order)"
    )


@pytest.mark.parametrize("path", params)
def test_errors_only_where_tagged(path):
    for i, cell in enumerate(load(path).cells):
        if cell.cell_type != "code":
            continue
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        errors = [o for o in cell.outputs if o.output_type == "error"]
        where = f"{path.name}, cell {i} ({cell.source.splitlines()[0] if cell.source else ''!r})"
        if errors and not tagged:
            e = errors[0]
            pytest.fail(f"{where}: {e.ename}: {e.evalue}; fix it, or tag the cell raises-exception if the "
                        "error is the lesson")
        if tagged and not errors:
            pytest.fail(f"{where}: tagged raises-exception but its committed output holds no error")


@pytest.mark.parametrize("path", params)
def test_exercises_and_solution(path):
    number = lesson_number(path)
    if number not in EXERCISE_LESSONS:
        pytest.skip(f"{path.name} is not one of the lessons 01-08")
    found = headings(load(path))
    assert any(re.search(r"exercises", h, re.I) for h in found), f"{path.name}: no 'Exercises' heading"
    solutions = sorted((NOTEBOOK_DIR / "solutions").glob(f"{number}_*.py"))
    assert solutions, f"{path.name}: no reference solution notebooks/solutions/{number}_*.py"


def test_sanitize_file_parses():
    from nbval.plugin import get_sanitize_patterns

    text = (REPO / "tests" / "nbval_sanitize.cfg").read_text()
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == text.count("\nregex: "), "every `regex:` line needs a `replace:` line right after it"
    for regex, _ in patterns:
        re.compile(regex)
    sanitize = dict(patterns)

    def clean(s: str) -> str:
        for regex, replace in sanitize.items():
            s = re.sub(regex, replace, s)
        return s

    assert clean("<Puppet server pid=4242 running>") == clean("<Puppet server pid=77 running>")
    assert clean("/tmp/sll-4242-abc_12/s.sock") == clean("/dev/shm/sll-7-zz9/s.sock")
    assert clean("socket:[123] inode 5 127.0.0.1:4000 ('127.0.0.1', 4000) 0.153 s 0x7ffdeadbeef0") == \
        clean("socket:[9] inode 77 127.0.0.1:5 ('127.0.0.1', 5) 12.3 ms 0x7ffdeadbeef1")
    # a kernel function's compiler clone suffix goes, its name stays
    assert clean("sleeping in poll_schedule_timeout.constprop.0") == "sleeping in poll_schedule_timeout"
    assert clean("in tcp_sendmsg.isra.0.constprop.1") == clean("in tcp_sendmsg") == "in tcp_sendmsg"
    assert clean("unix_wait_for_peer.part.0, foo.cold") == "unix_wait_for_peer, foo"
    assert clean("poll_schedule_timeout.constprop.0") != clean("inet_csk_accept.constprop.0")
    # real differences stay visible
    assert clean("fd 3, backlog 5, errno 98") == "fd 3, backlog 5, errno 98"
    assert clean("timed out after 2 s") != clean("timed out after 5 s")
