"""The notebook executor keeps nbclient out of the core: a program can schedule notebook jobs
with nothing of the kernel stack imported until a run starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent / "notebooks" / "clock.ipynb"


@pytest.mark.slow  # (a fresh interpreter)
def test_scheduling_a_notebook_imports_no_kernel_stack() -> None:
    code = textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"IPython", "traitlets", "ipywidgets", "nbclient",
                                          "ipykernel", "jupyter_client", "comm", "nbformat"}}:
                    raise ImportError(f"core imported {{name}}")
        sys.meta_path.insert(0, Blocker())
        import nbsched
        from nbsched.executors import NotebookJobExecutor
        s = nbsched.Scheduler(timezone="UTC")
        s.start()
        job = s.add_job({str(NOTEBOOK)!r}, "every 1h")
        s.shutdown()
        print(job.executor)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "notebook"
