"""An in-process IPython shell for fast tests of the magics (no kernel, no history)."""

from __future__ import annotations

from typing import Any

from IPython.core.interactiveshell import InteractiveShell

__all__ = ["OWNER", "TestingShell"]

#: the notebook the test shell's jobs belong to (``NbschedConfig.owner``)
OWNER = "/notebooks/test-shell.ipynb"


class TestingShell(InteractiveShell):
    """``run_cell`` re-raises the cell's error, so tests see UsageError etc. directly
    (jupysql's TestingShell)."""

    __test__ = False

    def run_cell(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result
