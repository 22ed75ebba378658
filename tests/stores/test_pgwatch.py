"""``JobStore.watch`` on PostgreSQL: LISTEN/NOTIFY from a trigger on the job-change counter
(and, for watchers of runs, one per statement on the runs table), and polling in its place
while the listening connection is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import create_engine, text

from nbsched.jobs import Job, Run, RunStatus
from nbsched.stores._pgwatch import PgWatch, channel_name, runs_channel_name
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
            for function in ("notify_changes", "notify_runs"):
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {prefix}{function}() CASCADE")
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
    watch = PgWatch(watched.engine.url, [channel_name(watched.table_prefix)], calls)
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


def _run(run_id: str, job: str = "j", status: RunStatus = RunStatus.succeeded) -> Run:
    return Run(id=run_id, job_name=job, status=status, scheduled_ts=1.0e9, started_ts=1.0e9,
               finished_ts=1.0e9 + 1)


def test_a_run_write_by_another_store_reaches_run_watchers_only(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore],
) -> None:
    # The server's live view asks for runs; schedulers watch jobs only, so that the runs of
    # every scheduler on the database do not wake them all.
    watched, writer = two_stores
    jobs_only, with_runs = Calls(), Calls()
    stops = [watched.watch(jobs_only), watched.watch(with_runs, runs=True)]
    assert None not in stops
    try:
        wait_for(lambda: jobs_only.n >= 1 and with_runs.n >= 1, 10, "the looks on connecting")
        quiet, before = jobs_only.n, with_runs.n
        writer.write_runs([_run("r1", status=RunStatus.running)])
        wait_for(lambda: with_runs.n > before, 10, "the notification of the run")
        writer.write_runs([_run("r1")])  # the same run finished: an update
        wait_for(lambda: with_runs.n > before + 1, 10, "the notification of the run's end")
        # a job write, heard by both after the runs (notifications come in commit order):
        # the jobs-only watcher heard that one and nothing before it
        writer.add_job(_job("j"))
        wait_for(lambda: jobs_only.n > quiet, 10, "the notification of add_job")
        wait_for(lambda: with_runs.n > before + 2, 10, "add_job heard by the runs watcher")
        assert jobs_only.n == quiet + 1
    finally:
        for stop in stops:
            assert stop is not None
            stop()


def test_a_batch_of_runs_is_one_notification(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore], pg_url: str
) -> None:
    watched, writer = two_stores
    prefix = watched.table_prefix
    writer.retention = 100  # the batch's transaction prunes too: still one notification
    conninfo = watched.engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False
    )
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {channel_name(prefix)}")
        listener.execute(f"LISTEN {runs_channel_name(prefix)}")
        writer.write_runs([_run(f"r{i:04}") for i in range(1000)])
        writer.add_job(_job("after"))  # a notification on the other channel marks the end
        heard = []
        for note in listener.notifies(timeout=10):
            heard.append(note.channel)
            if note.channel == channel_name(prefix):
                break
    assert heard == [runs_channel_name(prefix), channel_name(prefix)]
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        definition = conn.execute(
            text("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = :name"),
            {"name": f"{prefix}runs_written"},
        ).scalar_one()
    engine.dispose()
    assert "FOR EACH STATEMENT" in definition


def test_a_database_made_before_the_run_trigger_gets_it_on_open(
    two_stores: tuple[SQLAlchemyJobStore, SQLAlchemyJobStore], pg_url: str
) -> None:
    watched, _ = two_stores
    prefix = watched.table_prefix
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # as an older nbsched left it
        conn.exec_driver_sql(f"DROP TRIGGER {prefix}runs_written ON {prefix}runs")
        conn.exec_driver_sql(f"DROP FUNCTION {prefix}notify_runs()")
    engine.dispose()
    reopened = SQLAlchemyJobStore(pg_url, table_prefix=prefix)
    calls = Calls()
    stop = reopened.watch(calls, runs=True)
    assert stop is not None
    try:
        wait_for(lambda: calls.n >= 1, 10, "the look made on connecting")
        before = calls.n
        watched.write_runs([_run("old-db")])
        wait_for(lambda: calls.n > before, 10, "the notification of the run")
    finally:
        stop()
        reopened.close()
