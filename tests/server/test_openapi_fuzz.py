"""schemathesis over the OpenAPI description against a live server: no input it can make up
gets a 5xx. Bounded and deterministic (fixed seed, a few hundred examples)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .live import TOKEN, live_server

pytestmark = pytest.mark.slow


def test_no_5xx_for_generated_requests(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        result = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run",
                f"{server.base}/nbsched/api/openapi.json?token={TOKEN}",
                "--url", server.base,
                "-H", f"Authorization: token {TOKEN}",
                "--checks", "not_a_server_error",
                "--exclude-path", "/nbsched/api/events",  # endless by design
                "--max-examples", "25", "--generation-deterministic",
                "--workers", "1", "--phases", "examples,coverage,fuzzing",
                "--request-timeout", "20",
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,  # (its cache dir)
        )
        log = server.log.read_text()
    report = result.stdout + result.stderr
    assert result.returncode == 0, report + "\n--- server log ---\n" + log[-5000:]
    assert "Traceback" not in log, log[-5000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts and int(counts[1]) >= 200 and counts[1] == counts[2], report
