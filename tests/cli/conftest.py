"""Fixtures of the command-line tests: a real SQLite store, ``nbsched`` run in-process
(``main(argv)``, for speed) and as a program (``python -m nbsched``, in a subprocess), and a
fresh PostgreSQL database for the tests that need one (helpers: ``helpers.py``).

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
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from nbsched.cli import main

from .helpers import PG_START, Result, drop_database, pg_base_url, program_env


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


@pytest.fixture
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database made for this test alone (dropped at the end, whoever
    is still connected). PostgreSQL down: the test fails saying how to start it."""
    base = make_url(pg_base_url())
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
    finally:
        admin.dispose()
    if reason:
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
