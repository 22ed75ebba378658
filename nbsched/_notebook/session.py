"""One run of a notebook: nbclient in a fresh kernel, driven on an event loop of our own.

nbclient's ``NotebookClient.async_execute`` does the work; this module adds, through its hooks
only (no subclass, no copy of its cell loop):

* a start time: the kernel starts at once, the first cell waits for ``start_at`` (on-time
  scheduled runs; the kernel start is hidden before the fire time);
* progress (code cells done / total) and the streamed text of the cells, as it comes;
* an output notebook saved after every cell, every few seconds during a long cell, and at the
  end with the marks of how the run ended;
* one *watcher* that ends the run on cancel, run timeout or cell timeout: it kills the kernel's
  process group (the kernel and everything it started) and cancels nbclient's task. nbclient's
  own per-cell timeout is not used: it would shut the kernel down gracefully, which a kernel
  busy in a cell can make wait for seconds.

The loop is a new one on the calling thread (``asyncio.run`` refuses a thread whose loop is
running, and nbclient on a running loop is jupyter-scheduler's "event loop is already running"
trap), or on a thread of its own when the calling thread runs a loop (a cell of an IPython
kernel). The kernel is started from that thread, which lives until the run is over
(PDEATHSIG follows the thread that started the process).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async
from traitlets.config import Config

from . import document as doc
from .kernel import kill_group, pdeathsig_preexec, register, unregister

__all__ = ["NotebookSession", "RUN_ENV"]

#: set to "1" in the environment of a scheduled run's kernel
RUN_ENV = "NBSCHED_RUN"
#: how often the watcher looks at cancel, deadlines and new output (seconds)
_TICK = 0.05
#: a long cell's output is saved at most this often (papermill: 30 s)
_AUTOSAVE = 10.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookSession:
    """Everything about one run (internal; :func:`nbsched.runner.run_notebook` builds it)."""

    def __init__(
        self,
        nb: nbformat.NotebookNode,
        cwd: Path,
        output_path: Path,
        *,
        kernel_name: str | None,
        timeout: float | None,
        cell_timeout: float | None,
        on_progress: Callable[[int, int], None] | None,
        on_output: Callable[[str], None] | None,
        cancel: threading.Event | None,
        start_at: float | None,
        on_start: Callable[[], str | None] | None,
    ) -> None:
        self.nb = nb
        self.cwd = cwd
        self.output_path = output_path
        self.kernel_name = kernel_name
        self.timeout = timeout
        self.cell_timeout = cell_timeout
        self.on_progress = on_progress
        self.on_output = on_output
        self.cancel = cancel or threading.Event()
        self.start_at = start_at
        self.on_start = on_start
        self.total = sum(1 for cell in nb.cells if doc.executable(cell))
        self.done = 0
        self.output: list[str] = []
        self.pgid: int | None = None
        self._client: NotebookClient | None = None
        self._task: asyncio.Future[Any] | None = None
        self._sockets: str | None = None  # the folder of the kernel's Unix sockets
        self._ending: tuple[str, str] | None = None  # (status, reason) decided by us
        self._cancelled = False  # nbclient's task, once we decided
        self._begun = False  # start_at and on_start are behind us
        self._cell: Any = None
        self._cell_index: int | None = None
        self._cell_started = 0.0
        self._seen: dict[int, Any] = {}  # outputs of the current cell already streamed
        self._deadline: float | None = None  # run timeout (monotonic)
        self._dirty = False
        self._saved_at = 0.0
        self._lock = threading.Lock()  # self.pgid vs. stop() from another thread

    # ------------------------------------------------------------------ entry points

    def run(self) -> tuple[str, str | None, int | None]:
        """Run to the end: (status, error, index of the cell it ended in)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            looping = False
        else:
            looping = True
        if not looping:
            return self._run_here()
        box: list[tuple[str, str | None, int | None]] = []

        def target() -> None:
            box.append(self._run_here())

        thread = threading.Thread(target=target, name="nbsched-notebook-run", daemon=True)
        thread.start()
        thread.join()
        return box[0] if box else ("failed", "the run's thread ended without a result", None)

    def stop(self, status: str, reason: str) -> None:
        """End the run from any thread: kill the kernel's process group at once; the loop
        notices within one tick and finishes the run with ``status``."""
        with self._lock:
            if self._ending is None:
                self._ending = (status, reason)
            pgid = self.pgid
        if pgid is not None:
            kill_group(pgid)
        self.cancel.set()

    # ------------------------------------------------------------------ the loop

    def _run_here(self) -> tuple[str, str | None, int | None]:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(self._main())
        finally:
            try:
                # nbclient leaves its kernel-alive poller pending when a cell is cancelled
                pending = asyncio.all_tasks(loop)
                if pending:
                    for task in pending:
                        task.cancel()
                    loop.run_until_complete(_settle(pending))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> tuple[str, str | None, int | None]:
        meta = self.nb.metadata.setdefault("nbsched", {})
        meta.update(status="running", start_time=doc.now_iso())
        doc.save(self.nb, self.output_path)
        self._progress()
        begin = max(time.time(), self.start_at or 0.0)
        if self.timeout is not None:
            self._deadline = time.monotonic() + (begin - time.time()) + self.timeout
        env = dict(os.environ)
        env[RUN_ENV] = "1"
        start_kwargs: dict[str, Any] = {"env": env}
        preexec = pdeathsig_preexec()
        if preexec is not None:
            start_kwargs["preexec_fn"] = preexec
        # The kernel talks to us over Unix sockets in a folder of this run's, not over
        # unencrypted TCP ports any local user could reach (ipykernel warns about those on
        # every start, into the scheduler's log).
        self._sockets = tempfile.mkdtemp(prefix="nbsched-kernel-")
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(self._sockets, "k")
        client = self._client = NotebookClient(
            self.nb,
            kernel_name=self.kernel_name or "",
            timeout=None,  # the watcher enforces cell_timeout (see the module docstring)
            resources={"metadata": {"path": str(self.cwd)}},
            on_notebook_start=self._on_notebook_start,
            on_cell_execute=self._on_cell_execute,
            on_cell_executed=self._on_cell_executed,
            config=config,
        )
        task = self._task = asyncio.ensure_future(client.async_execute(**start_kwargs))
        status, error = "succeeded", None
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=_TICK)
                self._watch()
            task.result()
        except BaseException as exc:  # noqa: B036 -- every way out becomes a status
            status, error = self._verdict(exc)
        finally:
            await self._cleanup(client)
        self._pump()
        ended_in = self._cell_index if self._cell is not None and status != "succeeded" else None
        return status, error, ended_in

    def _verdict(self, exc: BaseException) -> tuple[str, str | None]:
        if self._ending is not None:
            return self._ending
        where = self._where()
        if isinstance(exc, CellExecutionError):
            return "failed", f"{where} raised an exception:\n{_ANSI.sub('', str(exc)).strip()}"
        if isinstance(exc, DeadKernelError):
            return "crashed", f"The notebook's kernel died in {where}"
        if isinstance(exc, CellTimeoutError):
            return "timed_out", f"{where}: {exc}"
        if isinstance(exc, NoSuchKernel):
            return "failed", (
                f"No kernel named {exc.args[0]!r} is installed (see `jupyter kernelspec list`)"
            )
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            return "cancelled", "Run cancelled"
        text = "".join(traceback.format_exception(exc)).strip()
        return "failed", f"The notebook could not be run: {exc}\n{text}"

    def _where(self) -> str:
        cell = self._cell
        if cell is None:
            return "the kernel's start" if self._cell_index is None else "between cells"
        count = cell.get("execution_count")
        return f"cell In [{count}]" if count else f"cell {self._cell_index}"

    def _watch(self) -> None:
        """One tick of the watcher."""
        self._note_kernel()
        self._pump()
        now = time.monotonic()
        if self._ending is None:
            if self.cancel.is_set():
                self.stop("cancelled", "Run cancelled")
            elif self._deadline is not None and now >= self._deadline:
                self.stop("timed_out", f"Run timed out after {self.timeout:g} s")
            elif (
                self.cell_timeout is not None
                and self._cell is not None
                and now - self._cell_started >= self.cell_timeout
            ):
                self.stop(
                    "timed_out",
                    f"{self._where()} timed out after {self.cell_timeout:g} s (cell timeout)",
                )
        if self._ending is not None:
            if not self._cancelled and self._task is not None:
                # Once: a second cancel would interrupt nbclient's cleanup of the kernel.
                self._cancelled = True
                with self._lock:
                    pgid = self.pgid
                if pgid is not None:
                    kill_group(pgid)
                self._task.cancel()
            return
        if self._dirty and now - self._saved_at >= _AUTOSAVE:
            self._save()

    def _note_kernel(self) -> None:
        """Register the kernel's process group with the reaper as soon as it exists."""
        if self.pgid is not None or self._client is None:
            return
        provisioner = getattr(self._client.km, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        if pid is None:
            return
        pgid = getattr(provisioner, "pgid", None) or pid
        register(pgid)
        with self._lock:
            self.pgid = pgid
            ending = self._ending
        if ending is not None:  # stopped while the kernel was starting
            kill_group(pgid)

    async def _cleanup(self, client: NotebookClient) -> None:
        """Whatever way the run ended: no kernel, no process of its group, no exit hook."""
        self._note_kernel()
        km: Any = client.km
        if km is not None:  # cancelled before nbclient's own cleanup could run
            for step in (lambda: km.shutdown_kernel(now=True), km.cleanup_resources):
                try:
                    await ensure_async(step())
                except Exception:
                    pass
            client.km = None
        if client.kc is not None:
            client.kc.stop_channels()
            client.kc = None
        # nbclient registers this per run; at interpreter exit it would drive a second loop
        # over this loop's sockets. The kernel is gone by now in any case.
        atexit.unregister(client._cleanup_kernel)
        with self._lock:
            pgid = self.pgid
        if pgid is not None:
            kill_group(pgid)  # what the kernel started and left behind
            unregister(pgid)
        if self._sockets is not None:  # (a kernel killed leaves its socket files)
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None

    # ------------------------------------------------------------------ nbclient hooks

    async def _on_notebook_start(self, notebook: Any) -> None:
        self._note_kernel()
        if self._client is not None:
            atexit.unregister(self._client._cleanup_kernel)
        if not self.total:  # no cell to wait for: the run begins now
            await self._begin()

    async def _begin(self) -> None:
        """Right before the first cell (after nbclient's kernel_info round trip, so that at
        the start time only the cell's execute request is left): wait for ``start_at``."""
        self._begun = True
        if self.start_at is not None:
            delay = self.start_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        reason = self.on_start() if self.on_start is not None else None
        if reason is not None:
            self.stop("cancelled", reason)
            await asyncio.sleep(3600)  # the watcher cancels us at its next tick

    async def _on_cell_execute(self, cell: Any, cell_index: int) -> None:
        if not self._begun:
            await self._begin()
        self._cell, self._cell_index = cell, cell_index
        self._cell_started = time.monotonic()
        self._seen = {}
        cell.metadata.setdefault("nbsched", {})["status"] = "running"

    def _on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        self._pump()
        failed = (execute_reply or {}).get("content", {}).get("status") == "error"
        cell.metadata.setdefault("nbsched", {})["status"] = "failed" if failed else "completed"
        if not failed:
            self.done += 1
            self._progress()
        self._save()
        self._cell_started = time.monotonic()
        if not failed:
            self._cell = None  # between cells: no cell timeout running

    # ------------------------------------------------------------------ output

    def _pump(self) -> None:
        """Stream the text of the current cell's new stream outputs."""
        cell = self._cell
        if cell is None:
            return
        seen = self._seen
        for out in list(cell.get("outputs", ())):
            if id(out) in seen:
                continue
            seen[id(out)] = out  # (kept alive: an id is not reused while we hold it)
            self._dirty = True
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                self.output.append(text)
                if self.on_output is not None:
                    self.on_output(text)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def _save(self) -> None:
        doc.save(self.nb, self.output_path)
        self._saved_at = time.monotonic()
        self._dirty = False


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
