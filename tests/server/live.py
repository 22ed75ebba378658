"""A Jupyter server (or JupyterLab) in a subprocess, on a free port, with isolated Jupyter
directories and the nbsched extension enabled: for tests that need a real listening server
(schemathesis, the browser)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[2]
TOKEN = "nbsched-test-token"


@dataclass
class LiveServer:
    base: str  # http://127.0.0.1:PORT
    root: Path  # the server's root directory
    db_url: str
    log: Path

    def api(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """Call ``/nbsched/api/{path}`` with the token: (status, JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/nbsched/api/{path}", data=data, method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            return exc.code, json.loads(text) if text else None


    def jupyter_api(self, path: str) -> Any:
        """``GET /api/{path}`` of the Jupyter server itself (kernels, sessions), as JSON."""
        request = urllib.request.Request(
            f"{self.base}/api/{path}", headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read().decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@contextmanager
def live_server(tmp: Path, *, lab: bool = False) -> Iterator[LiveServer]:
    """Start ``jupyter server`` (or ``jupyter lab``) and yield once it answers; stop it (by
    its pid) at the end. The lab uses the extension built in this tree (``nbsched/labextension``)."""
    root, home = tmp / "root", tmp / "home"
    root.mkdir()
    _write_notebook(root / "reports" / "daily.ipynb", "print('report ran')")
    config = home / "config"
    config.mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"nbsched.server": True}}})
    )
    data = home / "data"
    (data / "labextensions").mkdir(parents=True)
    if lab:
        built = REPO / "nbsched" / "labextension"
        if not (built / "package.json").is_file():
            raise AssertionError(
                f"The JupyterLab extension is not built ({built} is missing): run "
                "`jlpm install && jlpm build` in labextension/ (make test's install does it)"
            )
        (data / "labextensions" / "nbsched").symlink_to(built)
        notify = home / "settings" / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True)
        # no "get Jupyter news?" toast over the screenshots
        (notify / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
    db_url = f"sqlite:///{home / 'store.db'}"
    env = dict(
        os.environ,
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        IPYTHONDIR=str(home / "ipython"),
        NBSCHED_DB_URL=db_url,
        # the user data dir (this tree's build, linked above) before the environment's
        # share/jupyter, where an installed nbsched's build may be: in a virtualenv
        # jupyter_core looks there first by default
        JUPYTER_PREFER_ENV_PATH="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    port = free_port()
    app = ["jupyterlab"] if lab else ["jupyter_server"]
    cmd = [
        sys.executable, "-m", *app, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--IdentityProvider.token={TOKEN}", "--allow-root", f"--ServerApp.root_dir={root}",
        "--ServerApp.shutdown_no_activity_timeout=600",
    ]
    if lab:
        # window.jupyterapp, so a test can run a command as the user would from the palette
        cmd += ["--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    urllib.request.urlopen(f"{base}/nbsched/api/status?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            "The Jupyter server did not start:\n" + log.read_text()
                        ) from None
                    time.sleep(0.1)
            yield LiveServer(base, root, db_url, log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
