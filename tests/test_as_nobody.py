"""The whole series as a normal user: nbval strict over every notebook, run as `nobody`, 150-byte TMPDIR.

Students run the course on a laptop as themselves, not as root: file permissions then apply
(lesson 02 shows them), /proc shows only their own processes, and TMPDIR may be long. When the
suite runs as root, this test replays the notebooks as user `nobody` in a world-readable copy
of the repository with a virtual environment of its own (root's Python may sit in /root, which
`nobody` cannot enter).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kernels import NOTEBOOKS, ROOT, long_tmpdir

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="switching to user nobody needs root; you already are a normal user"),
    pytest.mark.skipif(not NOTEBOOKS, reason="no lesson notebooks yet"),
]
USER = "nobody"


def _python_for(user: str) -> str:
    """A Python >= 3.11 that `user` can run: ours if its files are reachable, else the system's."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    for candidate in (base, "/usr/bin/python3"):
        try:
            probe = subprocess.run([candidate, "-c", "import sys, venv; assert sys.version_info >= (3, 11)"],
                                   user=user, capture_output=True, cwd="/")
        except OSError:  # e.g. EACCES: the interpreter lies in a directory the user cannot enter
            continue
        if probe.returncode == 0:
            return candidate
    pytest.fail(f"no Python >= 3.11 with venv that user {user} can run (tried {base}, /usr/bin/python3)")


def _world_readable_checkout(home: Path) -> Path:
    """Copy the tracked files (as they are now) to `home/repo`, readable by everyone."""
    repo = home / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    for path in [repo, *repo.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return repo


def _venv(home: Path, repo: Path, python: str) -> Path:
    venv = home / "venv"
    stamp = venv / ".installed"
    wanted = hashlib.sha256((repo / "requirements.txt").read_bytes() + (repo / "pyproject.toml").read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "-r", "requirements.txt"],
                       cwd=repo, check=True, timeout=900)
        stamp.write_text(wanted)
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    return venv


@pytest.fixture
def home():
    """A world-readable place outside /root and pytest's 0700 temp dirs; kept for its venv."""
    home = Path("/tmp/socket-lab-as-nobody")
    home.mkdir(mode=0o755, exist_ok=True)
    home.chmod(0o755)
    private = home / "run"
    shutil.rmtree(private, ignore_errors=True)
    yield home
    shutil.rmtree(private, ignore_errors=True)


def test_every_notebook_passes_nbval_as_nobody_with_a_150_byte_tmpdir(home):
    entry = pwd.getpwnam(USER)
    repo = _world_readable_checkout(home)
    venv = _venv(home, repo, _python_for(USER))

    private = home / "run"
    private.mkdir()
    tmpdir = long_tmpdir(private, 150)
    for path in [private, *private.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    env = {
        "PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(private), "TMPDIR": str(tmpdir), "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(private / "mpl"), "IPYTHONDIR": str(private / "ipy"),
        "JUPYTER_CONFIG_DIR": str(private / "jcfg"), "JUPYTER_DATA_DIR": str(private / "jdata"),
        "JUPYTER_RUNTIME_DIR": str(private / "jrun"), "XDG_CACHE_HOME": str(private / "cache"),
    }
    run = subprocess.run(
        [str(venv / "bin/python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval", "notebooks",
         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-cell-timeout", "60"],
        cwd=repo, env=env, user=USER, group=entry.pw_gid, extra_groups=[], capture_output=True, text=True,
        timeout=1200,
    )
    assert run.returncode == 0, f"nbval as {USER} failed:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert " passed" in run.stdout, run.stdout[-2000:]
