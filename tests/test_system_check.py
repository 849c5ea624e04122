"""tools/system-check, the first step of `make lab` and `make test`, on a machine that lacks packages.

Each test builds a fake machine in a world-readable temp dir: a PATH of links to the real tools
with some left out (`ss`; `uname` replaced to say Darwin; `apt-get` replaced by one that logs its
arguments), and a fake root (SYSTEM_ROOT) holding or lacking /etc/protocols, /usr/bin/chromium
and libatomic.so.1. The normal-user cases run as the current user, or as `nobody` when we are
root, so the message and the exit status are the real ones and nothing gets installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "system-check"
FILES = {  # what the fake root holds unless a test hides it, by the Debian package that ships it
    "netbase": "etc/protocols",
    "chromium": "usr/bin/chromium",
    "libatomic1": "usr/lib/x86_64-linux-gnu/libatomic.so.1",
}
AS_ROOT = os.geteuid() == 0
STUDENT = "nobody" if AS_ROOT else None


class Machine:
    """A fake PATH and root in `home`; `run()` runs the real script (or make) against them."""

    def __init__(self, home: Path, hide: set[str], apt_status: int = 0, system: str = "Linux"):
        self.home = home
        self.bin = home / "bin"
        self.root = home / "root"
        self.apt_log = home / "apt.log"
        self.bin.mkdir()
        fakes = {"apt-get", "uname"}
        for folder in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
            for name in os.listdir(folder) if os.path.isdir(folder) else []:
                link = self.bin / name
                if name not in fakes and not (name == "ss" and "iproute2" in hide) and not link.exists():
                    link.symlink_to(os.path.join(folder, name))
        self._script("apt-get", f'echo "$*" >> {self.apt_log}\nexit {apt_status}')
        self._script("uname", f"echo {system}")
        self.apt_log.touch()
        self.apt_log.chmod(0o666)
        for package, path in FILES.items():
            if package not in hide:
                (self.root / path).parent.mkdir(parents=True, exist_ok=True)
                (self.root / path).touch()
        for path in [home, *home.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))

    def _script(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def run(self, *command: str, user: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": str(self.bin), "SYSTEM_ROOT": str(self.root), "LANG": "C.UTF-8", "HOME": str(self.home)}
        return subprocess.run(command, env=env, user=user, cwd=self.home, capture_output=True, text=True, timeout=60)

    def apt_calls(self) -> list[str]:
        return self.apt_log.read_text().splitlines()


@pytest.fixture
def machine():
    """Build fake machines in one world-readable dir (pytest's tmp_path is 0700, closed to nobody)."""
    if STUDENT:
        try:
            pwd.getpwnam(STUDENT)
        except KeyError:
            pytest.skip(f"no user {STUDENT} to play the student")
    home = Path(tempfile.mkdtemp(prefix="sll-system-check-"))
    home.chmod(0o755)
    made = []

    def build(hide=(), **options) -> Machine:
        folder = home / str(len(made))
        folder.mkdir()
        made.append(Machine(folder, set(hide), **options))
        return made[-1]

    yield build
    shutil.rmtree(home)


def as_student(machine: Machine, need: str) -> subprocess.CompletedProcess:
    return machine.run(str(SCRIPT), need, user=STUDENT)


@pytest.mark.parametrize(("need", "hide", "install"), [
    ("lab", {"iproute2"}, "iproute2"),
    ("lab", {"netbase"}, "netbase"),
    ("test", {"chromium"}, "chromium"),
    ("test", {"libatomic1"}, "libatomic1"),
    ("test", {"iproute2", "netbase", "chromium", "libatomic1"}, "iproute2 netbase chromium libatomic1"),
])
def test_a_student_gets_one_install_line_and_nothing_is_installed(machine, need, hide, install):
    fake = machine(hide)
    result = as_student(fake, need)
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert [line for line in lines if "apt-get" in line] == [f"sudo apt-get install {install}"], result.stderr
    assert fake.apt_calls() == [], "a normal user's check ran apt-get"


def test_without_only_the_browser_packages_the_message_says_what_still_works(machine):
    result = as_student(machine({"chromium", "libatomic1"}), "test")
    assert "make lab" in result.stderr and "BROWSER=skip" in result.stderr, result.stderr


def test_without_a_lesson_package_the_message_says_why_the_lessons_need_it(machine):
    result = as_student(machine({"iproute2", "chromium"}), "test")
    assert "No lesson runs without iproute2" in result.stderr, result.stderr
    assert "BROWSER=skip" not in result.stderr


@pytest.mark.parametrize("need", ["lab", "test"])
def test_a_complete_machine_passes_silently(machine, need):
    fake = machine()
    result = as_student(fake, need)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert fake.apt_calls() == []


def test_the_lab_does_not_need_the_browser(machine):
    result = as_student(machine({"chromium", "libatomic1"}), "lab")
    assert (result.returncode, result.stderr) == (0, "")


def test_not_linux_gets_one_sentence_on_where_to_run_it(machine):
    fake = machine(system="Darwin")
    result = as_student(fake, "lab")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not on Darwin" in result.stderr and "Linux virtual machine or a Linux container" in result.stderr
    assert fake.apt_calls() == []


def test_make_lab_stops_at_the_install_line_before_building_anything(machine):
    """The Makefile wiring: `make lab` without `ss` stops at the check, before any venv is made."""
    fake = machine({"iproute2"})
    shutil.copy(REPO / "Makefile", fake.home / "Makefile")
    (fake.home / "tools").mkdir()
    shutil.copy(SCRIPT, fake.home / "tools" / "system-check")
    for path in (fake.home, fake.home / "tools"):
        path.chmod(0o777)  # make may write nothing here, but the student owns their checkout
    result = fake.run("make", "lab", "PYTHON=/nonexistent/python3", user=STUDENT)
    assert result.returncode != 0
    assert "sudo apt-get install iproute2" in result.stderr, result.stderr
    assert not (fake.home / ".venv").exists(), "make went on to build the venv"
    assert "jupyter" not in result.stdout + result.stderr


@pytest.mark.skipif(not AS_ROOT, reason="installing needs root")
def test_root_installs_what_is_missing_after_one_update(machine):
    fake = machine({"iproute2", "netbase", "chromium", "libatomic1"})
    result = fake.run(str(SCRIPT), "test")
    assert result.returncode == 0, result.stderr
    assert fake.apt_calls() == ["update -q", "install -y -q --no-install-recommends iproute2 netbase chromium libatomic1"]


@pytest.mark.skipif(not AS_ROOT, reason="installing needs root")
def test_root_stops_when_apt_get_fails(machine):
    fake = machine({"netbase"}, apt_status=100)
    result = fake.run(str(SCRIPT), "lab")
    assert result.returncode == 1
    assert "apt-get could not install: netbase" in result.stderr
    assert fake.apt_calls() == ["update -q"], "install ran after a failed update"
