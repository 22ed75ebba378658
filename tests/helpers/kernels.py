"""Real kernels for tests, through jupyter_client, in an isolated Jupyter environment.

::

    kernels = Kernels(root_dir)                 # or the ``kernel_factory`` fixture
    k = kernels.start("ipk7", notebook="x.ipynb", env={"TZ": "UTC"})
    k.run("%load_ext nbsched").text             # run a cell: stdout, stderr, displays, error
    k.eval("1 + 1")                             # a JSON-able value from the kernel
    k.wait_until("len(jobs) == 2")              # bounded; or tests.helpers.wait.wait_for
    k.pid, k.process_tree()                     # the kernel's process and what it started
    k.restart(); k.shutdown(); k.kill()
    kernels.close()                             # every kernel it started

``kind`` is the kernel generation: ``"ipk7"`` (this virtualenv) or ``"ipk6"`` (a second
virtualenv with ipykernel 6 and IPython 8, see ``ipk6_env``). Each kernel gets its own root
directory (HOME, Jupyter directories, SQLite store, notebook path) unless given one: two
kernels started with the same ``root`` and ``notebook`` are "the same notebook again".
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from . import ipk6_env
from .env import kernel_env
from .wait import wait_for

__all__ = ["KERNELS", "KernelHarness", "Kernels", "Result", "kernel_manager"]

#: the kernel generations every kernel test runs against
KERNELS = ("ipk7", "ipk6")


@dataclass
class Result:
    """What one execute request produced."""

    #: the execute reply's status: "ok", "error" or "aborted"
    status: str
    stdout: str = ""
    stderr: str = ""
    #: text/plain of execute_result and display_data outputs, in order
    data: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    #: every IOPub message of this request
    msgs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text/plain outputs, one per line."""
        return "\n".join(self.data)

    @property
    def error(self) -> str:
        """``"Ename: evalue"``, or ``""`` when the cell did not fail."""
        return f"{self.ename}: {self.evalue}" if self.ename else ""


def python_for(kind: str) -> str:
    """The interpreter of a kernel generation (builds the ipykernel 6 venv if needed)."""
    if kind == "ipk7":
        return sys.executable
    if kind == "ipk6":
        try:
            return str(ipk6_env.ensure())
        except Exception as exc:  # loud: the ipykernel 6 half of the suite must not vanish
            raise RuntimeError(f"could not build the ipykernel 6 venv: {exc}") from exc
    raise ValueError(f"unknown kernel kind {kind!r}; expected one of {KERNELS}")


def kernel_manager(
    kind: str, root: Path, notebook: str, env: Mapping[str, str] | None = None
) -> tuple[KernelManager, dict[str, str]]:
    """A (not started) kernel manager for ``kind`` whose kernelspec lives under ``root``,
    and the isolated environment to start it with (plus ``env``)."""
    full_env = kernel_env(root, notebook)
    full_env.update(env or {})
    if kind == "ipk6":
        # The ipykernel 6 venv finds nbsched through a .pth naming the tree that built it; a
        # venv shared by several working trees (NBSCHED_IPK6_VENV) must still run this one.
        path = full_env.get("PYTHONPATH")
        full_env["PYTHONPATH"] = os.pathsep.join([str(ipk6_env.REPO), *([path] if path else [])])
    data_dir = Path(full_env["JUPYTER_DATA_DIR"])
    name = f"nbsched-{kind}"
    spec_dir = data_dir / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python_for(kind), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"nbsched tests ({kind})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    ksm = KernelSpecManager(kernel_dirs=[str(data_dir / "kernels")], ensure_native_kernel=False)
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    # A loaded machine must not turn a graceful shutdown into SIGTERM (2.5 s by default):
    # the shutdown tests check that the kernel exits by itself, and read what it wrote.
    km.shutdown_wait_time = 20.0
    return km, full_env


class KernelHarness:
    """One running kernel. :meth:`run` sends an execute request (optionally with a
    front-end ``cellId``) and returns what came back for it; every IOPub message, whatever
    its parent, is also kept in :attr:`iopub` for output-isolation checks."""

    def __init__(self, km: KernelManager, kind: str, env: dict[str, str], root: Path) -> None:
        self.km = km
        self.kind = kind
        self.env = env
        #: the directory holding this kernel's HOME, Jupyter dirs, store and notebook
        self.root = root
        self.kc = km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=60)
        except BaseException:  # (a kernel that died at start): no sockets left open
            self.kc.stop_channels()
            raise
        self.iopub: list[dict[str, Any]] = []

    # -- what it is ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The kernel generation (``"ipk7"`` or ``"ipk6"``)."""
        return self.kind

    @property
    def db_url(self) -> str:
        """The URL of its SQLite store."""
        return self.env["NBSCHED_DB_URL"]

    @property
    def owner(self) -> str:
        """The notebook path the kernel was given (its jobs' owner)."""
        return self.env["JPY_SESSION_NAME"]

    @property
    def pid(self) -> int:
        """The kernel process's id."""
        return int(self.km.provisioner.pid)  # type: ignore[union-attr]

    @property
    def process(self) -> Any:
        """The kernel's ``subprocess.Popen`` (``wait()`` gives its exit status)."""
        return self.km.provisioner.process  # type: ignore[union-attr]

    def process_tree(self) -> list[psutil.Process]:
        """The kernel process and all its descendants alive now (kernel first)."""
        try:
            proc = psutil.Process(self.pid)
            return [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    # -- running code -------------------------------------------------------------------------

    def send(self, code: str, *, cell_id: str | None = None) -> str:
        """Send an execute request without waiting; returns its msg_id (see :meth:`collect`)."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def collect(self, msg_id: str, *, timeout: float = 60, check: bool = False) -> Result:
        """What request ``msg_id`` produced, once the kernel is idle after it and its reply
        came.

        :raises TimeoutError: not within ``timeout`` seconds
        :raises AssertionError: ``check`` and the cell failed
        """
        result = Result(status="?")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle status within {timeout} s")
            try:
                m = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            self.iopub.append(m)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            result.msgs.append(m)
            kind, c = m["msg_type"], m["content"]
            if kind == "stream":
                if c["name"] == "stdout":
                    result.stdout += c["text"]
                else:
                    result.stderr += c["text"]
            elif kind in ("execute_result", "display_data"):
                result.data.append(c["data"].get("text/plain", ""))
                if "text/html" in c["data"]:
                    result.html.append(c["data"]["text/html"])
            elif kind == "error":
                result.ename, result.evalue = c["ename"], c["evalue"]
            elif kind == "status" and c["execution_state"] == "idle":
                break
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no execute reply within {timeout} s")
            try:
                reply = self.kc.get_shell_msg(timeout=remaining)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                content = reply["content"]
                result.status = content["status"]
                result.ename = result.ename or content.get("ename", "")
                result.evalue = result.evalue or content.get("evalue", "")
                break
        if check and result.status != "ok":
            raise AssertionError(f"cell failed: {result.error}\n--- stderr:\n{result.stderr}")
        return result

    def run(
        self, code: str, *, cell_id: str | None = None, timeout: float = 60, check: bool = True
    ) -> Result:
        """Run ``code`` as a cell and return what it produced.

        :param cell_id: the front-end's cell id (JupyterLab sends one with every cell)
        :param check: raise ``AssertionError`` if the cell fails
        """
        try:
            return self.collect(self.send(code, cell_id=cell_id), timeout=timeout, check=check)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- code:\n{code}") from None

    def eval(self, expr: str, *, timeout: float = 60) -> Any:
        """The value of a JSON-able expression in the kernel (``nbsched.kernel`` is imported
        for it)."""
        res = self.run(
            f"import json as _json, nbsched.kernel; print(_json.dumps({expr}))", timeout=timeout
        )
        return json.loads(res.stdout.strip().splitlines()[-1])

    def wait_until(self, expr: str, *, timeout: float = 10.0, what: str = "") -> Any:
        """Evaluate ``expr`` in the kernel until it is truthy (bounded); returns its value.

        :raises AssertionError: still falsy after ``timeout`` seconds
        """
        value: Any = None

        def truthy() -> bool:
            nonlocal value
            value = self.eval(expr)
            return bool(value)

        wait_for(truthy, timeout, what or expr, poll=0.05)
        return value

    def drain(self, quiet: float = 0.05) -> None:
        """Collect into :attr:`iopub` the messages that arrived while no request was waiting
        (until none comes for ``quiet`` seconds)."""
        while True:
            try:
                self.iopub.append(self.kc.get_iopub_msg(timeout=quiet))
            except queue.Empty:
                return

    # -- ending it ----------------------------------------------------------------------------

    def restart(self) -> None:
        """Graceful restart, as JupyterLab's "Restart kernel" does (``do_shutdown`` runs)."""
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)
        self.drain()

    def shutdown(self, *, now: bool = False) -> None:
        """Shut the kernel down: a ``shutdown_request`` (``now=False``), or kill it at once."""
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=now)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the kernel process (SIGKILL by default: no Python code runs)."""
        os.kill(self.pid, sig)

    def close(self) -> None:
        """Stop the channels and make sure the kernel is gone (idempotent)."""
        self.kc.stop_channels()
        if not self.km.has_kernel:
            return
        try:
            self.km.shutdown_kernel(now=False)
        except Exception:  # it does not answer any more: kill it
            self.km.shutdown_kernel(now=True)


class Kernels:
    """Starts kernels under ``base`` (a fresh root each, unless one is given) and closes
    them all in :meth:`close`."""

    def __init__(self, base: Path | None = None) -> None:
        self._base = base
        self._started: list[KernelHarness] = []

    def start(
        self,
        kind: str = "ipk7",
        *,
        notebook: str = "notebook.ipynb",
        root: Path | None = None,
        env: Mapping[str, str] | None = None,
        stderr: IO[str] | None = None,
    ) -> KernelHarness:
        """Start a kernel and wait until it answers.

        :param kind: ``"ipk7"`` or ``"ipk6"``
        :param notebook: the notebook name it runs (its jobs' owner is ``root/work/notebook``)
        :param root: its directory; the same root means the same store and notebook path
        :param env: more environment variables for the kernel
        :param stderr: where the kernel process's stderr goes (default: ours)
        """
        if root is None:
            root = Path(tempfile.mkdtemp(prefix=f"kernel-{kind}-", dir=self._base))
        km, full_env = kernel_manager(kind, root, notebook, env)
        km.start_kernel(env=full_env, cwd=str(root / "work"), stderr=stderr)
        try:
            harness = KernelHarness(km, kind, full_env, root)
        except BaseException:
            km.shutdown_kernel(now=True)
            raise
        self._started.append(harness)
        return harness

    def close(self) -> list[str]:
        """Close every kernel started here; returns the errors (one line each)."""
        errors = []
        for harness in self._started:
            try:
                harness.close()
            except Exception as exc:  # keep closing the others
                errors.append(f"closing a kernel {harness.kind} failed: {exc}")
        self._started.clear()
        return errors
