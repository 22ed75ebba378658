"""The direct write path of the SQLAlchemy store on SQLite files: add_job, update_job and
remove_job run their statements, compiled once, on a DBAPI connection the store keeps checked
out of its engine's pool. Same results, same errors, same transactions as through
SQLAlchemy's execution; the connection is given back on close() and replaced after a failure.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from nbsched.errors import ConflictingJobError, JobLookupError, StoreError
from nbsched.stores import SQLAlchemyJobStore
from nbsched.stores._rows import job_to_row

from .helpers import at, make_job, make_run
from .test_claims import FIRE, NOW
from .test_contract import names, snapshot


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLAlchemyJobStore]:
    store = SQLAlchemyJobStore(f"sqlite:///{db_path}")
    store.open()
    try:
        yield store
    finally:
        store.close()


def kept_connections(store: SQLAlchemyJobStore) -> int:
    """Connections checked out of the store's pool (between calls: the kept one, if any)."""
    return int(store.engine.pool.checkedout())  # type: ignore[attr-defined]


def open_files_of(path: Path) -> list[str]:
    """The files of this SQLite database this process has open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(path)):
                found.append(target)
    return found


_LOCKER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()  # until the test closes our stdin
con.rollback()
"""


@contextlib.contextmanager
def locked_by_another_process(path: Path) -> Iterator[None]:
    """Another process holds the write lock of the database until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the locking process did not report in 30 s"
        assert proc.stdout.readline() == "locked\n"
        yield
    finally:
        proc.stdin.close()
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


# -- the path itself --------------------------------------------------------------------------


def test_sqlite_files_write_on_one_kept_connection(store: SQLAlchemyJobStore) -> None:
    assert kept_connections(store) == 0  # nothing kept before the first write
    store.add_job(make_job("a"))
    store.update_job(make_job("a", paused=True))
    store.add_job(make_job("b"))
    store.remove_job("b")
    assert kept_connections(store) == 1
    assert names(store.get_jobs()) == ["a"] and store.get_job("a").paused  # type: ignore[union-attr]


def test_the_compiled_statements_send_what_sqlalchemy_sends(store: SQLAlchemyJobStore) -> None:
    """Same SQL and the same converted parameters (bind processors: bool -> int, bytes ->
    sqlite3.Binary, numbers -> float) as Connection.execute() gives the driver."""
    assert store._job_sql.add_job is not None
    job = make_job("a", paused=True, args=(1, b"x"), kwargs={"k": [1.5]}, owner="me")
    row = job_to_row(job, 1.0e9)
    calls: list[tuple[Any, dict[str, Any] | None]] = [
        (store._job_sql.add_job[0], row),
        (store._job_sql.add_job[1], row),
        (store._job_sql.update_job, {f"u_{key}": value for key, value in row.items()}),
        (store._job_sql.version_of, {"p_name": "a"}),
        (store._job_sql.remove_job, {"p_name": "a"}),
        (store._job_sql.remove_runs, {"p_name": "a"}),
        (store._job_sql.bump, None),
        (store._job_sql.all_names, None),
    ]
    assert {id(stmt) for stmt, _ in calls} == {id(stmt) for stmt in store._job_sql.all}
    _send_what_sqlalchemy_sends(store, calls)


def test_the_claim_statements_send_what_sqlalchemy_sends(store: SQLAlchemyJobStore) -> None:
    """The fire claims (JSON arrays of names, an executemany) take the direct path too."""
    store.add_job(make_job("a"))
    claims = store._sqlite_claims
    calls: list[tuple[Any, dict[str, Any] | None]] = [
        (claims.rows, {"c_names": '["a", "b"]'}),
        (claims.claim_stored, {"c_won": '["a"]', "c_owner": "s1", "c_until": 2.5}),
        (claims.claim, {"c_name": "a", "c_owner": "s1", "c_until": 2.5, "c_fire": 1.5}),
        (claims.crash, {"c_low": "s1-", "c_high": "s1.", "c_now": 3.0}),
    ]
    assert {id(stmt) for stmt, _ in calls} == {id(stmt) for stmt in claims.all}
    _send_what_sqlalchemy_sends(store, calls)


def _send_what_sqlalchemy_sends(
    store: SQLAlchemyJobStore, calls: list[tuple[Any, dict[str, Any] | None]]
) -> None:
    sent: list[tuple[str, tuple[Any, ...]]] = []

    def record(conn: object, cursor: object, statement: str, parameters: Any, *args: Any) -> None:
        sent.append((statement, tuple(parameters)))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.engine.connect() as conn:
            for stmt, params in calls:
                sent.clear()
                conn.execute(stmt.core, params)
                direct = stmt.direct
                assert direct is not None
                expected = sent[-1]  # after the BEGIN of the first one
                assert (direct.sql, direct.parameters(params)) == expected
            conn.rollback()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_a_conflict_changes_nothing_and_leaves_no_transaction_open(
    store: SQLAlchemyJobStore, db_path: Path
) -> None:
    store.add_job(make_job("a", target="x:first"))
    before = snapshot(store)
    with pytest.raises(ConflictingJobError):
        store.add_job(make_job("a", target="x:second"))
    assert snapshot(store) == before
    # the write lock was released: another store object, waiting for nothing, can write
    other = SQLAlchemyJobStore(f"sqlite:///{db_path}", busy_timeout=0)
    try:
        other.add_job(make_job("b"))
    finally:
        other.close()
    store.add_job(make_job("c"))  # and the kept connection carries on
    assert names(store.get_jobs()) == ["a", "b", "c"]
    assert store.get_job("a").target == "x:first"  # type: ignore[union-attr]


def test_replace_existing_keeps_created_at(store: SQLAlchemyJobStore) -> None:
    store.add_job(make_job("a", created_at=at(-100), target="x:old"))
    store.add_job(make_job("a", created_at=at(0), target="x:new"), replace_existing=True)
    job = store.get_job("a")
    assert job is not None and job.created_at == at(-100) and job.target == "x:new"
    store.update_job(make_job("a", created_at=at(50), paused=True))
    job = store.get_job("a")
    assert job is not None and job.created_at == at(-100) and job.paused


def test_lookup_errors_on_the_direct_path_name_the_jobs(store: SQLAlchemyJobStore) -> None:
    store.add_job(make_job("alpha"))
    before = snapshot(store)
    with pytest.raises(JobLookupError, match="alph") as info:
        store.update_job(make_job("alph"))
    assert "alpha" in str(info.value)
    with pytest.raises(JobLookupError, match="alph"):
        store.remove_job("alph")
    assert snapshot(store) == before


def test_each_commit_moves_the_marker_seen_by_another_store(
    store: SQLAlchemyJobStore, db_path: Path
) -> None:
    poller = SQLAlchemyJobStore(f"sqlite:///{db_path}")
    try:
        seen = [poller.change_marker()]
        store.add_job(make_job("a"))
        seen.append(poller.change_marker())
        store.update_job(make_job("a", paused=True))
        seen.append(poller.change_marker())
        store.remove_job("a")
        seen.append(poller.change_marker())
        assert len(set(seen)) == 4 and seen == sorted(seen)  # type: ignore[type-var]
    finally:
        poller.close()


# -- the kept connection ------------------------------------------------------------------------


def test_close_gives_the_connection_back_and_the_file_can_go(
    store: SQLAlchemyJobStore, db_path: Path
) -> None:
    store.add_job(make_job("a"))
    assert open_files_of(db_path)
    store.close()
    assert open_files_of(db_path) == []
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    # used again, the store opens itself on a new, empty file
    store.add_job(make_job("b"))
    assert names(store.get_jobs()) == ["b"] and db_path.exists()


def test_a_broken_kept_connection_fails_one_call_and_is_replaced(
    store: SQLAlchemyJobStore,
) -> None:
    store.add_job(make_job("a"))
    kept = store._direct.kept
    assert kept is not None
    kept.dbapi.close()  # the connection breaks under the store
    before = snapshot(store)
    with pytest.raises(StoreError, match=r"add_job failed: Cannot operate on a closed database"):
        store.add_job(make_job("b"))
    assert snapshot(store) == before
    store.add_job(make_job("b"))
    assert store._direct.kept is not kept and kept_connections(store) == 1
    store.update_job(make_job("a", paused=True))
    store.remove_job("b")
    assert names(store.get_jobs()) == ["a"]


def test_a_callers_engine_keeps_sqlalchemys_execution(db_path: Path) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    store = SQLAlchemyJobStore(engine)
    try:
        store.add_job(make_job("a"))
        assert int(engine.pool.checkedout()) == 0  # type: ignore[attr-defined]
        assert names(store.get_jobs()) == ["a"]
    finally:
        store.close()
        engine.dispose()


@contextlib.contextmanager
def first_words(store: SQLAlchemyJobStore) -> Iterator[list[str]]:
    """The first word of every statement the store's engine sends meanwhile (a listener of
    statement events, which makes the store use SQLAlchemy's execution)."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_a_watched_engine_sees_every_statement(store: SQLAlchemyJobStore) -> None:
    """Listeners of statement events (a profiler, logging) get SQLAlchemy's execution."""
    with first_words(store) as statements:
        store.add_job(make_job("a"))
        store.remove_job("a")
    assert statements == ["BEGIN", "INSERT", "UPDATE", "BEGIN", "DELETE", "DELETE", "UPDATE"]
    store.add_job(make_job("b"))  # unwatched: the direct path again
    assert len(statements) == 7 and names(store.get_jobs()) == ["b"]


def test_a_watched_engine_sees_the_claims_too(store: SQLAlchemyJobStore) -> None:
    """The usual claim is SQL written for the driver: on SQLAlchemy's execution it is sent as
    it is, and seen."""
    for name in "abc":
        store.add_job(make_job(name))
    with first_words(store) as statements:
        assert store.claim_fires(dict.fromkeys("ab", FIRE), "s1", NOW, 30.0) == {}
        assert statements == ["BEGIN", "UPDATE"]
        lost = store.claim_fires(dict.fromkeys("abc", FIRE), "s2", NOW, 30.0)
    assert lost == {"a": FIRE, "b": FIRE}
    assert statements[2:] == ["BEGIN", "UPDATE", "SELECT", "UPDATE"]


def test_an_sqlite_before_3_33_claims_by_reading_the_rows(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual claim is an ``UPDATE .. FROM``, which came with SQLite 3.33."""
    monkeypatch.setattr(
        SQLiteDialect_pysqlite, "_get_server_version_info", lambda self, conn: (3, 31, 1)
    )
    store = SQLAlchemyJobStore(f"sqlite:///{db_path}")
    try:
        for name in "ab":
            store.add_job(make_job(name))
        with first_words(store) as statements:
            assert store.claim_fires(dict.fromkeys("ab", FIRE), "s1", NOW, 30.0) == {}
        assert statements == ["BEGIN", "SELECT", "UPDATE"]
        assert store.claim_fires({"a": FIRE}, "s2", NOW, 30.0) == {"a": FIRE}
    finally:
        store.close()


# -- locks -----------------------------------------------------------------------------------


def test_a_lock_held_by_another_process_fails_writes_after_busy_timeout(
    db_path: Path,
) -> None:
    store = SQLAlchemyJobStore(f"sqlite:///{db_path}", busy_timeout=5)
    try:
        store.add_job(make_job("a"))  # the kept connection exists, waiting up to 5 s
        store.busy_timeout = 0.2  # applies to it from the next transaction on
        before = snapshot(store)
        with locked_by_another_process(db_path):
            for call in (
                lambda: store.add_job(make_job("b")),
                lambda: store.update_job(make_job("a", paused=True)),
                lambda: store.remove_job("a"),
            ):
                started = time.monotonic()
                with pytest.raises(StoreError, match="database is locked") as info:
                    call()
                waited = time.monotonic() - started
                assert 0.15 <= waited < 4, waited
                assert str(db_path) in str(info.value) and "\n" not in str(info.value)
            assert snapshot(store) == before  # readers do not wait (WAL)
        store.add_job(make_job("b"))
        store.update_job(make_job("a", paused=True))
        assert names(store.get_jobs()) == ["a", "b"]
        assert store.get_job("a").paused  # type: ignore[union-attr]
        with store.engine.connect() as conn:  # and the write path did not leak a connection
            stored = conn.execute(text("SELECT name FROM nbsched_jobs ORDER BY name"))
            assert stored.scalars().all() == ["a", "b"]
        assert kept_connections(store) == 1
        store.write_runs([make_run("r1", "a")])  # SQLAlchemy's path is fine too
    finally:
        store.close()
