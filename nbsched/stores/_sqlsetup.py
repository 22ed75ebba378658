"""Tables and engine set-up of :class:`~nbsched.stores.sqlalchemy.SQLAlchemyJobStore`.

* :func:`build_tables` -- the tables and their indexes, in one place;
* :func:`create_engine_for` and :func:`install_hooks` -- what every connection needs: on SQLite,
  WAL, ``synchronous=NORMAL``, a busy timeout and SQLAlchemy (not the sqlite3 module) emitting
  ``BEGIN``, so that writes can start with ``BEGIN IMMEDIATE``; on PostgreSQL, a lock timeout;
  :func:`sync_sqlite_connection` brings a pooled SQLite connection in line before a transaction
  (for the "begin" hook, and for the store's direct write path, ``_direct.py``);
* :func:`make_sqlite_dir`, :func:`check_schema` and :func:`init_meta` -- what opening a store
  does before and after creating the tables.
"""

from __future__ import annotations

import random
import weakref
import zlib
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from ..errors import InvalidArgumentError, StateVersionError, StoreError
from ._pgwatch import install_notify

__all__ = [
    "create_schema",
    "Tables",
    "build_tables",
    "create_engine_for",
    "install_hooks",
    "EngineSettings",
    "sync_sqlite_connection",
    "make_sqlite_dir",
    "check_schema",
    "init_meta",
    "upgrade_schema",
    "SCHEMA_VERSION",
    "ADDED_JOB_COLUMNS",
]

#: version of the table layout, stored in the meta table; a newer one is refused
SCHEMA_VERSION = 2
#: columns added after version 1, with the version that added them: opening an older store
#: adds them (``ALTER TABLE .. ADD COLUMN``; old rows read as NULL, which means unclaimed)
ADDED_JOB_COLUMNS = ("claimed_by", "claimed_until", "claimed_fire")


#: the rows of the meta table: the version of the table layout, and the counter of job
#: changes (see :meth:`~nbsched.stores.sqlalchemy.SQLAlchemyJobStore.change_marker`)
SCHEMA_KEY = "schema_version"
CHANGES_KEY = "jobs_changed"


class Tables(NamedTuple):
    """The tables of a store."""

    jobs: Table
    runs: Table
    meta: Table
    #: the schedulers serving the store, and until when each is known to be alive
    #: (``JobStore.beat``): runs left ``running`` by one that stopped beating are crashed
    schedulers: Table


def build_tables(metadata: MetaData, prefix: str = "nbsched_", dialect: str = "") -> Tables:
    """Define the store's tables (and indexes) on ``metadata``.

    ``dialect`` (``engine.dialect.name``) only changes the order of the runs indexes: on
    PostgreSQL they are declared in the exact order queries ask for (``DESC NULLS LAST``), which
    SQLite's ``CREATE INDEX`` cannot express and does not need (its DESC puts NULLs last).
    """
    # Job names and run ids sort byte-wise everywhere, as in the memory store (the default
    # collation of a PostgreSQL database may order "a_b" and "aB" differently).
    key = String().with_variant(String(collation="C"), "postgresql")
    jobs = Table(
        f"{prefix}jobs",
        metadata,
        Column("name", key, primary_key=True),
        Column("owner", key, nullable=True),
        Column("kind", String(), nullable=False),
        Column("target", Text(), nullable=False),
        Column("trigger", Text(), nullable=False),  # Trigger.to_state() as JSON
        Column("executor", String(), nullable=False),
        Column("args", LargeBinary(), nullable=True),  # pickle protocol 5
        Column("kwargs", LargeBinary(), nullable=True),  # pickle protocol 5
        # timeout, max_instances, coalesce, misfire_grace_time, retries, retry_delay,
        # parameters, as JSON: options change more often than the table layout should
        Column("options", Text(), nullable=False),
        Column("paused", Boolean(), nullable=False),
        Column("next_run_time", Double(), nullable=True),  # POSIX seconds
        Column("created_at", Double(), nullable=True),
        Column("updated_at", Double(), nullable=True),
        Column("version", Integer(), nullable=False),  # _rows.JOB_STATE_VERSION
        # The claim of one fire time by one scheduler (``JobStore.claim_fires``): who holds
        # it (its run-id prefix), until when (POSIX seconds), and which fire time.
        Column("claimed_by", String(), nullable=True),
        Column("claimed_until", Double(), nullable=True),
        Column("claimed_fire", Double(), nullable=True),
    )
    Index(f"{prefix}jobs_owner", jobs.c.owner)
    Index(f"{prefix}jobs_next_run_time", jobs.c.next_run_time)

    runs = Table(
        f"{prefix}runs",
        metadata,
        Column("id", key, primary_key=True),
        Column("job_name", key, nullable=False),
        Column("owner", key, nullable=True),
        Column("status", String(), nullable=False),
        Column("scheduled_ts", Double(), nullable=False),
        Column("started_ts", Double(), nullable=True),
        Column("finished_ts", Double(), nullable=True),
        Column("output", Text(), nullable=True),
        Column("error", Text(), nullable=True),
        Column("attempt", Integer(), nullable=False),
        Column("output_path", Text(), nullable=True),
    )
    order: tuple[ColumnElement[Any], ...]
    if dialect == "postgresql":
        order = (
            runs.c.scheduled_ts.desc(),
            runs.c.started_ts.desc().nulls_last(),
            runs.c.id.desc(),
        )
    else:
        order = (runs.c.scheduled_ts, runs.c.started_ts, runs.c.id)
    # (job_name, order) serves get_runs(job) and the retention prune from the index alone.
    Index(f"{prefix}runs_job", runs.c.job_name, *order)
    Index(f"{prefix}runs_owner", runs.c.owner, *order)
    Index(f"{prefix}runs_status", runs.c.status, runs.c.owner)

    meta = Table(
        f"{prefix}meta",
        metadata,
        Column("key", String(64), primary_key=True),
        Column("value", BigInteger(), nullable=False),
    )
    schedulers = Table(
        f"{prefix}schedulers",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("alive_until", Double(), nullable=False),
        # where it runs: a scheduler on this machine whose process is gone is known dead
        # at once, without waiting for its lease (a kernel restarted after a crash)
        Column("host", String(), nullable=True),
        Column("pid", Integer(), nullable=True),
    )
    return Tables(jobs, runs, meta, schedulers)


# -- engine set-up ----------------------------------------------------------------------------


class EngineSettings:
    """What the event hooks of one engine apply to its connections (changeable later)."""

    def __init__(self, busy_ms: int) -> None:
        self.busy_ms = busy_ms


#: engines whose event hooks are installed (a shared engine gets them once)
_HOOKED: weakref.WeakKeyDictionary[Engine, EngineSettings] = weakref.WeakKeyDictionary()
BEGIN_OPTION = "nbsched_sqlite_begin"
#: how a write transaction starts on SQLite: with the write lock, instead of upgrading a read
#: lock half way (which is what makes two writers deadlock into ``SQLITE_BUSY``)
BEGIN_WRITE = "BEGIN IMMEDIATE"
_APPLIED = "nbsched_busy_ms"


def is_memory_sqlite(url: URL) -> bool:
    db = url.database or ""
    return db in ("", ":memory:") or "mode=memory" in db


def _setup_sqlite_connection(dbapi_conn: Any, busy_ms: int) -> None:
    # sqlite3's own transaction handling (legacy mode before Python 3.12) does not BEGIN for
    # SELECTs and DDL; turn it off and let the "begin" hook emit BEGIN (SQLAlchemy docs,
    # "Transactions with SQLite and the sqlite3 driver").
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")  # first: the next pragma may wait
        cursor.execute("PRAGMA journal_mode = WAL")  # persistent; a no-op once the file is WAL
        # NORMAL, not FULL: in WAL mode a commit is then an append to the WAL without an
        # fsync (the WAL is synced at checkpoints). A committed transaction survives the crash
        # of any process (it is in the OS's page cache); only an OS crash or power cut can lose
        # the last commits, and the database is never corrupted. SQLite's documented choice
        # for WAL (https://sqlite.org/pragma.html#pragma_synchronous); FULL would cost an fsync
        # per add_job.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def sync_sqlite_connection(dbapi_conn: Any, info: dict[str, Any], busy_ms: int) -> None:
    """Bring a pooled SQLite connection in line with the settings before a transaction: set it
    up if it was made before our hooks were installed (a caller's engine), and apply a
    ``busy_timeout`` changed since it was made. ``info`` is the pool's info dict of the
    connection. Costs one dict lookup when nothing changed."""
    applied = info.get(_APPLIED)
    if applied == busy_ms:
        return
    if applied is None:  # pooled before we hooked a caller's engine
        _setup_sqlite_connection(dbapi_conn, busy_ms)
    else:  # busy_timeout was changed since
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        finally:
            cursor.close()
    info[_APPLIED] = busy_ms


def install_hooks(engine: Engine, busy_ms: int) -> EngineSettings:
    settings = _HOOKED.get(engine)
    if settings is not None:
        return settings
    settings = _HOOKED[engine] = EngineSettings(busy_ms)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            _setup_sqlite_connection(dbapi_conn, settings.busy_ms)
            record.info[_APPLIED] = settings.busy_ms

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            pooled = conn.connection
            sync_sqlite_connection(pooled.dbapi_connection, pooled.info, settings.busy_ms)
            conn.exec_driver_sql(conn.get_execution_options().get(BEGIN_OPTION, "BEGIN"))

    elif engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_conn: Any, record: Any) -> None:
            # a row lock held by a stuck transaction elsewhere fails after busy_timeout, as a
            # locked SQLite file does, instead of hanging the scheduler (0 would mean "wait
            # forever" to PostgreSQL)
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(f"SET lock_timeout = {max(1, settings.busy_ms)}")
            finally:
                cursor.close()
                dbapi_conn.autocommit = autocommit

    return settings


def busy_ms_from(busy_timeout: object) -> int:
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
        raise InvalidArgumentError(f"busy_timeout must be seconds, got {busy_timeout!r}")
    if not busy_timeout >= 0:
        raise InvalidArgumentError(f"busy_timeout must be >= 0 seconds, got {busy_timeout}")
    return round(busy_timeout * 1000)


def create_engine_for(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite" and is_memory_sqlite(url):
        # one connection shared by every thread, or each thread would see its own database
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": 10}  # not the OS's minutes-long default
    return create_engine(url, **kwargs)


def db_message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(orig if orig is not None else exc).__name__


# -- opening a store -------------------------------------------------------------------------


def make_sqlite_dir(url: URL, shown: str) -> None:
    """Create the directory of an SQLite file (``shown``: the URL as messages show it)."""
    db = url.database
    if not db or db.startswith("file:"):
        return
    try:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Job store {shown}: cannot create the directory of {db!r}: {exc}"
        ) from exc


def check_schema(conn: Connection, meta: Table, shown: str) -> None:
    """Refuse tables made by a newer nbsched (``shown``: the URL as messages show it)."""
    if not inspect(conn).has_table(meta.name):
        return
    version = conn.execute(select(meta.c.value).where(meta.c.key == SCHEMA_KEY)).scalar()
    if version is not None and version > SCHEMA_VERSION:
        raise StateVersionError(
            f"Job store {shown} has schema version {version}, but this nbsched "
            f"understands up to {SCHEMA_VERSION}: it was written by a newer nbsched; "
            "upgrade nbsched, or use another db_url"
        )


def upgrade_schema(conn: Connection, t: Tables) -> None:
    """Bring tables of an older layout up to :data:`SCHEMA_VERSION` (in the open transaction,
    after ``create_all``): add the claim columns that are missing, then store the version."""
    present = {c["name"] for c in inspect(conn).get_columns(t.jobs.name)}
    preparer = conn.dialect.identifier_preparer
    table = preparer.format_table(t.jobs)
    for name in ADDED_JOB_COLUMNS:
        if name not in present:
            column = t.jobs.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN {preparer.quote(name)} {kind}"
            )
    version = conn.execute(select(t.meta.c.value).where(t.meta.c.key == SCHEMA_KEY)).scalar()
    if version is not None and version < SCHEMA_VERSION:
        conn.execute(
            update(t.meta).where(t.meta.c.key == SCHEMA_KEY).values(value=SCHEMA_VERSION)
        )


def init_meta(conn: Connection, meta: Table) -> None:
    """Write the rows of the meta table that are missing."""
    present = set(conn.execute(select(meta.c.key)).scalars())
    # The change counter starts at a random value, so that a store deleted and created
    # again does not repeat the markers a poller saw before.
    initial = {SCHEMA_KEY: SCHEMA_VERSION, CHANGES_KEY: random.getrandbits(40)}
    missing = [{"key": k, "value": v} for k, v in initial.items() if k not in present]
    if missing:
        conn.execute(insert(meta), missing)


def create_schema(conn: Connection, metadata: MetaData, t: Tables, prefix: str, shown: str) -> None:
    """Create the tables (and on PostgreSQL the change notifications) in the open write
    transaction ``conn`` if they are not there, after checking that no newer nbsched made
    them (:class:`StateVersionError`), and bring older ones up to date."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # two processes creating the same tables at once would collide in PostgreSQL's
        # catalog: serialize them on the prefix
        conn.execute(select(func.pg_advisory_xact_lock(zlib.crc32(prefix.encode()))))
    check_schema(conn, t.meta, shown)
    metadata.create_all(conn, checkfirst=True)
    init_meta(conn, t.meta)
    upgrade_schema(conn, t)
    if postgres:
        install_notify(conn, prefix, t.meta.name, CHANGES_KEY, t.runs.name)
