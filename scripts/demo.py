"""`make demo`: run the quick-start notebook headless and print what each cell showed.

The notebook runs in a real kernel (through nbclient), against a throw-away SQLite store, so
the demo neither needs nor touches your own nbsched jobs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output['ename']}: {output['evalue']}\n"
    data = output.get("data", {})
    return data.get("text/plain", "") + "\n" if "text/plain" in data else ""


def main() -> int:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NBSCHED_DB_URL"] = f"sqlite:///{Path(tmp) / 'demo.db'}"
        os.environ["JPY_SESSION_NAME"] = str(NOTEBOOK)
        print(f"Running {NOTEBOOK.name} headless (store: {os.environ['NBSCHED_DB_URL']})\n")
        # an ipc (Unix socket) kernel: local only, and ipykernel does not warn about plain TCP
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(tmp) / "kernel"))
        client = NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": tmp}})
        try:
            client.execute()
        finally:
            km.shutdown_kernel()  # a kernel we passed in is ours to stop, not nbclient's
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print("In  │ " + cell.source.replace("\n", "\n    │ "))
        shown = "".join(_text(o) for o in cell.get("outputs", [])).rstrip()
        if shown:
            print("Out │ " + shown.replace("\n", "\n    │ "))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
