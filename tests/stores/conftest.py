"""Fixtures of the store contract suite: one ``stores`` fixture parametrized over every store.

PostgreSQL tests need the server on 127.0.0.1:5432 (or ``NBSCHED_TEST_PG_URL``). If it is
down they fail with a message saying how to start it -- they are never skipped silently.
Each test session works in a schema of its own, dropped at the end, and each test in tables
with a prefix of its own, dropped at teardown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from nbsched.abc import JobStore
from nbsched.stores import MemoryJobStore
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore, build_tables

from . import helpers  # noqa: F401  (registers the test triggers)

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


# -- stores ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a schema of this session's own on the test PostgreSQL server."""
    base = make_url(os.environ.get("NBSCHED_TEST_PG_URL", DEFAULT_PG_URL))
    shown = base.render_as_string(hide_password=True)
    schema = f"nbsched_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.update_query_dict({"connect_timeout": "3"}))
    reason = ""
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    if reason:  # failed outside the except block: the message, not a chain of tracebacks
        admin.dispose()
        pytest.fail(
            f"PostgreSQL server at {shown} is down or refuses us ({reason}). These tests need "
            f"it: start it with `{PG_START}`, or point NBSCHED_TEST_PG_URL at another server "
            "(deselect them with -m 'not external_service' only if you really must).",
            pytrace=False,
        )
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@dataclass
class Stores:
    """Makes store objects for one test; every call of :meth:`make` opens a new store object
    on the *same* database (for persistent kinds), as a second process would."""

    kind: str
    url: str | None = None
    prefix: str = "nbsched_"
    made: list[JobStore] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.kind != "memory"

    def make(self, **kwargs: Any) -> JobStore:
        store: JobStore
        if self.kind == "memory":
            store = MemoryJobStore(**kwargs)
        else:
            assert self.url is not None
            kwargs.setdefault("table_prefix", self.prefix)
            store = SQLAlchemyJobStore(self.url, **kwargs)
        store.open()
        self.made.append(store)
        return store

    def close_all(self) -> None:
        for store in self.made:
            store.close()


_PG = pytest.param("postgres", marks=pytest.mark.external_service)


def _stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    kind = request.param
    if kind == "memory":
        factory = Stores(kind)
    elif kind == "sqlite":
        factory = Stores(kind, url=f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        factory = Stores(kind, url=request.getfixturevalue("pg_url"), prefix=_unique_prefix())
    try:
        yield factory
    finally:
        factory.close_all()
        if kind == "postgres":
            drop_tables(factory.url, factory.prefix)


@pytest.fixture(params=["memory", "sqlite", _PG])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Every kind of store."""
    yield from _stores(request, tmp_path)


@pytest.fixture(params=["sqlite", _PG])
def persistent_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The stores that persist (and pickle): for tests of what survives a process."""
    yield from _stores(request, tmp_path)


@pytest.fixture
def store(stores: Stores) -> JobStore:
    return stores.make()


def _unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}_"


def drop_tables(url: str | None, prefix: str) -> None:
    assert url is not None
    engine = create_engine(url)
    try:
        metadata = MetaData()
        build_tables(metadata, prefix, engine.dialect.name)
        metadata.drop_all(engine, checkfirst=True)
    finally:
        engine.dispose()
