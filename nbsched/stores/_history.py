"""The run table of :class:`~nbsched.stores.sqlalchemy.SQLAlchemyJobStore`: its statements, and
the write that keeps every job's history within ``retention``.

Kept apart from the store's transactions and job writes because it changes for other reasons
(what a history query answers, how a prune finds what to delete). Every function runs in a
connection the store opened: the store owns transactions, locking and errors.

Retention without a count per write: the store keeps how many runs each job has
(``_runcounts.RunCounts``); a write counts only the jobs it has never seen, and prunes only
the jobs that the write takes past ``retention``. A prune deletes everything older than the
newest ``retention`` runs, and the executed notebooks of those runs go with them (read first,
deleted once the transaction has committed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    Select,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..abc import ALL_OWNERS
from ..jobs import RunStatus
from ._claims import of
from ._runcounts import CHUNK, chunks
from ._sqlsetup import Tables

__all__ = ["RunHistory", "owner_is"]


def owner_is(column: Column[Any], owner: str | None) -> ColumnElement[bool]:
    """The rows of one owner (``None``: the jobs no notebook owns)."""
    return column.is_(None) if owner is None else column == owner


class RunHistory:
    """The run table's statements, built once.

    :param t: the store's tables
    :param sqlite: whether the database is SQLite (its ``DESC`` already puts NULLs last, and
        older versions have no ``NULLS LAST``)
    :param upsert: the dialect's ``insert`` with ``ON CONFLICT`` (``None``: delete, then insert)
    """

    def __init__(self, t: Tables, *, sqlite: bool, upsert: Callable[[Any], Any] | None) -> None:
        self._t = t
        self._sqlite = sqlite
        runs = t.runs
        started = runs.c.started_ts.desc()
        #: newest first: by fire time, then start (a retry fires the same time again), then id
        self.newest_first: list[ColumnElement[Any]] = [
            runs.c.scheduled_ts.desc(),
            started if sqlite else started.nulls_last(),
            runs.c.id.desc(),
        ]
        keep = (
            select(runs.c.id)
            .where(runs.c.job_name == bindparam("prune_job"))
            .order_by(*self.newest_first)
            .offset(bindparam("prune_keep", type_=Integer()))
        )
        self._prune = delete(runs).where(runs.c.id.in_(keep))
        # the executed notebooks of the runs a prune deletes (they go with them)
        self._pruned_files = select(runs.c.output_path).where(
            runs.c.id.in_(keep), runs.c.output_path.is_not(None)
        )
        # jobs seen writing runs with output files: only they pay for that look at a prune
        # (notebook jobs, not the thousands of thread runs a second)
        self._with_files: set[str] = set()
        self._upsert: Any = None
        if upsert is not None:
            stmt = upsert(runs)
            self._upsert = stmt.on_conflict_do_update(
                index_elements=[runs.c.id],
                set_={c.name: stmt.excluded[c.name] for c in runs.c if c.name != "id"},
            )

    def write(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        known: dict[str, int | None],
        added: dict[str, int],
        retention: int,
    ) -> tuple[dict[str, int], list[str]]:
        """Write ``rows`` (in id order: two concurrent writes lock rows in the same order and
        cannot deadlock) and prune the jobs they take past ``retention``. ``known``: each
        job's run count before, ``None`` where unknown; ``added``: the new rows per job.
        Returns every job's run count after, and the output files of the pruned runs."""
        runs = self._t.runs
        if self._upsert is not None:
            conn.execute(self._upsert, rows)
        else:
            for ids in chunks([row["id"] for row in rows]):
                conn.execute(delete(runs).where(runs.c.id.in_(ids)))
            conn.execute(insert(runs), rows)
        exact = self._count(conn, [name for name, n in known.items() if n is None])
        prune: list[str] = []
        bounds: dict[str, int] = {}
        for name, before in known.items():
            bound = exact.get(name, 0) if before is None else before + added[name]
            if bound > retention:
                prune.append(name)
                bound = retention
            bounds[name] = bound
        gone: list[str] = []
        if prune:
            params = [{"prune_job": name, "prune_keep": retention} for name in prune]
            self._with_files.update(row["job_name"] for row in rows if row["output_path"])
            for p in params:
                if p["prune_job"] in self._with_files:
                    gone += conn.execute(self._pruned_files, p).scalars()
            conn.execute(self._prune, params)
        return bounds, gone

    def _count(self, conn: Connection, names: Sequence[str]) -> dict[str, int]:
        runs = self._t.runs
        counts: dict[str, int] = {}
        for chunk in chunks(names):
            stmt = (
                select(runs.c.job_name, func.count())
                .where(runs.c.job_name.in_(chunk))
                .group_by(runs.c.job_name)
            )
            counts.update((name, count) for name, count in conn.execute(stmt))
        return counts

    def recent(self, job_name: str | None, owner: Any, limit: int) -> Select[Any]:
        """``get_runs``: the newest ``limit`` runs of one job, or of an owner's jobs."""
        runs = self._t.runs
        stmt = select(runs).order_by(*self.newest_first).limit(limit)
        if job_name is not None:
            stmt = stmt.where(runs.c.job_name == job_name)
        if owner is not ALL_OWNERS:
            stmt = stmt.where(owner_is(runs.c.owner, owner))
        return stmt

    def last(self, names: Sequence[str] | None, owner: Any) -> Select[Any]:
        """``last_runs``: each job joined to its newest run, found through the runs index on
        (job_name, order). More names than fit a statement read every job's: the caller
        keeps those it asked for."""
        jobs, runs = self._t.jobs, self._t.runs
        newest = runs.alias("newest")
        started = newest.c.started_ts.desc()
        newest_id = (
            select(newest.c.id)
            .where(newest.c.job_name == jobs.c.name)
            .order_by(
                newest.c.scheduled_ts.desc(),
                started if self._sqlite else started.nulls_last(),
                newest.c.id.desc(),
            )
            .limit(1)
            .correlate(jobs)
            .scalar_subquery()
        )
        stmt = select(runs).select_from(jobs.join(runs, runs.c.id == newest_id))
        if names is not None and len(names) <= CHUNK:
            stmt = stmt.where(jobs.c.name.in_(names))
        if owner is not ALL_OWNERS:
            stmt = stmt.where(owner_is(jobs.c.owner, owner))
        return stmt

    def one(self, run_id: str) -> Select[Any]:
        """``get_run``."""
        runs = self._t.runs
        return select(runs).where(runs.c.id == run_id)

    def finish_stale(
        self, owner: Any, status: RunStatus, error: str, now: float, spare: Sequence[str]
    ) -> Update:
        """``finish_stale_runs``: the owner's runs left ``running``, but those of the live
        schedulers ``spare``."""
        runs = self._t.runs
        stmt = (
            update(runs)
            .where(runs.c.status == RunStatus.running.value, *[~of(runs, p) for p in spare])
            .values(status=RunStatus(status).value, error=error, finished_ts=now)
        )
        if owner is not ALL_OWNERS:
            stmt = stmt.where(owner_is(runs.c.owner, owner))
        return stmt
