"""Predict, then see: a question the student answers before an experiment, and the answer beside the result.

Prediction is the series' central learning move; it only works if the answer is committed before
the result is seen, and compared with it after. So a lesson asks in one line, in its own cell,
before the experiment:

    predict("03-queue-fit", "How many of the 5 connects complete before any accept()?",
            choices=["1", "2", "3", "4", "5"])          # or no choices: a short answer

and once the experiment has run, one line shows what the student said beside what the kernel did:

    reveal("03-queue-fit", actual=n, says="the kernel let {actual} in")
    # ✗ you said 2, the kernel let 3 in

The answer is recorded when the student presses the button (`helpers.progress` keeps it in their
edition); it may change until the reveal, and is locked from then on, so the record stays honest.
The id starts with the lesson's number: the progress view counts predictions per lesson by it.
In the reference edition nobody answers: the widget's text form is the question, the reveal's is
"you did not predict; ...", both stable for nbval.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import ipywidgets as w
from IPython.display import display

from helpers.progress import read, update
from helpers.widgets import COLORS, show

__all__ = ["Prediction", "predict", "reveal"]

_QUESTION_ID = re.compile(r"^\d\d-[\w-]+$")
_live: dict[str, Prediction] = {}  # the widget last shown for each question, locked by its reveal
_first_seen: dict[str, str] = {}  # what each question's first reveal in this kernel showed


def _checked_id(question_id: str) -> str:
    if not _QUESTION_ID.match(question_id):
        raise ValueError(f"{question_id!r} is not a question id: start it with the lesson's two digits, "
                         "then a short name, e.g. '03-queue-fit'")
    return question_id


def _same(answer: str, expected: str) -> bool:
    return " ".join(answer.split()).casefold() == " ".join(expected.split()).casefold()


def _verdict(entry: dict, says: str) -> tuple[str, str]:
    """The reveal line ('✗ you said 2, the kernel let 3 in') and its color kind."""
    if entry.get("answer") is None:
        return f"· you did not predict; {says}", "gone"
    mark, kind = ("✓", "done") if entry["right"] else ("✗", "error")
    return f"{mark} you said {entry['answer']}, {says}", kind


def _line_html(text: str, kind: str) -> str:
    return (f'<div style="border-left:4px solid {COLORS[kind]};padding:4px 10px;margin:2px 0">'
            f"{html.escape(text)}</div>")


class Prediction:
    """The question widget: choices (or a text box) and a button that records the answer."""

    def __init__(self, question_id: str, question: str, choices: list | None = None):
        self.question_id, self.question = _checked_id(question_id), question
        self.choices = [str(c) for c in choices] if choices else None
        self.answer = (w.ToggleButtons(options=self.choices, value=None, style={"button_width": "auto"}) if self.choices
                       else w.Text(placeholder="your answer"))
        self.button = w.Button(description="Lock in my answer", button_style="primary")
        self.status, self.said = w.HTML(), ""  # `said`: the status in words, for the text form
        self.button.on_click(lambda _: self._lock_in())
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(question))
        self.widget = w.VBox([w.HTML(f"<b>Predict:</b> {text}"), self.answer, w.HBox([self.button, self.status])])
        self._show(read()["predictions"].get(self.question_id))
        _live[self.question_id] = self

    def _lock_in(self) -> None:
        answer = (self.answer.value or "").strip()
        if not answer:
            self.status.value = "<i>choose an answer first</i>" if self.choices else "<i>type your answer first</i>"
            return

        def record(data: dict) -> None:
            entry = data["predictions"].setdefault(self.question_id, {})
            if "actual" not in entry:  # locked once revealed: the widget may be stale, the record is not
                entry["answer"] = answer

        self._show(update(record)["predictions"][self.question_id])

    def _show(self, entry: dict | None) -> None:
        if entry is None:
            return
        answer = entry.get("answer")
        if answer is not None and (self.choices is None or answer in self.choices):
            self.answer.value = answer
        if "actual" in entry:
            self.lock(_verdict(entry, entry["says"])[0])
        else:
            self.said = f"you said {entry['answer']}"
            self.status.value = (f"recorded: you said <b>{html.escape(entry['answer'])}</b>; "
                                 "now run the experiment (you may change your answer until then)")

    def lock(self, verdict: str) -> None:
        """After the reveal: no more changes, and the verdict beside the question."""
        self.answer.disabled = self.button.disabled = True
        self.said, self.status.value = verdict, html.escape(verdict)

    def plain(self) -> str:
        options = " | ".join(self.choices) if self.choices else "a short answer"
        return f"Predict: {self.question} [{options}]" + (f": {self.said}" if self.said else "")

    def _ipython_display_(self) -> None:
        show(self.widget, self.plain())


def predict(question_id: str, question: str, choices: list | None = None) -> Prediction:
    """Ask `question` before an experiment; `question_id` is 'NN-short-name' (NN: the lesson)."""
    return Prediction(question_id, question, choices)


def reveal(question_id: str, actual, says: str = "the kernel said {actual}",
           right: str | Callable[[str], bool] | None = None) -> None:
    """Show the recorded answer beside `actual`, and lock it.

    `says` is formatted with `actual`. The answer is right if it reads as `str(actual)` (case and
    spaces aside), or as `right` when a choice names the result differently ("more than 5"), or
    if `right(answer)` is true when a short answer needs a test of its own.

    A cell run again in the same kernel repeats its experiment in the state the first run left (a
    queue already full, a request already read): a result other than the first is shown as such, and
    the first stays recorded.
    """
    _checked_id(question_id)
    choices = _live[question_id].choices if question_id in _live else None
    if choices and not callable(right) and not any(_same(c, str(actual) if right is None else right) for c in choices):
        raise ValueError(f"{question_id}: {actual!r} is none of the choices {choices}, so no answer could be right: "
                         "pass right= the choice that names it")
    says = says.format(actual=actual)
    if _first_seen.setdefault(question_id, str(actual)) != str(actual):
        _show_line(f"· run again: {says}. The first run in this kernel stays recorded: a second run starts from "
                   "what the first left behind (to see the experiment afresh, restart the kernel and run from the top)",
                   "gone")
        return

    def judge(answer: str) -> bool:
        if callable(right):
            return bool(right(answer))
        return _same(answer, str(actual) if right is None else right)

    def record(data: dict) -> None:
        entry = data["predictions"].setdefault(question_id, {})
        entry.setdefault("answer", None)
        entry.update(actual=str(actual), says=says, right=None if entry["answer"] is None else judge(entry["answer"]))

    entry = update(record)["predictions"][question_id]
    text, kind = _verdict(entry, says)
    if question_id in _live:
        _live[question_id].lock(text)
    _show_line(text, kind)


def _show_line(text: str, kind: str) -> None:
    display({"text/plain": text, "text/html": _line_html(text, kind)}, raw=True)
