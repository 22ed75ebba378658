"""`make demo`: nbsched's promise, shown with real kernels in about half a minute.

1. the quick-start notebook runs headless (nbclient) and each cell's output is printed;
2. in a live kernel, a job fires on its own every second while a cell is busy, and what the
   job prints lands in its run log, never in the busy cell;
3. a process job starts a subprocess; the kernel is SIGKILLed, and the process table shows the
   subprocess gone at once;
4. a new kernel of the same notebook finds the jobs again: the cell job runs at once, the
   function job waits as ``unbound`` until the cell that defines the function runs again; and
   what a saved notebook shows of the panel;
5. a whole notebook runs as a job, with papermill-style parameters, and leaves its executed
   copy behind.

Everything runs against a throw-away SQLite store and Jupyter runtime directory, so the demo
neither needs nor touches your own jobs.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil
from jupyter_client import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
BAR = "─" * 78


def _text(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    if output.get("output_type") == "error":
        return f"{output['ename']}: {output['evalue']}\n"
    data = output.get("data", {})
    return data.get("text/plain", "") + "\n" if "text/plain" in data else ""


def _show(source: str, shown: str) -> None:
    print("In  │ " + source.strip().replace("\n", "\n    │ "))
    if shown.strip():
        print("Out │ " + shown.rstrip().replace("\n", "\n    │ "))
    print()


def _heading(title: str) -> None:
    print(f"\n{BAR}\n{title}\n{BAR}\n")


def quickstart(tmp: Path) -> None:
    _heading("1. The quick start, run headless")
    nb = nbformat.read(QUICKSTART, as_version=4)
    # an ipc (Unix socket) kernel: local only, and ipykernel does not warn about plain TCP
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp / "qs-kernel"))
    client = NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(tmp)}})
    try:
        client.execute(env={**os.environ, "JPY_SESSION_NAME": str(QUICKSTART)})
    finally:
        km.shutdown_kernel(now=True)  # a kernel we passed in is ours to stop, not nbclient's
    for cell in nb.cells:
        if cell.cell_type == "code":
            _show(cell.source, "".join(_text(o) for o in cell.get("outputs", [])))


class LiveKernel:
    """One kernel of the demo notebook, driven cell by cell like a front end would."""

    def __init__(self, tmp: Path, notebook: Path) -> None:
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp / "kernel"))
        env = {**os.environ, "JPY_SESSION_NAME": str(notebook)}  # the notebook it belongs to
        self.km.start_kernel(cwd=str(tmp), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int:
        return int(self.km.provisioner.pid)  # type: ignore[union-attr]

    def run(self, code: str, show: bool = True, timeout: float = 60) -> str:
        msg_id = self.kc.execute(textwrap.dedent(code).strip())
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                out.append(f"{content['ename']}: {content['evalue']}\n")
            elif kind == "status" and content["execution_state"] == "idle":
                text = "".join(out)
                if show:
                    _show(textwrap.dedent(code), text)
                return text
        raise TimeoutError(f"the kernel did not finish {code!r} within {timeout} s")

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=True)


def _wait(what: str, cond: Callable[[], bool], timeout: float = 20.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _process_table(pids: list[int]) -> None:
    print("    pid    ppid   pgid  command")
    for pid in pids:
        try:
            p = psutil.Process(pid)
            print(f"  {pid:>6} {p.ppid():>6} {os.getpgid(pid):>6}  {' '.join(p.cmdline())[:56]}")
        except (psutil.NoSuchProcess, ProcessLookupError):
            print(f"  {pid:>6}      -      -  (gone)")
    print()


def live(tmp: Path) -> None:
    notebook = tmp / "demo.ipynb"
    pidfile = tmp / "spawn.pids"
    _heading("2. A job fires on its own while a cell is busy")
    k = LiveKernel(tmp, notebook)
    try:
        k.run("%load_ext nbsched")
        k.run("""
            %%schedule --every 1s --name tick
            print("tick from the job")
        """)
        k.run("""
            import time
            for i in range(3):
                print("the busy cell, step", i)
                time.sleep(1)
        """)
        print("   (the busy cell printed only its own lines; the job's went to its runs:)\n")
        k.run("%schedule logs tick -n 3")

        _heading("3. Nothing a job starts outlives the kernel, however it dies")
        k.run(f"""
            import os, subprocess, time

            def spawn(pidfile={str(pidfile)!r}):
                child = subprocess.Popen(["sleep", "600"])
                with open(pidfile + ".tmp", "w") as f:
                    f.write(f"{{os.getpid()}} {{child.pid}}")
                os.replace(pidfile + ".tmp", pidfile)
                time.sleep(600)

            %schedule add spawn --every 2s --executor process
        """)
        _wait("the process job's subprocess to start", lambda: pidfile.exists())
        worker, child = (int(p) for p in pidfile.read_text().split())
        print(f"The kernel (pid {k.pid}), its job's worker and the worker's subprocess:\n")
        _process_table([k.pid, worker, child])
        print(f"SIGKILL to the kernel (pid {k.pid}): no Python code runs, no cleanup hook.\n")
        os.kill(k.pid, signal.SIGKILL)
        took = _wait("the job's processes to go", lambda: not (_alive(worker) or _alive(child)))
        print(f"{took:.2f} s later:\n")
        _process_table([worker, child])
    finally:
        k.close()

    _heading("4. A new kernel of the same notebook finds its jobs again")
    k = LiveKernel(tmp, notebook)
    try:
        k.run("%load_ext nbsched")
        k.run("%schedule list")
        k.run("""
            def spawn(pidfile=""):
                print("spawn is defined again; this time it only says hello")
        """)
        k.run("%schedule list")
        print("   (the panel: live widgets in JupyterLab; what a saved notebook shows of it:)\n")
        k.run("%schedule panel")
        k.run("%schedule remove tick\n%schedule remove spawn")
    finally:
        k.close()


def notebook_job(tmp: Path) -> None:
    _heading("5. A whole notebook as a job, with parameters")
    from nbsched import Scheduler

    report = tmp / "report.ipynb"
    v4 = nbformat.v4
    nb = v4.new_notebook(
        cells=[
            v4.new_code_cell("region = 'eu'", metadata={"tags": ["parameters"]}),
            v4.new_code_cell("print(f'report for {region}: 42 orders')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, report)
    with Scheduler(os.environ["NBSCHED_DB_URL"], timezone="UTC") as s:
        job = s.add_job(str(report), "every weekday at 09:30", parameters={"region": "us"})
        print(f"Added {job.name!r}: {job.trigger.describe()}, next run {job.next_run_time}")
        run = s.run_job(job.name)
        print(f"Ran it now: {run.status.value}; it printed: {run.output.strip()!r}")
        print(f"The executed notebook (injected parameters, outputs): {run.output_path}")
        s.remove_job(job.name)


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nbsched-demo-") as name:
        tmp = Path(name)
        os.environ["NBSCHED_DB_URL"] = f"sqlite:///{tmp / 'demo.db'}"
        os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
        print(f"nbsched demo (store: {os.environ['NBSCHED_DB_URL']})")
        os.environ["NBSCHED_OUTPUT_DIR"] = str(tmp / "executed")
        quickstart(tmp)
        live(tmp)
        notebook_job(tmp)
    print(f"{BAR}\nDone in {time.monotonic() - started:.1f} s. `make lab` opens JupyterLab with "
          "nbsched installed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
