"""A real Jupyter server (pytest-jupyter, in-process) with the nbsched extension, on an
SQLite store the tests can also open from "kernels" (schedulers with an owner)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

# pytest-jupyter's fixtures (jp_fetch, jp_serverapp, ...) and its async test runner, for this
# directory only: registered as a plugin it would give every test of the suite a server
# cleanup and its own environment.
from pytest_jupyter.jupyter_server import *  # noqa: F403

from nbsched import Scheduler

Fetch = Callable[..., Awaitable[Any]]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("NBSCHED_DB_URL", url)
    return url


@pytest.fixture
def jp_server_config(db_url: str) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"nbsched.server": True}}}


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    """The server's root directory, with a notebook in a subfolder."""
    (jp_root_dir / "reports").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('report ran')")]
    nbformat.write(nb, str(jp_root_dir / "reports" / "daily.ipynb"))
    return jp_root_dir


@pytest.fixture
def kernel_scheduler(db_url: str) -> Iterator[Scheduler]:
    """Stands for a kernel of notebook ``work/a.ipynb`` on the same store (not started: its
    jobs are in the store, and nobody runs them)."""
    s = Scheduler(db_url, owner="work/a.ipynb", timezone="UTC")
    s.store.open()
    yield s
    s.store.close()


@pytest.fixture
def server_app(jp_serverapp: Any) -> Any:
    """The nbsched extension app of the running server."""
    return jp_serverapp.extension_manager.extension_apps["nbsched.server"].copy().pop()


async def until(predicate: Callable[[], Awaitable[object]], timeout: float = 10.0,
                what: str = "") -> None:
    """Wait, with a bound, until ``await predicate()`` is true (lets the server's loop run)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


@pytest.fixture
def api(jp_fetch: Fetch, jp_serverapp: Any) -> Fetch:
    """``await api("GET", "jobs")`` -> (status, JSON or None), errors included."""
    from tornado.httpclient import HTTPClientError

    async def call(method: str, *path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        if body is not None:
            kw["body"] = body if isinstance(body, str | bytes) else json.dumps(body)
        elif method in ("POST", "PATCH"):
            kw["body"] = b""
        try:
            response = await jp_fetch("nbsched", "api", *path, method=method, **kw)
        except HTTPClientError as exc:
            assert exc.response is not None
            response = exc.response
        text = response.body.decode() if response.body else ""
        return response.code, json.loads(text) if text else None

    return call
