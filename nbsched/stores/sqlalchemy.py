"""SQLAlchemyJobStore: jobs and run history in a database (SQLite by default, or PostgreSQL).

One database is shared by every kernel of a user, so this store is written for
several processes at once:

* every write is one transaction; on SQLite it starts with ``BEGIN IMMEDIATE`` (taking the
  write lock up front instead of upgrading a read lock half way, which is what makes two
  writers deadlock into ``SQLITE_BUSY``), the file is in WAL mode (readers never wait for the
  writer) and every connection waits ``busy_timeout`` for a lock before failing;
* ``{prefix}meta`` holds a ``jobs_changed`` counter, bumped in the same transaction as every
  job mutation. :meth:`SQLAlchemyJobStore.change_marker` reads that one row by primary key, so
  a kernel can poll it every second to notice jobs changed by another process;
* reading never deletes or rewrites a row: a job that cannot be restored is returned with a
  ``BrokenTrigger`` (see ``_rows.py``);
* database failures surface as :class:`~nbsched.errors.StoreError` naming the (password-masked)
  URL; typed errors (``JobLookupError``, ``ConflictingJobError``, ``NotPicklableError``) pass
  through, and a call that raises has changed nothing;
* on an SQLite file, ``add_job``, ``update_job`` and ``remove_job`` take a direct path: the same
  transaction, with the same statements (compiled once), run on a DBAPI connection the store
  keeps checked out of its engine's pool. SQLAlchemy's per-call execution (pool checkout,
  events, cache lookup, result objects) was 60% of an ``add_job``; see ``_direct.py``.

Only SQLAlchemy Core is used; the tables (:func:`build_tables`), the engine set-up and the
schema live in ``_sqlsetup.py``, the direct write path in ``_direct.py``, the run table's
queries and retention prune in ``_history.py`` (the history sizes behind it in
``_runcounts.py``), fire claims and scheduler beats in ``_claims.py``, and the file watch and
the change marker's short cut in ``_filewatch.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    MetaData,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from .._clock import SystemClock
from ..abc import ALL_OWNERS, Clock, JobStore
from ..errors import (
    ConflictingJobError,
    InvalidArgumentError,
    JobLookupError,
    StateVersionError,
    StoreError,
)
from ..jobs import Job, Run, RunStatus
from ._claims import SqliteClaims, beat, claim_fires, forget, pg_next_run_times, release_case
from ._common import check_limit, check_retention
from ._direct import CoreTx, DirectPath, JobStatements, Tx
from ._filewatch import MarkerCache, watch_files
from ._history import RunHistory, owner_is
from ._outputs import discard_outputs
from ._pgwatch import PgWatch, channel_name, runs_channel_name
from ._rows import job_to_row, row_to_job, row_to_run, run_to_row
from ._runcounts import CHUNK, RunCounts
from ._sqlsetup import (
    BEGIN_OPTION,
    BEGIN_WRITE,
    CHANGES_KEY,
    SCHEMA_VERSION,
    Tables,
    build_tables,
    busy_ms_from,
    create_engine_for,
    create_schema,
    db_message,
    install_hooks,
    is_memory_sqlite,
    make_sqlite_dir,
)

__all__ = ["SQLAlchemyJobStore", "Tables", "build_tables", "SCHEMA_VERSION"]

_PREFIX_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


# -- the store --------------------------------------------------------------------------------


class SQLAlchemyJobStore(JobStore):
    """Stores jobs and runs through SQLAlchemy Core. Thread-safe; several processes may share
    one database.

    :param url: a SQLAlchemy URL (``"sqlite:///path/jobs.db"``, ``"sqlite://"`` for a private
        in-memory database, ``"postgresql+psycopg://user@host/db"``) or an :class:`Engine`.
        A caller's engine is not disposed by :meth:`close`; if several stores share one, the
        first one's ``busy_timeout`` applies
    :param retention: how many runs to keep per job (the newest)
    :param busy_timeout: seconds a write waits for another process's lock before it fails
        with :class:`~nbsched.errors.StoreError` (SQLite ``busy_timeout``, PostgreSQL
        ``lock_timeout``)
    :param table_prefix: prefix of the table and index names, so that several stores can share
        one database
    :param clock: where ``updated_at`` comes from (default: the system clock)
    """

    def __init__(
        self,
        url: str | URL | Engine,
        *,
        retention: int = 1000,
        busy_timeout: float = 2.0,
        table_prefix: str = "nbsched_",
        clock: Clock | None = None,
    ) -> None:
        self.retention = check_retention(retention)
        busy_ms = busy_ms_from(busy_timeout)
        if not isinstance(table_prefix, str) or not _PREFIX_RE.fullmatch(table_prefix):
            raise InvalidArgumentError(
                f"table_prefix must be a SQL identifier of at most 40 letters, digits and "
                f"underscores, got {table_prefix!r}"
            )
        if isinstance(url, Engine):
            engine, self._owns_engine = url, False
        else:
            try:
                engine = create_engine_for(make_url(url))
            except (ArgumentError, ImportError) as exc:
                raise InvalidArgumentError(
                    f"Cannot use {url!r} as a job store URL: {db_message(exc)}"
                ) from exc
            self._owns_engine = True
        self._engine = engine
        #: the URL with its password masked, as shown in messages
        self.url = engine.url.render_as_string(hide_password=True)
        self.table_prefix = table_prefix
        self._clock = clock or SystemClock()
        dialect = engine.dialect.name
        self._sqlite = dialect == "sqlite"
        self._memory = self._sqlite and is_memory_sqlite(engine.url)
        # The direct write path: SQLite files, on an engine of our own only. A caller's engine
        # may have a pool or connect arguments (check_same_thread) that do not allow keeping
        # one connection for every thread. (An in-memory database is one connection shared
        # with the reads: nothing to gain.)
        self._direct_wanted = self._sqlite and not self._memory and self._owns_engine
        self._settings = install_hooks(engine, busy_ms)
        self._write_engine = (
            engine.execution_options(**{BEGIN_OPTION: BEGIN_WRITE}) if self._sqlite else engine
        )
        self._metadata = MetaData()
        self._t = build_tables(self._metadata, table_prefix, dialect)
        dbapi = getattr(engine.dialect, "loaded_dbapi", None)
        self._dbapi_error: type[BaseException] = getattr(dbapi, "Error", SQLAlchemyError)
        # statements compiled by open(); its kept connection is guarded by _sqlite_lock
        self._direct = DirectPath(engine, self._settings, self._dbapi_error)
        self._upsert: Callable[[Table], Any] | None = None
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            self._upsert = sqlite_insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self._upsert = pg_insert
        self._build_statements()

        self._lock = threading.Lock()  # open/close
        # SQLite has one writer at a time anyway: queue this process's writers on a lock
        # rather than in SQLite's sleep-and-retry busy handler. An in-memory database is one
        # shared connection, so its reads take the lock too.
        self._sqlite_lock: threading.Lock | None = threading.Lock() if self._sqlite else None
        self._is_open = False
        self._counts = RunCounts()
        # change_marker() short cut for SQLite files: see _files_unchanged()
        path = engine.url.database if self._sqlite and not self._memory else None
        self._watched = (path, f"{path}-wal") if path else ()
        self._marker_cache = MarkerCache(self._watched)

    def __repr__(self) -> str:
        return f"SQLAlchemyJobStore({self.url!r}, table_prefix={self.table_prefix!r})"

    def describe(self) -> str:
        """Where the jobs are, for status displays (the URL, password masked)."""
        return self.url

    @property
    def busy_timeout(self) -> float:
        """Seconds a write waits for another process's lock. Settable; the new value applies
        to the next transaction on SQLite, and to new connections on PostgreSQL."""
        return self._settings.busy_ms / 1000

    @busy_timeout.setter
    def busy_timeout(self, seconds: float) -> None:
        self._settings.busy_ms = busy_ms_from(seconds)
        if self._owns_engine and not self._sqlite:
            self._engine.dispose()  # PostgreSQL sets lock_timeout when it connects

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools that read the tables directly)."""
        return self._engine

    @property
    def tables(self) -> Tables:
        """The store's tables."""
        return self._t

    def _build_statements(self) -> None:
        t = self._t
        self._history = RunHistory(t, sqlite=self._sqlite, upsert=self._upsert)
        self._marker_stmt = select(t.meta.c.value).where(t.meta.c.key == CHANGES_KEY)
        self._next_run_stmt = (
            update(t.jobs)
            .where(t.jobs.c.name == bindparam("nrt_name"))
            .values(
                next_run_time=bindparam("nrt_value"), **release_case(t, bindparam("nrt_value"))
            )
        )
        self._pg_next_run_stmt: TextClause | None = None
        if self._engine.dialect.name == "postgresql":
            self._pg_next_run_stmt = pg_next_run_times(t)
        self._job_sql = JobStatements(t, self._upsert)
        self._sqlite_claims = SqliteClaims(t)

    # -- transactions and errors ------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreError(f"Job store {self.url}: {action} failed: {db_message(exc)}") from exc

    def _check_open(self) -> None:
        # Used before open() (or after close()): open now, as reading a store from a script
        # should not need ceremony. open() is idempotent and takes the lock.
        if not self._is_open:
            self.open()

    @contextlib.contextmanager
    def _writing(self, action: str, *, opening: bool = False) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); committed on success."""
        if not opening:
            self._check_open()
        lock = self._sqlite_lock or contextlib.nullcontext()
        with self._guard(action), lock, self._write_engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[Tx]:
        """One write transaction of add/update/remove_job. On the direct path when it can be
        used (``_direct.py``): the transaction of :meth:`_writing` -- under ``_sqlite_lock``,
        ``BEGIN IMMEDIATE``, the statements, ``COMMIT``; a rollback on any error; database
        errors as :class:`StoreError` -- run on the kept DBAPI connection, which :meth:`close`
        gives back. Else :meth:`_writing`."""
        if not self._direct.usable():
            with self._writing(action) as conn:
                yield CoreTx(conn)
            return
        self._check_open()
        lock = self._sqlite_lock
        assert lock is not None
        with self._guard(action), lock:
            try:
                with self._direct.transaction() as tx:
                    yield tx
            finally:
                if not self._is_open:  # closed meanwhile (by another thread): keep nothing
                    self._direct.release()

    @contextlib.contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        self._check_open()
        lock = self._sqlite_lock if self._memory else None
        with self._guard(action), lock or contextlib.nullcontext(), self._engine.connect() as conn:
            yield conn

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Create the tables if needed (creating the directory of a SQLite file too) and check
        the schema version. The other methods call it when the store is not open yet.

        :raises StateVersionError: the tables were made by a newer nbsched
        :raises StoreError: the database cannot be reached or written
        """
        with self._lock:
            if self._is_open:
                return
            if self._sqlite and not self._memory:
                make_sqlite_dir(self._engine.url, self.url)
            try:
                with self._writing("open", opening=True) as conn:
                    create_schema(conn, self._metadata, self._t, self.table_prefix, self.url)
            except BaseException:
                if self._owns_engine:
                    self._engine.dispose()  # a failed open() holds no connections
                raise
            if self._sqlite:  # (known once connected)
                version = self._engine.dialect.server_version_info or ()
                self._sqlite_claims.free_first = version >= (3, 33)
            if self._direct_wanted and not self._direct.ready:
                self._direct.compile([*self._job_sql.all, *self._sqlite_claims.all])
            self._is_open = True

    def close(self) -> None:
        """Release the connections (an engine passed in by the caller is left alone)."""
        with self._lock:
            if not self._is_open:
                return
            self._is_open = False
            if self._sqlite_lock is not None:
                with self._sqlite_lock:  # after a write in progress, if any
                    self._direct.release()
            if self._owns_engine:
                self._engine.dispose()

    # -- jobs -------------------------------------------------------------------------------

    def _names(self, tx: Tx) -> list[str]:
        return [row[0] for row in tx.run(self._job_sql.all_names)[1]]

    def add_job(self, job: Job, *, replace_existing: bool = False) -> None:
        row = job_to_row(job, self._clock.time())  # NotPicklableError before any SQL
        add = self._job_sql.add_job
        if add is None:  # a dialect without INSERT .. ON CONFLICT
            with self._writing("add_job") as conn:
                self._add_generic(conn, job, row, replace_existing)
                conn.execute(self._job_sql.bump.core)
            return
        with self._transaction("add_job") as tx:
            if not tx.run(add[replace_existing], row)[1]:
                raise ConflictingJobError(job.name)
            tx.run(self._job_sql.bump)

    def _add_generic(
        self, conn: Connection, job: Job, row: dict[str, Any], replace_existing: bool
    ) -> None:
        jobs = self._t.jobs
        found = conn.execute(select(jobs.c.created_at).where(jobs.c.name == job.name)).first()
        if found is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(jobs).values(row))
                return
            except IntegrityError:
                if not replace_existing:
                    raise ConflictingJobError(job.name) from None
        elif not replace_existing:
            raise ConflictingJobError(job.name)
        changes = {k: v for k, v in row.items() if k != "name"}
        changes["created_at"] = func.coalesce(jobs.c.created_at, row["created_at"])
        conn.execute(update(jobs).where(jobs.c.name == job.name).values(changes))

    def update_job(self, job: Job) -> None:
        """Replace the stored job of the same name, keeping its ``created_at``.

        :raises JobLookupError: there is no such job
        :raises StateVersionError: the stored job was written by a newer nbsched
        :raises NotPicklableError: see :meth:`add_job`
        """
        row = job_to_row(job, self._clock.time())
        params = {f"u_{key}": value for key, value in row.items()}
        with self._transaction("update_job") as tx:
            if tx.run(self._job_sql.update_job, params)[0] == 0:
                found = tx.run(self._job_sql.version_of, {"p_name": job.name})[1]
                version = found[0][0] if found else None
                if version is None:
                    raise JobLookupError(job.name, self._names(tx))
                raise StateVersionError(
                    f"Job {job.name!r} was stored by a newer nbsched (job state version "
                    f"{version}); change it with that version, or replace or remove it here"
                )
            tx.run(self._job_sql.bump)

    def remove_job(self, name: str) -> None:
        with self._transaction("remove_job") as tx:
            if tx.run(self._job_sql.remove_job, {"p_name": name})[0] == 0:
                raise JobLookupError(name, self._names(tx))
            tx.run(self._job_sql.remove_runs, {"p_name": name})
            tx.run(self._job_sql.bump)
        with self._counts.lock:
            self._counts.forget(name)

    def get_job(self, name: str) -> Job | None:
        jobs = self._t.jobs
        with self._reading("get_job") as conn:
            row = conn.execute(select(jobs).where(jobs.c.name == name)).mappings().first()
        return None if row is None else row_to_job(row)

    def get_jobs(self, owner: Any = ALL_OWNERS) -> list[Job]:
        jobs = self._t.jobs
        stmt = select(jobs).order_by(jobs.c.name)
        if owner is not ALL_OWNERS:
            stmt = stmt.where(owner_is(jobs.c.owner, owner))
        with self._reading("get_jobs") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [row_to_job(row) for row in rows]

    def set_next_run_times(self, updates: Sequence[tuple[str, float | None]]) -> None:
        """Batch-update ``next_run_time``. This does not move :meth:`change_marker`: it is the
        scheduler's own bookkeeping, done on every fire, and pollers must not reload all jobs
        each time any job fires somewhere."""
        # the last update of a name wins; a fixed order helps concurrent writers lock rows alike
        latest = dict(sorted(dict(updates).items()))
        if not latest:
            return
        with self._writing("set_next_run_times") as conn:
            if self._pg_next_run_stmt is not None:
                # one statement with two array parameters: executemany would be a round trip
                # per job, and a VALUES list is compiled again on every call (10k jobs: 0.6 s)
                conn.execute(
                    self._pg_next_run_stmt,
                    {"names": list(latest), "times": list(latest.values())},
                )
            else:  # SQLite: executemany of one prepared statement is the fast way
                params = [{"nrt_name": n, "nrt_value": ts} for n, ts in latest.items()]
                conn.execute(self._next_run_stmt, params)

    def claim_fires(
        self, claims: Mapping[str, float], owner_id: str, now: float, lease: float
    ) -> dict[str, float | None]:
        if not claims:
            return {}
        if self._sqlite:
            with self._transaction("claim_fires") as tx:
                return self._sqlite_claims.claim_fires(tx, claims, owner_id, now, lease)
        with self._writing("claim_fires") as conn:
            return claim_fires(
                conn, self._t, claims, owner_id, now, lease, self._pg_next_run_stmt is not None
            )

    def beat(self, scheduler_id: str, now: float, lease: float) -> list[str]:
        with self._writing("beat") as conn:
            return beat(conn, self._t, scheduler_id, now, lease)

    def forget(self, scheduler_id: str) -> None:
        with self._writing("forget") as conn:
            forget(conn, self._t, scheduler_id)

    # -- runs -------------------------------------------------------------------------------

    def write_runs(self, runs: Sequence[Run]) -> None:
        if not runs:
            return
        # The last write of an id wins (PostgreSQL refuses one statement touching a row
        # twice); rows go in id order (see RunHistory.write).
        latest = {run.id: run for run in runs}
        rows = [run_to_row(latest[run_id]) for run_id in sorted(latest)]
        with self._counts.lock:
            added, known = self._counts.read(rows)
        with self._writing("write_runs") as conn:
            bounds, gone = self._history.write(conn, rows, known, added, self.retention)
        with self._counts.lock:  # only what was committed
            self._counts.update(rows, bounds)
        if gone:
            discard_outputs(gone)

    def get_runs(
        self, job_name: str | None = None, *, owner: Any = ALL_OWNERS, limit: int = 50
    ) -> list[Run]:
        stmt = self._history.recent(job_name, owner, check_limit(limit))
        with self._reading("get_runs") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [row_to_run(row) for row in rows]

    def last_runs(
        self, job_names: Sequence[str] | None = None, *, owner: Any = ALL_OWNERS
    ) -> dict[str, Run]:
        """One query (see ``RunHistory.last``)."""
        names = None if job_names is None else list(job_names)
        if names == []:
            return {}
        with self._reading("last_runs") as conn:
            rows = conn.execute(self._history.last(names, owner)).mappings().all()
        found = {row["job_name"]: row_to_run(row) for row in rows}
        if names is not None and len(names) > CHUNK:
            wanted = set(names)
            found = {n: r for n, r in found.items() if n in wanted}
        return found

    def get_run(self, run_id: str) -> Run | None:
        with self._reading("get_run") as conn:
            row = conn.execute(self._history.one(run_id)).mappings().first()
        return None if row is None else row_to_run(row)

    def finish_stale_runs(
        self, owner: Any, status: RunStatus, error: str, now: float, spare: Sequence[str] = ()
    ) -> int:
        stmt = self._history.finish_stale(owner, status, error, now, spare)
        with self._writing("finish_stale_runs") as conn:
            return int(conn.execute(stmt).rowcount)

    # -- change detection -------------------------------------------------------------------

    def change_marker(self) -> int | None:
        """The ``jobs_changed`` counter: one primary-key read of the meta table. It moves with
        every ``add_job``, ``update_job`` and ``remove_job`` committed by any process sharing
        the database (not with ``set_next_run_times``, nor with runs).

        Every kernel polls this about once a second. On an SQLite file the read is skipped
        while the database and its WAL file are untouched since the last read (two ``stat``
        calls instead of a query), so an idle scheduler costs nothing measurable."""

        def read() -> int | None:
            with self._reading("change_marker") as conn:
                value = conn.execute(self._marker_stmt).scalar()
            return None if value is None else int(value)

        return self._marker_cache.get(read)

    def watch(
        self, callback: Callable[[], None], *, runs: bool = False
    ) -> Callable[[], None] | None:
        """PostgreSQL: ``LISTEN`` for the notifications a trigger sends when any process
        changes a job, and with ``runs`` also for those another one sends after each statement
        writing run records (``_pgwatch``). An SQLite file on a local file system: inotify on
        the database and its WAL (``_filewatch``), which reports every write -- runs and
        next run times too, whatever ``runs`` says. Either way an idle scheduler does not wake
        up to poll. Elsewhere (network file systems, no inotify) ``None``: the caller polls."""
        if self._engine.dialect.name == "postgresql":
            self.open()  # the triggers are made with the tables
            prefix = self.table_prefix
            channels = [channel_name(prefix)] + ([runs_channel_name(prefix)] if runs else [])
            pg = PgWatch(self._engine.url, channels, callback)
            return pg.stop
        if not self._watched:
            return None
        # (SQLite follows a symlinked database file and puts its WAL next to the target)
        real = os.path.realpath(self._watched[0])
        watch = watch_files((real, f"{real}-wal"), callback)
        return None if watch is None else watch.stop
