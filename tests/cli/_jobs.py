"""Job targets for the command-line tests (importable as ``tests.cli._jobs:...``)."""

from __future__ import annotations

import os
from pathlib import Path


def say(counter: str) -> None:
    """Print which call of this job this is (``run number 1``, ``2``, ...), counting in a
    file so that every run prints something different."""
    path = Path(counter)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    print(f"run number {n}")


def where(path: str) -> None:
    """Append the id of the process the run is in to ``path``."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")


def fail() -> None:
    """A job that fails."""
    raise ZeroDivisionError("the job divided by zero")
