"""The JupyterLab extension's own unit tests (jest, as the extension template sets them up),
run by the suite so that `make test` runs them too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .live import REPO

pytestmark = pytest.mark.slow


def test_jest_suite_passes() -> None:
    here = REPO / "labextension"
    jlpm = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")
    assert jlpm, "jlpm (from jupyterlab) is needed to run the extension's unit tests"
    assert (here / "node_modules" / ".bin" / "jest").exists(), (
        "labextension/node_modules is missing: the editable install builds it "
        "(pip install -e .), or run `jlpm install` in labextension/"
    )
    env = dict(os.environ, CI="true")  # jest: no watch mode, no colours
    result = subprocess.run(
        [jlpm, "test", "--ci"], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert " failed" not in report.split("Tests:")[-1], report
