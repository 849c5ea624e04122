"""The whole series on another student's machine: nbval strict over every notebook, in ONE run that
combines every odd condition we promise to hold under:

    as user `nobody`          file permissions apply; /proc shows only our own processes
    umask 077                 new files and socket files are private (srwx------)
    a 150-byte TMPDIR         longer than sun_path (108 bytes) allows for a socket file under it
    a private network namespace, lo up, with another kernel's socket settings:
        net.core.somaxconn=128                     (the default before Linux 5.4)
        net.ipv4.tcp_syn_linear_timeouts=0         (where the file exists: Linux >= 6.5)

The main nbval run of `make test` covers root, umask 022, the host's settings; this one covers the
rest, once (its notebooks run three at a time, pytest-xdist). Root builds the namespace and writes
its sysctls, then drops to `nobody` inside it (setpriv). The notebooks run from a world-readable
copy of the repository (root's checkout may sit in /root, which `nobody` cannot enter), with a
virtual environment `nobody` can run: the packages of ours, hard-linked under a venv of a Python of
the same version that `nobody` can reach (seconds), or else a pip install, cached per checkout in /tmp.

Skips when not root; under CI=true, not being able to build the namespace is a failure.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from kernels import NOTEBOOKS, ROOT, long_tmpdir

pytestmark = pytest.mark.lessons
USER = "nobody"
SOMAXCONN = 128
LINEAR_TIMEOUTS = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts"
CONDITIONS = (f"as {USER}, umask 077, 150-byte TMPDIR, private network namespace with "
              f"net.core.somaxconn={SOMAXCONN} and net.ipv4.tcp_syn_linear_timeouts=0 (where it exists)")

# Run as root inside the new namespace: lo up, the sysctls, then `nobody` with umask 077 reports
# what it sees (so the test can check the conditions held) and becomes pytest.
INSIDE = r"""
set -e
ip link set lo up
echo {somaxconn} > /proc/sys/net/core/somaxconn
if [ -e {linear} ]; then echo 0 > {linear}; fi
exec setpriv --reuid={uid} --regid={gid} --clear-groups -- sh -c '
  umask 077
  echo "conditions: uid=$(id -u) umask=$(umask) somaxconn=$(cat /proc/sys/net/core/somaxconn)" \
       "linear=$(cat {linear} 2>/dev/null || echo absent) netns=$(readlink /proc/self/ns/net)" \
       "links=$(ip -o link show | cut -d: -f2 | tr -d " " | tr "\n" ,)"
  exec "$@"' sh "$@"
"""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def cannot(reason: str) -> None:
    """Skip, or under CI=true fail: the run that covers these conditions could not happen."""
    message = f"the series under other settings ({CONDITIONS}) cannot run: {reason}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


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
    # compiled once here: `nobody` cannot write __pycache__, and every process would compile helpers/ anew
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(repo / "helpers")], check=True)
    for path in [repo, *repo.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return repo


def _version(python: str, user: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], user=user, cwd="/",
                          capture_output=True, text=True).stdout.strip()


def _venv_of_our_packages(home: Path, repo: Path, python: str) -> Path | None:
    """A venv of `python` holding our venv's packages, hard-linked (copied if it must), with `helpers`
    from the copy `repo`; None when `python` is another version than ours or the result does not run."""
    if sys.prefix == sys.base_prefix or _version(python, USER) != _version(sys.executable, "root"):
        return None
    venv = home / "venv-linked"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    packages = venv / ours.relative_to(sys.prefix)
    shutil.rmtree(packages)
    if subprocess.run(["cp", "-al", str(ours), str(packages)], capture_output=True).returncode != 0:
        shutil.rmtree(packages, ignore_errors=True)  # another file system: copy instead
        subprocess.run(["cp", "-a", str(ours), str(packages)], check=True)
    for editable in packages.glob("__editable__*"):  # they point at our checkout, not at `repo`
        editable.unlink()
    (packages / "socket-lab-repo.pth").write_text(f"{repo}\n")
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)  # only adds read: harmless to the linked originals
    probe = subprocess.run([str(venv / "bin/python"), "-c", "import nbval, ipykernel, helpers; print(helpers.__file__)"],
                           user=USER, cwd="/", capture_output=True, text=True)
    return venv if probe.returncode == 0 and probe.stdout.startswith(str(repo)) else None


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
    """A world-readable place outside /root and pytest's 0700 temp dirs, one per checkout (two
    checkouts on one machine must not share it); kept for its venv."""
    home = Path(f"/tmp/sll-other-settings-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}")
    home.mkdir(mode=0o755, exist_ok=True)
    home.chmod(0o755)
    private = home / "run"
    shutil.rmtree(private, ignore_errors=True)
    yield home
    shutil.rmtree(private, ignore_errors=True)


def failed_cells(output: str) -> list[str]:
    """`notebooks/03-x.ipynb::Cell 12` for each cell nbval reported failed, from pytest's summary."""
    return re.findall(r"^(?:FAILED|ERROR) (\S+::Cell \d+)", output, re.M)


@pytest.mark.timeout(1800)
@pytest.mark.skipif(not NOTEBOOKS, reason="no lesson notebooks yet")
def test_every_notebook_passes_nbval_as_nobody_umask_077_long_tmpdir_other_socket_settings(home):
    if os.geteuid() != 0:
        cannot("building a network namespace and switching to user nobody need root")
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        cannot(f"`unshare -n` failed here (a container without CAP_SYS_ADMIN?): {probe.stderr.strip()}")
    entry = pwd.getpwnam(USER)
    repo = _world_readable_checkout(home)
    python = _python_for(USER)
    venv = _venv_of_our_packages(home, repo, python) or _venv(home, repo, python)

    private = home / "run"
    private.mkdir()
    tmpdir = long_tmpdir(private, 150)
    for path in [private, *private.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    env = {
        "PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(private), "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(private / "mpl"),
        "IPYTHONDIR": str(private / "ipy"), "JUPYTER_CONFIG_DIR": str(private / "jcfg"),
        "JUPYTER_DATA_DIR": str(private / "jdata"), "JUPYTER_RUNTIME_DIR": str(private / "jrun"),
        "XDG_CACHE_HOME": str(private / "cache"), "PYTHONPATH": str(repo / "tests"),  # for `-p conftest`
    }
    inside = INSIDE.format(somaxconn=SOMAXCONN, linear=LINEAR_TIMEOUTS, uid=entry.pw_uid, gid=entry.pw_gid)
    # tests/conftest.py as a plugin, as in the main run: kernels over AF_UNIX, nbval's messages formatted only if logged
    pytest_args = [str(venv / "bin/python"), "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-q",
                   "--nbval", "notebooks",
                   "--ignore=notebooks/solutions", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                   "--nbval-cell-timeout", "60", "-n", "3", "--dist", "loadfile"]  # a notebook per worker at a time
    run = subprocess.run(["unshare", "-n", "sh", "-c", inside, "sh", *pytest_args],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=1700)

    seen = dict(re.findall(r"(\w+)=(\S*)", next((line for line in run.stdout.splitlines()
                                                 if line.startswith("conditions:")), "")))
    assert seen, f"the run never reached pytest under {CONDITIONS}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    expected_linear = "0" if os.path.exists(LINEAR_TIMEOUTS) else "absent"
    assert (seen["uid"], seen["umask"], seen["somaxconn"], seen["linear"]) == \
        (str(entry.pw_uid), "0077", str(SOMAXCONN), expected_linear), f"conditions not as asked: {seen}"
    assert seen["links"] == "lo,", f"not a private network namespace (links: {seen['links']})"
    assert seen["netns"] != os.readlink("/proc/self/ns/net"), "the run shared the host's network namespace"

    cells = failed_cells(run.stdout)
    assert run.returncode == 0, (
        f"nbval failed {CONDITIONS}: {len(cells)} cells: {cells}\n{run.stdout[-8000:]}\n{run.stderr[-2000:]}")
    assert " passed" in run.stdout, run.stdout[-2000:]
