"""The student's edition: their own working copy of every lesson, made from the reference edition.

`notebooks/` is the reference edition: committed with the outputs of one real run, so nbval can
check it and anyone can read it on the web. A student who opened it would see every experiment's
result under its "Predict" question, and a `git pull` of course updates would conflict with their
edits. So the lab serves a git-ignored folder of copies instead (`make lab` runs `sync` first):

    python -m helpers.edition sync          # first start: copy; later: copy new lessons, report changed ones
    python -m helpers.edition reset 03      # lesson 03 anew from the reference; the old copy saved beside it

A copy has its code outputs cleared, so nothing is seen before it is run. A manifest in the
student's folder records, per lesson, a hash of what the copy was made from (the reference with
outputs cleared, so re-running the reference alone does not count as a change) and a hash of the
copy as written. When the reference changes, a copy the student never touched is replaced (nothing
of theirs is lost, and they say so); a copy they touched is kept, and they are told how to get the
new one. Nothing of the student's is ever overwritten without a saved copy beside it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MANIFEST", "Edition", "lesson_number"]

MANIFEST = ".lab-edition.json"
LESSON_FILE = re.compile(r"^(\d\d)-[\w-]+\.ipynb$")


def lesson_number(text: str) -> str:
    """'3', '03', '03-listen-and-backlog' or its file name -> '03'; anything else is a clear error."""
    match = re.match(r"^(\d{1,2})(?:-[\w-]*(?:\.ipynb)?)?$", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a lesson: give its number, e.g. 03 (or 3, or 03-listen-and-backlog)")
    return match.group(1).zfill(2)


def student_copy(notebook_text: str) -> str:
    """The reference notebook as the student first sees it: code outputs and saved widget state gone."""
    import nbformat  # only here: importing it costs seconds (jsonschema), and every lesson imports this module

    nb = nbformat.reads(notebook_text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)  # the reference run's widget state would show its answers
    return nbformat.writes(nb) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Edition:
    """The student's folder of copies beside the reference folder it is made from."""

    reference: Path
    student: Path

    def lessons(self) -> dict[str, Path]:
        """Reference lessons by number: '03' -> notebooks/03-listen-and-backlog.ipynb."""
        found = (p for p in sorted(self.reference.glob("*.ipynb")) if LESSON_FILE.match(p.name))
        return {LESSON_FILE.match(p.name).group(1): p for p in found}

    def sync(self) -> list[str]:
        """Copy what is missing, replace untouched copies of changed lessons, report the rest."""
        if not self.lessons():
            raise ValueError(f"no lessons (NN-name.ipynb) in {self.reference}/: run this from the course's folder")
        first_start = not (self.student / MANIFEST).exists()
        self.student.mkdir(parents=True, exist_ok=True)
        self._link_shared()
        lines = self._copy_starting_files()
        manifest = self._manifest()
        made = []
        for number, reference in self.lessons().items():
            fresh = student_copy(reference.read_text())
            copy = self.student / reference.name
            record = manifest.get(reference.name)
            if not copy.exists():
                made.append(number)
            elif record is None:  # the manifest was lost: adopt the copy as made from today's reference
                manifest[reference.name] = {"reference": _digest(fresh), "copy": None}
                continue
            elif record["reference"] == _digest(fresh):
                continue
            elif record["copy"] == _digest(copy.read_text()):
                lines.append(f"lesson {number} has a newer version: your copy was untouched, so it is replaced")
            else:
                lines.append(f"lesson {number} has a newer version; your copy is kept; `make reset LESSON={number}` "
                             f"gives you the new one (your copy is saved beside it first)")
                continue
            copy.write_text(fresh)
            manifest[reference.name] = {"reference": _digest(fresh), "copy": _digest(fresh)}
        self._save(manifest)
        if made:
            verb = "made" if first_start else "added"
            lines.insert(0, f"{verb} your own copies of lessons {', '.join(made)} in {self.student}/ "
                            "(outputs cleared: each experiment shows its result when you run it)")
        return lines

    def reset(self, lesson: str) -> list[str]:
        """Lesson `lesson` anew from the reference; the student's copy is first saved with a timestamp."""
        number = lesson_number(lesson)
        reference = self.lessons().get(number)
        if reference is None:
            raise ValueError(f"there is no lesson {number} in {self.reference}/; lessons: {', '.join(self.lessons())}")
        self.student.mkdir(parents=True, exist_ok=True)
        copy = self.student / reference.name
        lines = []
        if copy.exists():
            backup = self._backup_name(copy)
            copy.rename(backup)
            lines.append(f"your copy of lesson {number} is saved as {backup}")
        fresh = student_copy(reference.read_text())
        copy.write_text(fresh)
        manifest = self._manifest()
        manifest[reference.name] = {"reference": _digest(fresh), "copy": _digest(fresh)}
        self._save(manifest)
        lines.append(f"{copy} is the newest version of lesson {number}, outputs cleared")
        return lines

    def _link_shared(self) -> None:
        """The lessons point at `solutions/` and `figures/` beside them. `solutions/` is a link, always current.
        `figures/` is a copy, refreshed on every sync: JupyterLab serves an image only from inside the folder
        it serves (a linked one is refused, 403), so a link would show the student a broken image."""
        target, link = self.reference / "solutions", self.student / "solutions"
        if target.is_dir() and not link.exists() and not link.is_symlink():
            link.symlink_to(os.path.relpath(target.resolve(), self.student.resolve()), target_is_directory=True)
        figures, copy = self.reference / "figures", self.student / "figures"
        if figures.is_dir():
            if copy.is_symlink():  # made by an earlier sync
                copy.unlink()
            shutil.copytree(figures, copy, dirs_exist_ok=True)

    def _copy_starting_files(self) -> list[str]:
        """The capstone's programs (`capstone/server.py`, ...) are the student's to write: copied once, never overwritten."""
        lines = []
        source = self.reference / "capstone"
        for start in sorted(source.glob("*.py")) if source.is_dir() else []:
            copy = self.student / "capstone" / start.name
            if not copy.exists():
                copy.parent.mkdir(exist_ok=True)
                shutil.copyfile(start, copy)
                lines.append(f"your starting file {copy} is ready to edit")
        return lines

    def _backup_name(self, copy: Path) -> Path:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
        backup, n = copy.with_name(f"{copy.stem}.saved-{stamp}.ipynb"), 1
        while backup.exists():
            n += 1
            backup = copy.with_name(f"{copy.stem}.saved-{stamp}-{n}.ipynb")
        return backup

    def _manifest(self) -> dict:
        path = self.student / MANIFEST
        return json.loads(path.read_text())["lessons"] if path.exists() else {}

    def _save(self, manifest: dict) -> None:
        path = self.student / MANIFEST
        path.write_text(json.dumps({"lessons": manifest}, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.edition", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=Path("notebooks"), help="the reference lessons")
    parser.add_argument("--student", type=Path, default=Path("my-notebooks"), help="the student's copies")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("sync", help="copy new lessons, report changed ones (run by `make lab`)")
    commands.add_parser("reset", help="one lesson anew, the old copy saved beside it").add_argument("lesson")
    args = parser.parse_args(argv)
    edition = Edition(args.reference, args.student)
    try:
        lines = edition.sync() if args.command == "sync" else edition.reset(args.lesson)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
