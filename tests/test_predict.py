"""Predictions and progress: recorded before the experiment, locked by the reveal, kept in the student's edition.

The widgets are driven as a test (and nbval) can: `button.click()` fires the handler without a browser.
The last test runs tests/fixtures/predict_demo.ipynb in real kernels in a student's edition.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import helpers.predict as predict_module
import helpers.progress as progress_module
from helpers.edition import MANIFEST, Edition
from helpers.predict import predict, reveal
from helpers.progress import RECORD, progress, record_exercise

DEMO = Path(__file__).resolve().parent / "fixtures" / "predict_demo.ipynb"


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    """What reveal() displayed, as text; and a fresh kernel's state (no widget shown, nothing in memory)."""
    texts: list[str] = []
    monkeypatch.setattr(predict_module, "display", lambda data, raw: texts.append(data["text/plain"]))
    monkeypatch.setattr(predict_module, "_live", {})
    monkeypatch.setattr(predict_module, "_first_seen", {})
    monkeypatch.setattr(progress_module, "_memory", {"predictions": {}, "exercises": {}})
    return texts


@pytest.fixture
def reference(tmp_path, monkeypatch, shown) -> Path:
    """A kernel in the reference edition: its folder holds no manifest."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def student(tmp_path, monkeypatch, shown) -> Path:
    """A kernel in the student's edition."""
    (tmp_path / MANIFEST).write_text('{"lessons": {}}\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def record(folder: Path) -> dict:
    return json.loads((folder / RECORD).read_text())


def answer(question, value: str) -> None:
    question.answer.value = value
    question.button.click()


def test_the_reference_edition_shows_stable_text_and_writes_nothing(reference, shown):
    question = predict("03-queue-fit", "How many of the 5 connects complete before any `accept()`?",
                       choices=[1, 2, 3, 4, 5])
    assert question.plain() == "Predict: How many of the 5 connects complete before any `accept()`? [1 | 2 | 3 | 4 | 5]"
    assert "<code>accept()</code>" in question.widget.children[0].value
    reveal("03-queue-fit", actual=3, says="the kernel let {actual} in")
    assert shown == ["· you did not predict; the kernel let 3 in"]
    assert repr(progress()).startswith("Your progress shows here in your own copy of the lessons")
    assert list(reference.iterdir()) == []


def test_an_answer_locked_in_is_shown_beside_what_the_kernel_did(reference, shown):
    question = predict("03-queue-fit", "How many complete?", choices=["1", "2", "3"])
    answer(question, "2")
    assert "recorded: you said <b>2</b>" in question.status.value
    reveal("03-queue-fit", actual=3, says="the kernel let {actual} in")
    assert shown == ["✗ you said 2, the kernel let 3 in"]
    assert question.button.disabled and question.answer.disabled
    assert question.plain() == "Predict: How many complete? [1 | 2 | 3]: ✗ you said 2, the kernel let 3 in"

    right = predict("03-second", "And now?", choices=["1", "2", "3"])
    answer(right, "3")
    reveal("03-second", actual=3)
    assert shown[-1] == "✓ you said 3, the kernel said 3"


def test_an_empty_click_asks_for_an_answer_and_records_nothing(student):
    question = predict("01-fd", "Which fd number comes next?")
    question.button.click()
    assert question.status.value == "<i>type your answer first</i>"
    assert not (student / RECORD).exists()


def test_the_answer_may_change_until_the_reveal_then_it_is_locked(student, shown):
    question = predict("03-queue-fit", "How many complete?", choices=["1", "2", "3"])
    answer(question, "1")
    answer(question, "2")
    reveal("03-queue-fit", actual=3)
    answer(question, "3")  # a stale widget (another tab) clicked after the reveal
    assert record(student)["predictions"]["03-queue-fit"] == {
        "answer": "2", "actual": "3", "right": False, "says": "the kernel said 3"}
    reveal("03-queue-fit", actual=3)
    assert shown == ["✗ you said 2, the kernel said 3"] * 2


def test_a_cell_run_again_that_sees_another_result_says_why_and_the_first_stays_recorded(student, shown):
    """A student runs a reveal cell twice: the experiment now starts from what its first run left (lesson
    03's non-blocking connect finds the queue its first run filled). The first result is the one judged."""
    answer(predict("03-nonblocking", "What does it do?", choices=["it connects", "EAGAIN at once"]), "it connects")
    reveal("03-nonblocking", actual="it connects", says="the connect: {actual}")
    reveal("03-nonblocking", actual="it connects", says="the connect: {actual}")  # the same result: no note
    reveal("03-nonblocking", actual="EAGAIN at once", says="the connect: {actual}")
    assert shown[:2] == ["✓ you said it connects, the connect: it connects"] * 2
    assert shown[2].startswith("· run again: the connect: EAGAIN at once. The first run in this kernel stays recorded")
    assert record(student)["predictions"]["03-nonblocking"] == {
        "answer": "it connects", "actual": "it connects", "right": True, "says": "the connect: it connects"}


def test_answers_persist_across_kernels_in_the_students_edition(student, monkeypatch):
    answer(predict("04-wakes", "What wakes accept()?", choices=["close", "shutdown"]), "shutdown")
    monkeypatch.setattr(predict_module, "_live", {})  # a new kernel: the file is all that is left
    again = predict("04-wakes", "What wakes accept()?", choices=["close", "shutdown"])
    assert again.answer.value == "shutdown" and not again.button.disabled
    assert again.plain().endswith(": you said shutdown")

    reveal("04-wakes", actual="shutdown")
    monkeypatch.setattr(predict_module, "_live", {})
    after = predict("04-wakes", "What wakes accept()?", choices=["close", "shutdown"])
    assert after.button.disabled and after.plain().endswith(": ✓ you said shutdown, the kernel said shutdown")


def test_a_question_revealed_unanswered_cannot_be_answered_afterwards(student, shown):
    reveal("06-eof", actual="b''", says="recv returned {actual}")
    question = predict("06-eof", "What does recv return after the peer closes?")
    answer(question, "b''")
    assert record(student)["predictions"]["06-eof"]["answer"] is None
    assert question.button.disabled and question.plain().endswith(": · you did not predict; recv returned b''")


def test_short_answers_are_compared_kindly_or_by_the_lessons_own_test(reference, shown):
    answer(predict("05-errno", "Which errno?"), "  econnrefused ")
    reveal("05-errno", actual="ECONNREFUSED")
    answer(predict("05-outcome", "How many connects succeed?", choices=["none", "some", "all"]), "all")
    reveal("05-outcome", actual=4, says="{actual} of 4 connected", right="all")
    answer(predict("05-delay", "How long is the third delay, in seconds?"), "0.4")
    reveal("05-delay", actual=0.41, says="it was {actual} s", right=lambda a: abs(float(a) - 0.41) < 0.05)
    assert shown == ["✓ you said econnrefused, the kernel said ECONNREFUSED", "✓ you said all, 4 of 4 connected",
                     "✓ you said 0.4, it was 0.41 s"]


def test_a_result_no_choice_names_is_an_authors_mistake_caught_at_once(reference):
    predict("03-fit", "How many complete?", choices=["1", "2", "more than 2"])
    with pytest.raises(ValueError, match="7 is none of the choices .* pass right= the choice that names it"):
        reveal("03-fit", actual=7)


def test_a_question_id_must_name_its_lesson(reference):
    with pytest.raises(ValueError, match="start it with the lesson's two digits"):
        predict("queue-fit", "How many?")
    with pytest.raises(ValueError, match="e.g. '03-queue-fit'"):
        reveal("3-queue-fit", actual=1)


def test_progress_counts_predictions_and_exercises_per_lesson(student):
    lesson = new_notebook(cells=[
        new_code_cell('predict("02-stale", "Does the file stay?", choices=["yes", "no"])'),
        new_code_cell("predict('02-again', 'And the next bind?')"),
        new_code_cell("check_remove_if_stale(remove_if_stale)"), new_code_cell("check_peer_uid(peer_uid)")])
    nbformat.write(lesson, student / "02-bind-and-unlink.ipynb")
    nbformat.write(new_notebook(), student / "03-listen.ipynb")
    nbformat.write(lesson, student / "02-bind-and-unlink.saved-2026-01-01-000000.ipynb")  # not a lesson

    answer(predict("02-stale", "Does the file stay?", choices=["yes", "no"]), "yes")
    reveal("02-stale", actual="yes")
    record_exercise("02", "check_remove_if_stale", True)
    record_exercise("2", "peer_uid", False)

    assert repr(progress()) == "\n".join([
        "lesson              predictions made  right  exercises passed",
        "02 bind and unlink            1 of 2      1            1 of 2",
        "03 listen                     0 of 0      0            0 of 0",
    ])
    assert "<td>02 bind and unlink</td><td>1 of 2</td><td>1</td><td>1 of 2</td>" in progress()._repr_html_()
    record_exercise("02", "peer_uid", True)  # the latest run counts
    assert progress().rows[0][3] == "2 of 2"


def test_two_kernels_writing_at_once_lose_nothing(student):
    def kernel(k: int) -> None:
        for i in range(25):
            record_exercise("04", f"k{k}_{i}", True)

    threads = [threading.Thread(target=kernel, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(record(student)["exercises"]["04"]) == 100
    assert sorted(p.name for p in student.iterdir()) == sorted([MANIFEST, RECORD])  # no temporary file left


def text_outputs(nb) -> list[list[str]]:
    return [["".join(o.get("data", {}).get("text/plain", "")) for o in c.outputs]
            for c in nb.cells if c.cell_type == "code"]


def test_the_demo_in_real_kernels_in_a_students_edition(tmp_path):
    """predict -> click -> the experiment -> reveal -> progress, then a second kernel sees it all kept."""
    reference = tmp_path / "notebooks"
    reference.mkdir()
    shutil.copy(DEMO, reference / "98-predict-demo.ipynb")
    edition = Edition(reference, tmp_path / "my-notebooks")
    edition.sync()
    copy = edition.student / "98-predict-demo.ipynb"

    def run():
        nb = nbformat.read(copy, as_version=4)
        assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")  # nothing seen before it is run
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(copy.parent)}}).execute()
        return text_outputs(nb)

    first = run()
    completed = int(first[3][0])  # what the kernel did: listen(1) lets backlog + 1 connects complete
    verdict = f"{'✓' if completed == 1 else '✗'} you said 1, the kernel let {completed} in"
    question = "Predict: How many of 3 connects complete before any `accept()`? [1 | 2 | 3]"
    assert first[1] == [question]
    assert first[4] == [verdict]
    assert first[5] == [f"· you did not predict; the kernel let {completed} in"]
    made_of_asked = ["1", "of", "2"]  # the second question was revealed without an answer
    assert first[6][0].splitlines()[1].split() == ["98", "predict", "demo", *made_of_asked, str(int(completed == 1)),
                                                   "1", "of", "1"]
    saved = record(edition.student)["predictions"]["98-queue-fit"]
    assert saved == {"answer": "1", "actual": str(completed), "right": completed == 1,
                     "says": f"the kernel let {completed} in"}

    second = run()  # a new kernel: the answer was locked by the first run's reveal
    assert second[1] == [f"{question}: {verdict}"]
    assert record(edition.student)["predictions"]["98-queue-fit"] == saved


def test_a_checkers_verdict_counts_in_the_progress_view_and_a_stub_does_not(student):
    from helpers.exercises import check_default_protocol
    from tests.exercise_support import load_solutions

    nbformat.write(new_notebook(cells=[new_code_cell("check_default_protocol(default_protocol)")]),
                   student / "01-socket-creation.ipynb")

    def default_protocol(family, type):
        ...  # your code here

    check_default_protocol(default_protocol)
    assert not (student / RECORD).exists()  # a stub is "not started": nothing recorded
    check_default_protocol(load_solutions("01_socket_creation.py").default_protocol)
    assert record(student)["exercises"] == {"01": {"default_protocol": {"passed": True}}}
    assert progress().rows[0][3] == "1 of 1"
