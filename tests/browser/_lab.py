"""A real JupyterLab and a real browser, for tests that click what users click.

Reusable by any browser test (the widget panel, the JupyterLab sidebar)::

    with LabServer(tmp_path, env={"NBSCHED_DB_URL": url}) as lab, browser_page() as page:
        lab.write_notebook("demo.ipynb", ["%load_ext nbsched", "%schedule panel"])
        open_notebook(page, lab, "demo.ipynb")
        run_cells(page, 2)

* :class:`LabServer` starts ``jupyter lab`` from this interpreter on a free port, as a child
  process, with its own Jupyter config/runtime/workspace/settings directories under a
  temporary folder (the user's configuration never leaks in, and the "Jupyter news" toast is
  off), and stops it by pid.
* :func:`browser_page` drives Debian's ``chromium`` through Python Playwright. It never
  downloads a browser (``playwright install`` is not used): a missing chromium is a test
  failure with the remedy in the message, not a skip.

Waiting is always on a condition with a bound (the server's ``/api/status``, a selector, the
kernel status), never a sleep and hope.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "LabServer",
    "browser_page",
    "chromium_path",
    "open_notebook",
    "run_cells",
    "wait_for",
]

#: screenshots and logs kept after a run (gitignored)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TOKEN = "nbsched-browser-test"


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate()`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.05)


def chromium_path() -> str:
    """Debian's chromium, or a failure that says how to get it."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if found is None:
        pytest.fail(
            "browser tests need Debian's chromium: apt-get install -y chromium "
            "(.ci/run does this); Playwright's own browser download is not used",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LabServer:
    """``jupyter lab`` in a child process, serving ``root / "notebooks"``.

    :param root: a temporary folder for the notebooks and the isolated Jupyter directories
    :param env: extra environment for the server and the kernels it starts
    :param startup_timeout: seconds the server may take to answer
    """

    def __init__(
        self, root: Path, env: Mapping[str, str] | None = None, startup_timeout: float = 90.0
    ) -> None:
        self.root = root
        self.notebooks = root / "notebooks"
        self.home = root / "jupyter"
        self.log_path = root / "lab.log"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._extra_env = dict(env or {})
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        home = self.home
        env = dict(os.environ)
        env.update(
            HOME=str(home / "home"),
            IPYTHONDIR=str(home / "ipython"),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.update(self._extra_env)
        return env

    def start(self) -> LabServer:
        """Start the server and wait until it answers."""
        self.notebooks.mkdir(parents=True, exist_ok=True)
        for sub in ("home", "ipython", "config", "data", "runtime", "workspaces"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        # The announcements toast ("get notified about Jupyter news?") would cover the page.
        notify = self.home / "settings" / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True, exist_ok=True)
        (notify / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}",
            "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
            "--allow-root",  # CI machines run as root; the server refuses to start otherwise
            f"--ServerApp.root_dir={self.notebooks}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log = open(self.log_path, "wb")  # the child keeps its own copy of the descriptor
        self._proc = subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={TOKEN}", timeout=2):
                    return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("jupyter lab did not start:\n" + self.log_text(), pytrace=False)
                time.sleep(0.2)

    def url(self, path: str = "lab") -> str:
        """``path`` on the server, with the token; ``reset`` ignores saved workspaces."""
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path}{sep}reset&token={TOKEN}"

    def write_notebook(self, name: str, cells: Sequence[str]) -> Path:
        """A notebook of code cells under the server's root."""
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {
            "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
        }
        path = self.notebooks / name
        nbformat.write(nb, str(path))
        return path

    def log_text(self) -> str:
        """What the server logged (kernels' stderr included)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (it shuts its kernels down), by pid."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A Playwright page in headless Debian chromium."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_notebook(page: Any, lab: LabServer, name: str, timeout: float = 90.0) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel is connected and idle.

    The notebook's execution indicator reads idle *before* the kernel has started; only the
    status bar's "| Idle" means a connected kernel (cells run before that are dropped).
    """
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=timeout * 1000)
    page.wait_for_function(
        "() => document.querySelector('.jp-StatusBar-Widget')?.innerText.includes('| Idle')",
        timeout=timeout * 1000,
    )


def run_cells(page: Any, count: int, timeout: float = 60.0) -> None:
    """Run the first ``count`` cells one by one (Shift+Enter), each until it has an
    execution count and the kernel is idle again."""
    page.click(".jp-Notebook .jp-Cell .cm-content")
    for i in range(count):
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            """(i) => {
                const cells = document.querySelectorAll('.jp-Notebook .jp-CodeCell');
                const prompt = cells[i]?.querySelector('.jp-InputArea-prompt');
                return prompt && /\\[\\d+\\]/.test(prompt.textContent);
            }""",
            arg=i,
            timeout=timeout * 1000,
        )
