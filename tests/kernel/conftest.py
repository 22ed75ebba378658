"""Fixtures for the kernel layer: an in-process test shell, and real kernels.

* ``shell`` / ``ext``: a jupysql-style :class:`TestingShell` (history off, ``run_cell`` raises
  what the cell raised) with nbsched loaded on an in-memory store and a fake clock -- for the
  fast parser and display tests.
* ``kernel_factory`` / ``KernelHarness``: real kernels through jupyter_client, in an isolated
  Jupyter environment (own HOME, JUPYTER_*, IPYTHONDIR, SQLite store and notebook name),
  for ipykernel 7 (this venv) and ipykernel 6 (``.venv-ipk6``, see ``ipk6_env.py``).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from traitlets.config import Config

from nbsched.testing import FakeClock

from . import ipk6_env

# -- in-process shell -------------------------------------------------------------------------


class TestingShell(InteractiveShell):
    """``run_cell`` re-raises the cell's error, so tests see UsageError etc. directly."""

    __test__ = False

    def run_cell(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


OWNER = "/notebooks/test-shell.ipynb"


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestingShell]:
    ipdir = tmp_path_factory.mktemp("ipython")
    config = Config()
    config.HistoryManager.enabled = False
    config.NbschedConfig.db_url = "memory:"
    config.NbschedConfig.owner = OWNER
    config.NbschedConfig.timezone = "UTC"
    sh = TestingShell.instance(config=config, ipython_dir=str(ipdir))
    try:
        yield sh
    finally:
        from nbsched import kernel

        kernel.unload(sh)
        TestingShell.clear_instance()
        InteractiveShell.clear_instance()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def ext(shell: TestingShell, clock: FakeClock) -> Iterator[TestingShell]:
    """``shell`` with nbsched loaded (fresh in-memory store, fake clock) for one test."""
    from nbsched import kernel

    # Defined through the shell, so they are notebook functions (``__main__``).
    shell.run_cell(
        "def f():\n    print('f ran')\n\ndef g(**kwargs):\n    print('g ran', kwargs)\n\nx = 42\n"
    )
    kernel.load(shell, clock=clock)
    try:
        yield shell
    finally:
        kernel.unload(shell)
        for name in ("f", "g", "x"):
            shell.user_ns.pop(name, None)


# -- real kernels -----------------------------------------------------------------------------

KERNELS = ("ipk7", "ipk6")


@dataclass
class Result:
    """What one execute request produced."""

    status: str
    stdout: str = ""
    stderr: str = ""
    #: text/plain of execute_result and display_data outputs, in order
    data: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    msgs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.data)


class KernelHarness:
    """Drive one kernel: ``run(code)`` sends an execute request (optionally with a front-end
    ``cellId``) and returns what came back on IOPub for it. Every IOPub message, whatever
    its parent, is also kept in ``iopub`` for output-isolation checks."""

    def __init__(self, km: KernelManager, name: str, env: dict[str, str], root: Path) -> None:
        self.km = km
        self.name = name
        self.env = env
        #: the directory holding this kernel's HOME, Jupyter dirs, store and notebook
        self.root = root
        self.kc = km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []

    @property
    def db_url(self) -> str:
        return self.env["NBSCHED_DB_URL"]

    @property
    def owner(self) -> str:
        return self.env["JPY_SESSION_NAME"]

    def run(
        self,
        code: str,
        *,
        cell_id: str | None = None,
        timeout: float = 60,
        check: bool = True,
    ) -> Result:
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
        msg_id = msg["header"]["msg_id"]
        result = Result(status="?")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no idle status within {timeout} s for {code!r}")
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
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                content = reply["content"]
                result.status = content["status"]
                result.ename = result.ename or content.get("ename", "")
                result.evalue = result.evalue or content.get("evalue", "")
                break
        if check and result.status != "ok":
            raise AssertionError(
                f"cell failed: {result.ename}: {result.evalue}\n--- code:\n{code}\n"
                f"--- stderr:\n{result.stderr}"
            )
        return result

    def drain(self) -> None:
        """Collect IOPub messages that arrived while no request was waiting."""
        while True:
            try:
                self.iopub.append(self.kc.get_iopub_msg(timeout=0.05))
            except queue.Empty:
                return

    def eval(self, expr: str) -> Any:
        """The value of a JSON-able expression in the kernel."""
        res = self.run(f"import json as _json, nbsched.kernel; print(_json.dumps({expr}))")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def restart(self) -> None:
        """Graceful restart, as JupyterLab's "Restart kernel" does (do_shutdown runs)."""
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)
        self.drain()

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)


def _kernel_env(root: Path, notebook: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NBSCHED_"))}
    for var, sub in (
        ("HOME", "home"),
        ("JUPYTER_CONFIG_DIR", "jupyter_config"),
        ("JUPYTER_DATA_DIR", "jupyter_data"),
        ("JUPYTER_RUNTIME_DIR", "jupyter_runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["NBSCHED_DB_URL"] = f"sqlite:///{root / 'store' / 'nbsched.db'}"
    (root / "store").mkdir(exist_ok=True)
    env["JPY_SESSION_NAME"] = str(root / "work" / notebook)
    (root / "work").mkdir(exist_ok=True)
    env.pop("JPY_PARENT_PID", None)
    return env


def _python_for(kind: str) -> str:
    if kind == "ipk7":
        return sys.executable
    try:
        return str(ipk6_env.ensure())
    except Exception as exc:  # loud: the ipykernel 6 half of the suite must not vanish
        pytest.fail(f"could not build the ipykernel 6 venv: {exc}", pytrace=False)


def _write_kernelspec(data_dir: Path, kind: str, python: str) -> str:
    name = f"nbsched-{kind}"
    spec_dir = data_dir / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"nbsched tests ({kind})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return name


@pytest.fixture(scope="module")
def kernel_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., KernelHarness]]:
    """Start kernels in an isolated Jupyter environment; all are shut down at module end.

    ``kernel_factory(kind="ipk7", notebook="x.ipynb", root=None)``: the same ``root`` (a
    directory) means the same store and notebook path, i.e. "the same notebook again".
    """
    started: list[KernelHarness] = []

    def start(kind: str = "ipk7", notebook: str = "notebook.ipynb", root: Path | None = None):
        root = root or tmp_path_factory.mktemp(f"kernel-{kind}")
        env = _kernel_env(root, notebook)
        data_dir = Path(env["JUPYTER_DATA_DIR"])
        name = _write_kernelspec(data_dir, kind, _python_for(kind))
        ksm = KernelSpecManager(kernel_dirs=[str(data_dir / "kernels")], ensure_native_kernel=False)
        km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
        # A loaded machine must not turn a graceful shutdown into SIGTERM (2.5 s by default):
        # the shutdown tests check that the kernel exits by itself, and read what it wrote.
        km.shutdown_wait_time = 20.0
        km.start_kernel(env=env, cwd=str(root / "work"))
        harness = KernelHarness(km, kind, env, root)
        started.append(harness)
        return harness

    try:
        yield start
    finally:
        for harness in started:
            try:
                harness.close()
            except Exception as exc:  # keep closing the others
                print(f"closing kernel {harness.name} failed: {exc}", file=sys.stderr)


@pytest.fixture(scope="module", params=KERNELS)
def kernel(request: pytest.FixtureRequest, kernel_factory: Callable[..., KernelHarness]):
    """One kernel per module and kernel generation, with nbsched loaded."""
    harness = kernel_factory(request.param, notebook=f"{request.module.__name__}.ipynb")
    harness.run("%load_ext nbsched")
    return harness
