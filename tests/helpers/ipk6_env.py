"""A second virtualenv with ipykernel 6, for testing nbsched in both kernel generations.

ipykernel 7 routes thread output by parent header and has ``set_thread_parent``; ipykernel 6
does neither. nbsched must keep job output out of cells on both, so the kernel tests run
their output and load tests against both.

The venv lives in ``.venv-ipk6`` at the repository root (or ``$NBSCHED_IPK6_VENV``), is
built once, and gets what a newer ``pyproject.toml`` (or the pins below) asks for installed
into it; it is built again only for another Python version. nbsched itself is not
installed into it: a ``.pth`` file puts the working tree on its path, so the code under test
is always the current one.

Run ``python tests/helpers/ipk6_env.py`` to build it ahead of time (``make test`` does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("NBSCHED_IPK6_VENV", REPO / ".venv-ipk6"))
#: the older generation: ipykernel 6 with IPython 8 (the lowest versions pyproject allows)
PINS = ["ipykernel>=6.31,<7", "ipython>=8.39,<9"]


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


#: run by the venv's python: its Python version, and which requirements it does not satisfy
_CHECK = """
import json, sys
from importlib.metadata import PackageNotFoundError, version
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
missing = []
for text in json.loads(sys.argv[1]):
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        found = version(req.name)
    except PackageNotFoundError:
        missing.append(text)
        continue
    if not req.specifier.contains(found, prereleases=True):
        missing.append(text)
print(json.dumps([sys.version, missing]))
"""


def _requirements() -> list[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*meta["project"]["dependencies"], *PINS]


def _missing(py: Path, requirements: list[str]) -> list[str] | None:
    """The requirements the venv does not satisfy; ``None`` when it cannot be used at all (no
    interpreter, or another Python version than this one)."""
    if not py.exists():
        return None
    proc = subprocess.run(
        [str(py), "-c", _CHECK, json.dumps(requirements)], capture_output=True, text=True
    )
    if proc.returncode:
        return None
    python_version, missing = json.loads(proc.stdout)
    return list(missing) if python_version == sys.version else None


def ensure(quiet: bool = True) -> Path:
    """Make sure the venv exists and satisfies this tree's requirements; return its python.

    A venv that lacks some requirement gets just those installed, in place: several test
    runs (of several working trees) may share it, and one of them removing it would break
    the kernels of the others. Only a venv that is missing or of another Python version is
    built from scratch. Safe to call from several processes at once (a file lock serialises
    the changes).
    """
    requirements = _requirements()
    py = _python(VENV)
    lock_path = VENV.parent / ".venv-locks" / f"{VENV.name}.lock"  # .gitignore: .venv-*/
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = _missing(py, requirements)
        if missing == []:
            return py
        run = subprocess.run if not quiet else _run_quiet
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("--quiet")
        if missing is not None:
            run([*pip, *missing], check=True)
            return py
        shutil.rmtree(VENV, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(VENV)], check=True)
        run([*pip, *requirements], check=True)
        purelib = subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(purelib, "nbsched-worktree.pth").write_text(str(REPO) + "\n")
        check = (
            "import importlib.util, ipykernel, IPython; "
            "assert importlib.util.find_spec('nbsched'), 'nbsched not on the path'; "
            "assert ipykernel.version_info[0] == 6, ipykernel.__version__; "
            "print(ipykernel.__version__, IPython.__version__)"
        )
        run([str(py), "-c", check], check=True)
        return py


def _run_quiet(cmd: list[str], check: bool) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"building {VENV} failed: {' '.join(cmd)}\n{tail}")
    return proc


def versions(python: Path) -> str:
    """``"ipykernel 6.x.y, IPython 8.a.b"`` of the venv's python."""
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import ipykernel, IPython; print(ipykernel.__version__, IPython.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return f"ipykernel {out[0]}, IPython {out[1]}"


if __name__ == "__main__":
    python = ensure(quiet="-v" not in sys.argv)
    print(f"{python} ({versions(python)}; {sysconfig.get_python_version()})")
