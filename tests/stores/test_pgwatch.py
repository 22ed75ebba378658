"""``JobStore.watch`` on PostgreSQL: LISTEN/NOTIFY from a trigger on the job-change counter,
and polling in its place while the listening connection is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text

from nbsched.jobs import Job
from nbsched.stores._pgwatch import PgWatch, channel_name
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from nbsched.triggers import IntervalTrigger
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.external_service


class Calls:
    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.n += 1


@pytest.fixture
def two_stores(
    pg_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[SQLAlchemyJobStore, SQLAlchemyJobStore]]:
    prefix = f"w{abs(hash(request.node.nodeid)) % 10**8}_"
    watched = SQLAlchemyJobStore(pg_url, table_prefix=prefix)
    writer = SQLAlchemyJobStore(pg_url, table_prefix=prefix)
    watched.open()
    try:
        yield watched, writer
    finally:
        watched.close()
        writer.close()
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            for table in ("runs", "jobs", "meta"):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{table} CASCADE")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {prefix}notify_changes() CASCADE")
        engine.dispose()


def _job(name: str) -> Job:
    return Job(name=name, target="builtins:print", trigger=IntervalTrigger(3600))


def test_a_job_write_by_another_store_is_notified(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore],
) -> None:
    watched, writer = two_stores
    calls = Calls()
    stop = watched.watch(calls)
    assert stop is not None
    try:
        wait_for(lambda: calls.n >= 1, 10, "the look made on connecting")
        before = calls.n
        writer.add_job(_job("a"))
        wait_for(lambda: calls.n > before, 10, "the notification of add_job")
        before = calls.n
        job = writer.get_job("a")
        assert job is not None
        writer.update_job(replace(job, paused=True, next_run_time=None))
        wait_for(lambda: calls.n > before, 10, "the notification of a pause")
    finally:
        stop()
    assert not [t for t in threading.enumerate() if t.name == "nbsched-store-watch"]


def test_a_lost_listening_connection_is_polled_for_then_listened_on_again(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore], pg_url: str
) -> None:
    watched, writer = two_stores
    calls = Calls()
    watch = PgWatch(watched.engine.url, channel_name(watched.table_prefix), calls)
    try:
        wait_for(lambda: watch.connected, 10, "the LISTEN connection")
        pid = watch._conn.info.backend_pid
        before = calls.n
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        engine.dispose()
        # while it is down, the callback stands in for notifications (a look a second), and
        # once more when it listens again (writes made meanwhile were not notified) ...
        wait_for(lambda: calls.n >= before + 2, 10, "looks while the connection is down")
        # ... and it listens again, so a write is heard once more
        wait_for(
            lambda: watch.connected and watch._conn.info.backend_pid != pid,
            20,
            "the LISTEN connection to come back",
        )
        before = calls.n
        writer.add_job(_job("after"))
        wait_for(lambda: calls.n > before, 10, "the notification after reconnecting")
    finally:
        watch.stop()


def test_fires_and_runs_do_not_notify(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore],
) -> None:
    # The trigger watches only the job-change counter, which run records and next run times
    # do not move: firing jobs must not wake every scheduler on the database.
    watched, writer = two_stores
    writer.add_job(_job("j"))
    marker = writer.change_marker()
    writer.set_next_run_times([("j", 1.0e9)])
    assert writer.change_marker() == marker
    engine = create_engine(writer.engine.url)
    with engine.connect() as conn:
        when = conn.execute(
            text(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgname = :name AND NOT tgisinternal"
            ),
            {"name": f"{writer.table_prefix}meta_changed"},
        ).scalar_one()
    engine.dispose()
    assert "AFTER UPDATE" in when and "jobs_changed" in when
