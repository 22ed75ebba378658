"""The direct write path of :class:`~nbsched.stores.sqlalchemy.SQLAlchemyJobStore`.

On an SQLite file, ``add_job``, ``update_job`` and ``remove_job`` run the same transaction, with
the same statements, on a DBAPI connection the store keeps checked out of its engine's pool,
each statement compiled once. SQLAlchemy's per-call execution (pool checkout, events, cache
lookup, result objects) was 60% of an ``add_job``.

* :class:`JobStatements` -- the statements of the three calls, built once; each one a
  :class:`JobStatement`: the Core statement, and the same statement compiled for the direct path;
* :class:`Tx` -- one write transaction of either path: :class:`CoreTx` on a SQLAlchemy
  connection, :class:`DirectTx` on the kept DBAPI cursor;
* :class:`DirectStatement` -- a Core statement compiled once, to run on a DBAPI cursor without
  SQLAlchemy's execution machinery;
* :class:`DirectPath` -- whether the path can be used, and the kept connection's life: checked
  out on first use, replaced after a database error, given back by the store's ``close()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from ._rows import JOB_STATE_VERSION
from ._sqlsetup import (
    ADDED_JOB_COLUMNS,
    BEGIN_WRITE,
    CHANGES_KEY,
    EngineSettings,
    Tables,
    sync_sqlite_connection,
)

__all__ = [
    "JobStatement",
    "JobStatements",
    "Tx",
    "CoreTx",
    "DirectTx",
    "DirectStatement",
    "DirectPath",
]


class JobStatement:
    """A statement of the job write path: the Core statement, and the same statement compiled
    once for the direct path (set by :meth:`DirectPath.compile`)."""

    __slots__ = ("core", "column_keys", "direct")

    def __init__(self, core: ExecutableReturnsRows, column_keys: list[str] | None = None) -> None:
        self.core = core
        #: the INSERT's columns, given at execution time (SQLAlchemy takes them from the
        #: parameters; compiling once needs them up front)
        self.column_keys = column_keys
        self.direct: DirectStatement | None = None


class JobStatements:
    """The statements of add_job, update_job and remove_job, built once: values come as
    parameters at execute time, so SQLAlchemy compiles each once instead of coercing every
    literal of every call (that was 3/4 of the cost of an add), and the direct path can
    compile them for good.

    :param upsert: the dialect's ``insert`` with ``ON CONFLICT``; without one (``None``) there
        are no :attr:`add_job` statements
    """

    def __init__(self, t: Tables, upsert: Callable[[Table], Any] | None) -> None:
        jobs = t.jobs
        by_name = jobs.c.name == bindparam("p_name")
        self.bump = JobStatement(
            update(t.meta).where(t.meta.c.key == CHANGES_KEY).values(value=t.meta.c.value + 1)
        )
        self.all_names = JobStatement(select(jobs.c.name))
        self.version_of = JobStatement(select(jobs.c.version).where(by_name))
        self.remove_job = JobStatement(delete(jobs).where(by_name))
        self.remove_runs = JobStatement(
            delete(t.runs).where(t.runs.c.job_name == bindparam("p_name"))
        )
        # update_job's values come as "u_<column>": a bindparam may not take a column's name
        # in an UPDATE's SET clause
        # (the claim columns are the schedulers' business: ``claim_fires`` and next-run-time
        # writes set them, a job's own writes leave them alone)
        stored = [c for c in jobs.c if c.name not in ADDED_JOB_COLUMNS]
        changes: dict[str, Any] = {
            c.name: bindparam(f"u_{c.name}", type_=c.type) for c in stored if c.name != "name"
        }
        # created_at is when the job was first added: an update keeps the stored one
        changes["created_at"] = func.coalesce(jobs.c.created_at, changes["created_at"])
        # A row written by a newer nbsched is not modified in place: this version would drop
        # whatever it does not know. Replacing it (add_job(replace_existing=True)) or removing
        # it is still possible.
        self.update_job = JobStatement(
            update(jobs)
            .where(jobs.c.name == bindparam("u_name"), jobs.c.version <= JOB_STATE_VERSION)
            .values(changes)
        )
        #: every statement, for :meth:`DirectPath.compile`
        self.all = [
            self.bump,
            self.all_names,
            self.version_of,
            self.remove_job,
            self.remove_runs,
            self.update_job,
        ]
        #: add_job's statement without and with ``replace_existing``
        self.add_job: tuple[JobStatement, JobStatement] | None = None
        if upsert is not None:
            add = upsert(jobs)
            keep = func.coalesce(jobs.c.created_at, add.excluded.created_at)
            replace = {c.name: add.excluded[c.name] for c in jobs.c if c.name != "name"}
            replace["created_at"] = keep
            columns = [c.name for c in stored]
            new_only = add.on_conflict_do_nothing(index_elements=[jobs.c.name])
            or_replace = add.on_conflict_do_update(index_elements=[jobs.c.name], set_=replace)
            # RETURNING, not rowcount: drivers need not report rowcount for INSERT
            self.add_job = (
                JobStatement(new_only.returning(jobs.c.name), columns),
                JobStatement(or_replace.returning(jobs.c.name), columns),
            )
            self.all.extend(self.add_job)


class Tx(Protocol):
    """One write transaction, of either path."""

    def run_many(self, stmt: JobStatement, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute ``stmt`` once per parameter set (``executemany``)."""
        ...

    def run(
        self, stmt: JobStatement, params: Mapping[str, Any] | None = None
    ) -> tuple[int, Sequence[Sequence[Any]]]:
        """Execute ``stmt``: (rowcount, the rows it returns)."""
        ...

    def rows(self, stmt: JobStatement, params: Mapping[str, Any]) -> Iterable[Sequence[Any]]:
        """Execute the query ``stmt`` and yield its rows one at a time (read them all before
        the next statement)."""
        ...

    def run_driver(self, sql: str, params: Sequence[Any]) -> int:
        """Execute ``sql`` as the DBAPI driver takes it (its own paramstyle, positional
        ``params``): the row count. For statements SQLAlchemy would compile too slowly (see
        ``SqliteClaims``)."""
        ...


class CoreTx:
    """A transaction on a SQLAlchemy connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(
        self, stmt: JobStatement, params: Mapping[str, Any] | None = None
    ) -> tuple[int, Sequence[Sequence[Any]]]:
        result = self.conn.execute(stmt.core, params)
        rows = result.all() if result.returns_rows else ()
        return result.rowcount, rows

    def rows(self, stmt: JobStatement, params: Mapping[str, Any]) -> Iterable[Sequence[Any]]:
        return self.conn.execute(stmt.core, params)

    def run_many(self, stmt: JobStatement, params: Sequence[Mapping[str, Any]]) -> None:
        self.conn.execute(stmt.core, list(params))

    def run_driver(self, sql: str, params: Sequence[Any]) -> int:
        return self.conn.exec_driver_sql(sql, tuple(params)).rowcount


class DirectTx:
    """A transaction on the kept DBAPI cursor (statements compiled once)."""

    __slots__ = ("cursor",)

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def run(
        self, stmt: JobStatement, params: Mapping[str, Any] | None = None
    ) -> tuple[int, Sequence[Sequence[Any]]]:
        direct = stmt.direct
        assert direct is not None
        cursor = self.cursor
        cursor.execute(direct.sql, direct.parameters(params))
        # fetchall() even for one row: sqlite3 finishes a RETURNING statement only when it
        # has been read to the end
        return cursor.rowcount, cursor.fetchall()

    def rows(self, stmt: JobStatement, params: Mapping[str, Any]) -> Iterable[Sequence[Any]]:
        direct = stmt.direct
        assert direct is not None
        return self.cursor.execute(direct.sql, direct.parameters(params))  # type: ignore[no-any-return]

    def run_many(self, stmt: JobStatement, params: Sequence[Mapping[str, Any]]) -> None:
        direct = stmt.direct
        assert direct is not None
        self.cursor.executemany(direct.sql, [direct.parameters(p) for p in params])

    def run_driver(self, sql: str, params: Sequence[Any]) -> int:
        cursor = self.cursor
        cursor.execute(sql, params)
        return cursor.rowcount  # type: ignore[no-any-return]


#: a bind parameter whose value comes with each call
_GIVEN: Any = object()


class DirectStatement:
    """A Core statement compiled once for one dialect, to run on a DBAPI cursor directly.

    What ``Connection.execute`` does on every call, done once here: compiling the statement,
    and finding where each positional parameter's value comes from (the call's parameters, or
    the statement itself for a literal such as ``key = 'jobs_changed'``) and which bind
    processor of its type converts it (on SQLite: ``bool`` to 0/1, ``bytes`` to
    ``sqlite3.Binary``, numbers to ``float``). Parameters are looked up by bind key, as
    SQLAlchemy does: a column's name for an INSERT compiled with ``column_keys``, else the
    name given to :func:`~sqlalchemy.bindparam`.

    Only what is fully known at compile time is accepted, else :class:`NotImplementedError`
    (the caller then keeps SQLAlchemy's execution): a positional paramstyle, no
    "expanding"/``literal_execute`` parameters (they are rendered per call), no parameters
    with a callable value, and result columns that need no result processor (rows are
    returned as the driver gives them).
    """

    __slots__ = ("sql", "_slots")

    def __init__(
        self, stmt: ExecutableReturnsRows, dialect: Dialect, column_keys: list[str] | None = None
    ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        if (
            not isinstance(compiled, SQLCompiler)
            or not compiled.positional
            or compiled.positiontup is None
        ):
            raise NotImplementedError(f"not a positional paramstyle: {dialect.paramstyle}")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise NotImplementedError("parameters rendered at execution time")
        for column in stmt.exported_columns:
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
                raise NotImplementedError(f"result column {column.name!r} needs processing")
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        slots: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = by_name[name]
            if bind.callable is not None:
                raise NotImplementedError(f"parameter {bind.key!r} has a callable value")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            slots.append((bind.key, _GIVEN if bind.required else bind.value, process))
        self.sql: str = compiled.string
        self._slots = tuple(slots)

    def parameters(self, given: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """The positional parameters for a call with ``given`` values.

        :raises KeyError: a value the statement needs is not given
        :raises sqlalchemy.exc.StatementError: a value cannot be converted (as SQLAlchemy
            raises it)
        """
        values: list[Any] = []
        for key, default, process in self._slots:
            # as SQLAlchemy's construct_params(): a given value wins over the statement's own
            value = given[key] if given is not None and key in given else default
            if value is _GIVEN:
                raise KeyError(f"a value is required for bind parameter {key!r}")
            if process is not None:
                try:
                    value = process(value)
                except Exception as exc:
                    raise StatementError(str(exc), self.sql, given, exc) from exc
            values.append(value)
        return tuple(values)


class _Kept:
    """The DBAPI connection the direct path keeps checked out of the engine's pool."""

    __slots__ = ("pooled", "dbapi", "cursor")

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        assert pooled.dbapi_connection is not None
        self.pooled = pooled
        self.dbapi: Any = pooled.dbapi_connection
        self.cursor: Any = self.dbapi.cursor()


class DirectPath:
    """The direct path of one store: its statements compiled once, and the DBAPI connection
    kept checked out of the engine's pool between transactions.

    The connection comes from the pool, so it was set up by the engine's "connect" hook (WAL,
    ``synchronous``, ``busy_timeout``, no implicit BEGIN of the sqlite3 module; SQLite-file
    engines have ``check_same_thread=False``, SQLAlchemy's default with its QueuePool), and a
    changed ``busy_timeout`` is applied by :meth:`transaction` as the "begin" hook does. After a
    database error it is invalidated (closed), and the next transaction starts on a new one.

    :meth:`transaction` and :meth:`release` are called under the store's SQLite lock, which
    guards :attr:`kept`.
    """

    def __init__(
        self, engine: Engine, settings: EngineSettings, dbapi_error: type[BaseException]
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._dbapi_error = dbapi_error
        #: the statements are compiled (by :meth:`compile`)
        self.ready = False
        #: the connection kept between transactions, if any
        self.kept: _Kept | None = None

    def compile(self, statements: Iterable[JobStatement]) -> None:
        """Compile the job write statements for the direct path, now that the engine has
        connected (compiling depends on what the dialect learnt of the server, such as
        whether it supports RETURNING)."""
        dialect = self._engine.dialect
        try:
            for stmt in statements:
                stmt.direct = DirectStatement(stmt.core, dialect, stmt.column_keys)
        except NotImplementedError:  # not with this dialect or driver: SQLAlchemy's path
            return
        self.ready = True

    def usable(self) -> bool:
        """Whether the statements are compiled and nothing watches the engine's statements
        (echo, or execute events of a profiler, a test, an instrumentation): the direct path
        would hide them, so they get SQLAlchemy's execution."""
        if not self.ready:
            return False
        engine = self._engine
        dispatch = engine.dispatch
        return not (
            engine.echo
            or dispatch.before_execute
            or dispatch.after_execute
            or dispatch.before_cursor_execute
            or dispatch.after_cursor_execute
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction on the kept connection (checked out now if there is none):
        ``BEGIN IMMEDIATE`` waiting up to ``busy_timeout``, the statements, ``COMMIT``; a
        rollback on any error. Caller holds the store's SQLite lock."""
        kept = self.kept or self._keep()
        try:
            sync_sqlite_connection(kept.dbapi, kept.pooled.info, self._settings.busy_ms)
            # by hand, as the engine's "begin" hook does: there is no Core construct for it
            kept.cursor.execute(BEGIN_WRITE)
            yield DirectTx(kept.cursor)
            kept.dbapi.commit()
        except BaseException as exc:
            self._roll_back(kept, exc)
            raise

    def _keep(self) -> _Kept:
        """Check a connection out of the pool. Caller holds the lock."""
        pooled = self._engine.raw_connection()
        try:
            self.kept = _Kept(pooled)
        except BaseException:
            pooled.invalidate()
            raise
        return self.kept

    def _roll_back(self, kept: _Kept, exc: BaseException) -> None:
        try:
            kept.dbapi.rollback()  # a no-op when BEGIN itself failed
        except BaseException as rollback_exc:
            self.release(rollback_exc)
            return
        if isinstance(exc, self._dbapi_error):
            # Whatever went wrong (a lock held too long, a broken connection, a disk error),
            # the next transaction starts on a new connection; errors are rare, reconnecting
            # costs about a millisecond.
            self.release(exc)

    def release(self, error: BaseException | None = None) -> None:
        """Give the kept connection back to the pool, or close it (``invalidate``) if it
        failed with ``error``. Caller holds the store's SQLite lock."""
        kept, self.kept = self.kept, None
        if kept is None:
            return
        with contextlib.suppress(self._dbapi_error):
            kept.cursor.close()
        if error is None:
            kept.pooled.close()
        else:
            kept.pooled.invalidate(error)
