"""What only the SQLAlchemy store has: schema versions, locks, URLs, SQLite set-up, and the
cost of the statements that run all the time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from nbsched.abc import ALL_OWNERS, JobStore
from nbsched.errors import InvalidArgumentError, StateVersionError, StoreError
from nbsched.jobs import RunStatus
from nbsched.stores import MemoryJobStore, SQLAlchemyJobStore
from nbsched.stores.sqlalchemy import SCHEMA_VERSION

from .conftest import Stores
from .helpers import make_job, make_run
from .test_contract import ids, names, snapshot


def sql(store: JobStore) -> SQLAlchemyJobStore:
    assert isinstance(store, SQLAlchemyJobStore)
    return store


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def opened(sqlite_url: str) -> Iterator[SQLAlchemyJobStore]:
    store = SQLAlchemyJobStore(sqlite_url)
    store.open()
    try:
        yield store
    finally:
        store.close()


# -- schema version -----------------------------------------------------------------------------


def test_the_schema_version_is_recorded_and_a_newer_one_refused(persistent_stores: Stores) -> None:
    store = sql(persistent_stores.make())
    store.add_job(make_job("a"))
    meta = store.tables.meta
    with store.engine.connect() as conn:
        stored = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
        assert stored.scalar() == SCHEMA_VERSION == 2
    with store.engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=3))
    with pytest.raises(StateVersionError, match="schema version 3.*up to 2.*newer nbsched"):
        persistent_stores.make()
    # refusing touched nothing: the job is still there for the newer version
    with store.engine.connect() as conn:
        assert conn.execute(select(store.tables.jobs.c.name)).scalars().all() == ["a"]


# -- locks and failures -------------------------------------------------------------------------


def test_a_locked_sqlite_file_fails_writes_after_busy_timeout_then_recovers(
    sqlite_url: str,
) -> None:
    store = SQLAlchemyJobStore(sqlite_url, busy_timeout=0.05)
    store.open()
    try:
        store.add_job(make_job("a"))
        before = snapshot(store)
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            for call in (
                lambda: store.add_job(make_job("b")),
                lambda: store.update_job(make_job("a", paused=True)),
                lambda: store.remove_job("a"),
                lambda: store.set_next_run_times([("a", None)]),
                lambda: store.write_runs([make_run("r1", "a")]),
                lambda: store.finish_stale_runs(None, RunStatus.crashed, "x", 0.0),
            ):
                with pytest.raises(StoreError, match="database is locked") as info:
                    call()
                message = str(info.value)
                assert sqlite_url in message and "\n" not in message
                assert isinstance(info.value, RuntimeError)
            # WAL: readers do not wait for the writer, so polling keeps working
            assert snapshot(store) == before
        finally:
            other.rollback()
            other.close()
        store.add_job(make_job("b"))
        store.write_runs([make_run("r1", "a")])
        assert names(store.get_jobs()) == ["a", "b"]
        assert ids(store.get_runs()) == ["r1"]
    finally:
        store.close()


def test_busy_timeout_can_be_changed_after_construction(sqlite_url: str) -> None:
    store = SQLAlchemyJobStore(sqlite_url)
    store.busy_timeout = 0.25
    store.open()
    try:
        assert store.busy_timeout == 0.25
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
        store.busy_timeout = 0.03  # applies to connections already in the pool, too
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30
        with pytest.raises(InvalidArgumentError, match="busy_timeout"):
            store.busy_timeout = -1
    finally:
        store.close()


def test_an_unreachable_database_is_a_store_error_with_the_password_masked() -> None:
    store = SQLAlchemyJobStore("postgresql+psycopg://me:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        store.open()
    message = str(info.value)
    assert "s3cret" not in message and "me:***@127.0.0.1:1" in message
    assert "open failed" in message and "\n" not in message
    with pytest.raises(StoreError, match=r"me:\*\*\*@127\.0\.0\.1:1/nowhere: open failed"):
        store.get_jobs()  # tries to open again, and fails the same way
    store.close()


def test_a_store_used_before_open_or_after_close_opens_itself(sqlite_url: str) -> None:
    store = SQLAlchemyJobStore(sqlite_url)
    store.add_job(make_job("a"))  # creates the tables
    store.close()
    assert names(store.get_jobs()) == ["a"]
    store.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "nonsense"}, "Cannot use 'nonsense' as a job store URL"),
        ({"url": "nodb+nodriver://x"}, "Cannot use"),
        ({"table_prefix": "bad-prefix"}, "table_prefix"),
        ({"table_prefix": "x" * 41}, "table_prefix"),
        ({"busy_timeout": -0.5}, "busy_timeout"),
        ({"busy_timeout": "2"}, "busy_timeout"),
        ({"retention": 0}, "retention"),
    ],
)
def test_bad_arguments_are_refused(
    sqlite_url: str, kwargs: dict[str, object], message: str
) -> None:
    kwargs.setdefault("url", sqlite_url)
    with pytest.raises(InvalidArgumentError, match=message):
        SQLAlchemyJobStore(**kwargs)  # type: ignore[arg-type]


# -- SQLite set-up ------------------------------------------------------------------------------


def test_sqlite_files_use_wal_and_get_their_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    store = SQLAlchemyJobStore(f"sqlite:///{path}")
    store.open()
    try:
        store.add_job(make_job("a"))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2000
        assert path.exists()
    finally:
        store.close()


def test_a_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLAlchemyJobStore("sqlite:///sub/rel.db")
    store.open()
    try:
        store.add_job(make_job("a"))
    finally:
        store.close()
    assert (tmp_path / "sub" / "rel.db").exists()


def test_in_memory_sqlite_is_one_database_for_every_thread() -> None:
    store = SQLAlchemyJobStore("sqlite://")
    store.open()
    try:
        errors: list[BaseException] = []

        def add(n: int) -> None:
            try:
                for i in range(10):
                    store.add_job(make_job(f"t{n}-{i}"))
                    store.write_runs([make_run(f"r{n}-{i}", f"t{n}-{i}")])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.get_jobs()) == 30 and len(store.get_runs(limit=100)) == 30
    finally:
        store.close()


def test_a_callers_engine_is_used_and_not_disposed(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'mine.db'}")
    with engine.connect() as conn:  # a pooled connection made before the store hooks in
        conn.exec_driver_sql("SELECT 1")
    store = SQLAlchemyJobStore(engine, busy_timeout=0.5)
    store.open()
    store.add_job(make_job("a"))
    store.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM nbsched_jobs")).scalars().all() == ["a"]
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 500
    second = SQLAlchemyJobStore(engine)  # a second store on the same engine: hooks once
    second.open()
    assert names(second.get_jobs()) == ["a"]
    second.close()
    engine.dispose()


def test_table_prefixes_keep_stores_apart(sqlite_url: str) -> None:
    one = SQLAlchemyJobStore(sqlite_url, table_prefix="one_")
    two = SQLAlchemyJobStore(sqlite_url, table_prefix="two_")
    one.open()
    two.open()
    try:
        one.add_job(make_job("a"))
        assert two.get_jobs() == [] and names(one.get_jobs()) == ["a"]
    finally:
        one.close()
        two.close()


def test_describe_and_repr_mask_the_password() -> None:
    store = SQLAlchemyJobStore("postgresql+psycopg://me:s3cret@db.example/jobs")
    assert store.describe() == "postgresql+psycopg://me:***@db.example/jobs"
    assert "s3cret" not in repr(store)
    assert store.is_shared and not MemoryJobStore.is_shared
    assert MemoryJobStore().describe() == "memory"


# -- cost of the frequent statements -----------------------------------------------------------


def _plan(conn: Connection, stmt: ClauseElement, **params: object) -> str:
    # (IN lists rendered in place: their parameters are expanded only at execution)
    compiled = stmt.compile(conn, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    values = compiled.construct_params(params) or {}
    positional = tuple(values[key] for key in compiled.positiontup or ())
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", positional)
    return " | ".join(str(row[-1]) for row in rows)


def test_the_frequent_queries_use_indexes_on_sqlite(opened: SQLAlchemyJobStore) -> None:
    """change_marker is polled every second by every kernel; get_runs and the prune run with
    every batch. None of them may scan a table or sort in a temporary b-tree."""
    store = opened
    history = store._history
    queries: dict[str, tuple[ClauseElement, dict[str, object]]] = {
        "marker": (store._marker_stmt, {}),
        "prune": (history._prune, {"prune_job": "x", "prune_keep": 1000}),
        "runs of a job": (history.recent("x", ALL_OWNERS, 50), {}),
        "runs of an owner": (history.recent(None, "x", 50), {}),
        "newest run of some jobs": (history.last(["x", "y"], ALL_OWNERS), {}),
        "stale runs": (history.finish_stale("x", RunStatus.crashed, "gone", 0.0, ()), {}),
    }
    with store.engine.connect() as conn:
        for what, (stmt, params) in queries.items():
            plan = _plan(conn, stmt, **params)
            assert "SEARCH" in plan, (what, plan)
            assert "SCAN" not in plan and "TEMP B-TREE" not in plan, (what, plan)


def test_writing_runs_of_young_jobs_prunes_nothing(opened: SQLAlchemyJobStore) -> None:
    store = SQLAlchemyJobStore(opened.url, retention=3)
    store.open()
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)

    def deletes() -> int:
        return len([s for s in statements if s.startswith("DELETE")])

    try:
        store.write_runs([make_run("r1", "a", 1), make_run("r2", "b", 2)])
        # a run written when it starts and again when it ends is one run, not two
        running = make_run("r3", "a", 3, status=RunStatus.running, finished_ts=None)
        store.write_runs([running])
        store.write_runs([make_run("r3", "a", 3)])
        assert deletes() == 0
        store.write_runs([make_run("r4", "a", 4), make_run("r5", "a", 5)])
        assert deletes() == 1
        assert ids(store.get_runs("a")) == ["r5", "r4", "r3"]
        # a new store object (another process) counts once, then knows
        other = SQLAlchemyJobStore(opened.url, retention=3)
        event.listen(other.engine, "before_cursor_execute", record)
        other.open()
        other.write_runs([make_run("b2", "b", 3)])
        other.write_runs([make_run("b3", "b", 4)])
        other.close()
        assert deletes() == 1 and ids(store.get_runs("b")) == ["b3", "b2", "r2"]
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
        store.close()
