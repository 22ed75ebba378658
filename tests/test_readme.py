"""The README runs as written: every Python block in a fresh interpreter, every notebook block
(one with ``%`` magics) in order in one real kernel, and every ``make`` target it names
exists. A block that needs something the reader does not have is a bug in the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.kernels import Kernels

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    """The README's fenced blocks: ``python`` (plain programs), ``notebook`` (Python blocks
    with magics, in the order a reader runs them) or ``bash``."""
    found = []
    for lang, body in FENCE.findall(README.read_text()):
        is_notebook = lang == "python" and re.search(r"^\s*%", body, re.MULTILINE)
        if (kind == "notebook" and is_notebook) or (kind == lang and not is_notebook):
            found.append(body)
    return found


@pytest.mark.parametrize("code", blocks("python"), ids=lambda c: c.strip().splitlines()[0][:40])
def test_python_blocks_run(code: str, tmp_path: Path) -> None:
    env = {**os.environ, "NBSCHED_DB_URL": f"sqlite:///{tmp_path / 'readme.db'}"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"


def test_notebook_blocks_run_in_a_kernel(kernel_factory: Kernels) -> None:
    cells = blocks("notebook")
    assert cells, "the README has no notebook blocks"
    k = kernel_factory.start("ipk7", notebook="readme.ipynb")
    for code in cells:
        result = k.run(code, check=False, timeout=120)
        assert result.status == "ok", f"{code}\n--- raised: {result.error}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr


def test_make_targets_named_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    named = {
        m.group(1)
        for block in blocks("bash")
        for m in re.finditer(r"^\s*make (\w[\w-]*)", block, re.MULTILINE)
    }
    assert named and named <= targets, named - targets
