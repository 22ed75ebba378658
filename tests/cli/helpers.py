"""Helpers of the command-line tests (the fixtures are in conftest.py): how an ``nbsched``
invocation ended, the environment of an ``nbsched`` subprocess, a snapshot of a store, and
dropping a PostgreSQL test database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import nbsched
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


def program_env(*extra_path: Path) -> dict[str, str]:
    """The environment of an ``nbsched`` subprocess: this tree first on ``sys.path``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *map(str, extra_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def snapshot(url: str) -> tuple[list[Any], list[Any]]:
    """Everything a command could change in the store: every job and run, as values."""
    store = SQLAlchemyJobStore(url)
    try:
        jobs = [(j.name, j.owner, j.paused, j.next_ts, j.target, j.trigger) for j in store.get_jobs()]
        runs = [(r.id, r.status, r.output) for r in store.get_runs(limit=10_000)]
    finally:
        store.close()
    return jobs, runs


def pg_base_url() -> str:
    return os.environ.get("NBSCHED_TEST_PG_URL", DEFAULT_PG_URL)


def drop_database(name: str) -> None:
    """Drop a test database, ending the sessions still on it (PostgreSQL 13+)."""
    admin = create_engine(make_url(pg_base_url()), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
