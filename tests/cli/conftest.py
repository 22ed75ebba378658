"""Fixtures of the command-line tests: a real SQLite store, ``nbsched`` run in-process
(``main(argv)``, for speed) and as a program (``python -m nbsched``, in a subprocess), and a
fresh PostgreSQL database for the tests that need one.

The autouse ``jupyter_env`` fixture (tests/conftest.py) points HOME and the Jupyter
directories at a temporary directory and removes ``NBSCHED_DB_URL``: subprocesses inherit
that environment, so no test can touch a real user's store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

import nbsched
from nbsched.cli import main
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore

REPO = Path(nbsched.__file__).resolve().parents[1]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


@dataclass
class Result:
    """How one ``nbsched`` invocation ended."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'jobs.db'}"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("list", "--db", url)``: ``nbsched.cli.main`` in this process."""

    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def program_env(*extra_path: Path) -> dict[str, str]:
    """The environment of an ``nbsched`` subprocess: this tree first on ``sys.path``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *map(str, extra_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def program() -> Callable[..., Result]:
    """``program("list", "--db", url)``: ``python -m nbsched`` in a subprocess."""

    def invoke(*argv: str, timeout: float = 60.0) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "nbsched", *argv],
            capture_output=True, text=True, timeout=timeout, env=program_env(),
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return invoke


def snapshot(url: str) -> tuple[list[Any], list[Any]]:
    """Everything a command could change in the store: every job and run, as values."""
    store = SQLAlchemyJobStore(url)
    try:
        jobs = [(j.name, j.owner, j.paused, j.next_ts, j.target, j.trigger) for j in store.get_jobs()]
        runs = [(r.id, r.status, r.output) for r in store.get_runs(limit=10_000)]
    finally:
        store.close()
    return jobs, runs


@pytest.fixture
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database made for this test alone (dropped at the end, whoever
    is still connected). PostgreSQL down: the test fails saying how to start it."""
    base = make_url(os.environ.get("NBSCHED_TEST_PG_URL", DEFAULT_PG_URL))
    name = f"nbsched_cli_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        base.update_query_dict({"connect_timeout": "3"}), isolation_level="AUTOCOMMIT"
    )
    reason = ""
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    if reason:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL server at {base.render_as_string(hide_password=True)} is down or "
            f"refuses us ({reason}). Start it with `{PG_START}`, or point NBSCHED_TEST_PG_URL "
            "at another server.",
            pytrace=False,
        )
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(name)
        admin.dispose()


def drop_database(name: str) -> None:
    """Drop a test database, ending the sessions still on it (PostgreSQL 13+)."""
    base = make_url(os.environ.get("NBSCHED_TEST_PG_URL", DEFAULT_PG_URL))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
