"""A second virtualenv with ipykernel 6, for testing nbsched in both kernel generations.

ipykernel 7 routes thread output by parent header and has ``set_thread_parent``; ipykernel 6
does neither. nbsched must keep job output out of cells on both, so the kernel tests run
their output and load tests against both.

The venv lives in ``.venv-ipk6`` at the repository root, is built once and rebuilt only when
``pyproject.toml`` (or the pins below, or the Python version) changes. nbsched itself is not
installed into it: a ``.pth`` file puts the working tree on its path, so the code under test
is always the current one.

Run ``python tests/helpers/ipk6_env.py`` to build it ahead of time (``make test`` does).
"""

from __future__ import annotations

import fcntl
import hashlib
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


def _key() -> str:
    h = hashlib.sha256()
    h.update((REPO / "pyproject.toml").read_bytes())
    h.update("\n".join(PINS).encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def _dependencies() -> list[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(meta["project"]["dependencies"])


def ensure(quiet: bool = True) -> Path:
    """Build the venv if it is missing or stale; return its python. Safe to call from
    several processes at once (a file lock serialises the build)."""
    lock_path = VENV.parent / ".venv-locks" / f"{VENV.name}.lock"  # .gitignore: .venv-*/
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = VENV / ".nbsched-key"
        key = _key()
        if stamp.is_file() and stamp.read_text() == key and _python(VENV).exists():
            return _python(VENV)
        shutil.rmtree(VENV, ignore_errors=True)
        run = subprocess.run if not quiet else _run_quiet
        run([sys.executable, "-m", "venv", str(VENV)], check=True)
        py = _python(VENV)
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("--quiet")
        run([*pip, *_dependencies(), *PINS], check=True)
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
        stamp.write_text(key)
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
