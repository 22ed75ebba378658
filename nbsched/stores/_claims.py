"""Claims of fire times on the SQL stores (``JobStore.claim_fires``): the statements, and the
rule every store applies is ``_common.decide``.

A claim is three columns of the job's row: ``claimed_by`` (the scheduler's id),
``claimed_until`` (when the lease ends) and ``claimed_fire`` (the fire time). It is taken in
one write transaction per dispatch pass -- PostgreSQL locks the candidate rows with ``SELECT ..
FOR UPDATE SKIP LOCKED`` (a row another transaction holds is not waited for: its claim is
retried), SQLite's ``BEGIN IMMEDIATE`` serializes the whole transaction -- and released by the
next-run-time write that records the fire (:func:`next_run_time_sets`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, islice
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from ..jobs import RunStatus
from ._common import CRASHED_WHY, decide
from ._direct import JobStatement, Tx
from ._runcounts import chunks
from ._sqlsetup import Tables

__all__ = [
    "SqliteClaims", "beat", "claim_fires", "forget", "of", "pg_next_run_times", "release_case",
]

def release_case(t: Tables, new_value: Any) -> dict[str, Any]:
    """The SET clauses that clear a job's claim when its next run time moves past the claimed
    fire (a claim of that very fire, taken while the write was on its way, is kept)."""
    c = t.jobs.c
    keep = c.claimed_fire >= new_value  # (NULL on either side: released)
    return {
        "claimed_by": case((keep, c.claimed_by), else_=None),
        "claimed_until": case((keep, c.claimed_until), else_=None),
        "claimed_fire": case((keep, c.claimed_fire), else_=None),
    }


def pg_next_run_times(t: Tables) -> TextClause:
    """``set_next_run_times`` on PostgreSQL: one statement with two array parameters
    (``:names``, ``:times``) that also releases the claims (as :func:`release_case`)."""
    keep = "WHEN j.claimed_fire >= v.t THEN"
    return text(
        f'UPDATE "{t.jobs.name}" AS j SET next_run_time = v.t, '
        f"claimed_by = CASE {keep} j.claimed_by END, "
        f"claimed_until = CASE {keep} j.claimed_until END, "
        f"claimed_fire = CASE {keep} j.claimed_fire END "
        "FROM unnest(CAST(:names AS text[]), CAST(:times AS double precision[])) "
        "AS v(n, t) WHERE j.name = v.n"
    )


def _decide(
    rows: Iterable[Sequence[Any]], wanted: Mapping[str, float], owner_id: str, now: float,
    won: list[str], ahead: list[str], lost: dict[str, float | None], gone: set[str],
) -> set[str]:
    """Apply ``decide`` to the stored rows of the wanted jobs, read one at a time; returns
    the names seen. Winners go to ``won`` when the fire is the stored next run time, to
    ``ahead`` when it is past the holder's own earlier claim (rare); only names are kept
    (see :class:`SqliteClaims`)."""
    seen = set()
    for name, nrt, paused, holder, held_until, fire in rows:
        seen.add(name)
        ts = wanted[name]
        if holder is None and nrt == ts and not paused:
            won.append(name)  # (what decide() says of an unclaimed, unmoved job)
            continue
        ok, back, expired = decide(ts, nrt, paused, holder, held_until, fire, owner_id, now)
        if not ok:
            lost[name] = back
            continue
        if expired is not None:
            gone.add(expired)
        (won if nrt == ts else ahead).append(name)
    return seen


def claim_fires(
    conn: Connection,
    t: Tables,
    claims: Mapping[str, float],
    owner_id: str,
    now: float,
    lease: float,
    postgres: bool,
) -> dict[str, float | None]:
    """Claim in the open write transaction ``conn`` (see ``JobStore.claim_fires``)."""
    jobs = t.jobs
    lost: dict[str, float | None] = {}
    won: list[str] = []
    ahead: list[str] = []
    gone: set[str] = set()
    for chunk in chunks(sorted(claims)):
        stmt = select(
            jobs.c.name, jobs.c.next_run_time, jobs.c.paused, jobs.c.claimed_by,
            jobs.c.claimed_until, jobs.c.claimed_fire,
        ).where(jobs.c.name.in_(chunk))
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        seen = _decide(conn.execute(stmt), claims, owner_id, now, won, ahead, lost, gone)
        missing = [n for n in chunk if n not in seen]
        if missing and postgres:  # locked by another transaction, or removed
            there = conn.execute(select(jobs.c.name).where(jobs.c.name.in_(missing)))
            locked = set(there.scalars())
            for name in missing:
                # a locked row: the engine tries that same fire again shortly
                lost[name] = claims[name] if name in locked else None
        else:
            lost.update(dict.fromkeys(missing))
    won += ahead  # (one statement sets the claimed fire of both)
    if won:
        until = now + lease
        if postgres:
            conn.execute(
                text(
                    f'UPDATE "{jobs.name}" AS j SET claimed_by = :owner, claimed_until = '
                    ":until, claimed_fire = v.t FROM unnest(CAST(:names AS text[]), "
                    "CAST(:times AS double precision[])) AS v(n, t) WHERE j.name = v.n"
                ),
                {
                    "owner": owner_id, "until": until,
                    "names": won, "times": [claims[n] for n in won],
                },
            )
        else:
            conn.execute(
                update(jobs)
                .where(jobs.c.name == bindparam("c_name"))
                .values(claimed_by=owner_id, claimed_until=until, claimed_fire=bindparam("c_fire")),
                [{"c_name": n, "c_fire": claims[n]} for n in won],
            )
    # Its lease ran out without its fire being recorded: it is gone, and so are the runs it
    # left running.
    _crash(conn, t, gone, now)
    return lost


#: how many fires one statement of the free-fire claim takes (see :class:`SqliteClaims`): a
#: pass claims in statements of the largest size and the rest in the smallest that holds it
FREE_SIZES = (1, 16, 128, 512)


def _claim_free_sql(jobs: str, size: int) -> str:
    """The claim of ``size`` free fires, for SQLite's driver: parameters the owner, the lease's
    end, then ``size`` pairs of name and fire time. A fire is taken where the row is
    unclaimed, not paused and its next run time is the fire time, compared exactly (bound as
    REAL; a NULL pair, padding, matches nothing).

    Written by hand: SQLAlchemy renders a VALUES list with column names after its alias,
    which SQLite does not accept, and compiling a ``text()`` of 512 pairs took 18 ms."""
    pairs = ", ".join(["(?, ?)"] * size)
    return (
        f'UPDATE "{jobs}" SET claimed_by = ?, claimed_until = ?, '
        f"claimed_fire = next_run_time FROM (VALUES {pairs}) AS v "
        f'WHERE "{jobs}".name = v.column1 AND next_run_time = v.column2 '
        "AND claimed_by IS NULL AND paused = 0"
    )


class SqliteClaims:
    """``claim_fires`` on SQLite, in few statements whatever the number of fires, run on the
    store's kept connection (see ``_direct.py``; through SQLAlchemy's execution a claim cost
    16 us a fire, more than the rest of its dispatch).

    First the usual case: every fire free (unclaimed, the stored next run time, not paused),
    claimed by UPDATEs that take 512 fires each (:func:`_claim_free_sql`); their row counts
    say whether that was all of them. Reading the rows first would step SQLite once per row,
    and every step lets go of the GIL: in a restart's catch-up, where a pass claims 4,096
    fires while the bodies of the last pass run on ten threads, each step waited to get it
    back (a pass took 45-60 ms, against 17-21 ms alone; these UPDATEs take 10 ms alone).

    Else the rows of all the pass's fires are read and ``decide`` applied (the fires just
    claimed are this scheduler's now, and it grants them again): the wanted names as one
    JSON array (``json_each``), the rows read one at a time, and the claims of the stored next
    run time written in one UPDATE that copies the fire time from the row. Nothing is kept
    per fire but its name: objects kept per fire across a pass (row tuples, parameter dicts)
    outlive the collector's young generations, and once enough have, a full collection
    (70 ms with 10,000 jobs) comes with the next allocations: the burst of runs the claims
    were for."""

    def __init__(self, t: Tables) -> None:
        jobs, runs = t.jobs, t.runs
        names = func.json_each(bindparam("c_names", type_=String())).table_valued("value")
        self.rows = JobStatement(
            select(
                jobs.c.name, jobs.c.next_run_time,
                type_coerce(jobs.c.paused, Integer()),  # (as stored: 0/1, no conversion)
                jobs.c.claimed_by, jobs.c.claimed_until, jobs.c.claimed_fire,
            ).where(jobs.c.name.in_(select(names.c.value)))
        )
        owner: Any = bindparam("c_owner", type_=String())
        until: Any = bindparam("c_until", type_=Double())
        won = func.json_each(bindparam("c_won", type_=String())).table_valued("value")
        self.claim_stored = JobStatement(
            update(jobs)
            .where(jobs.c.name.in_(select(won.c.value)))
            .values(claimed_by=owner, claimed_until=until, claimed_fire=jobs.c.next_run_time)
        )
        self.claim = JobStatement(
            update(jobs)
            .where(jobs.c.name == bindparam("c_name"))
            .values(
                claimed_by=owner, claimed_until=until,
                claimed_fire=bindparam("c_fire", type_=Double()),
            )
        )
        self.crash = JobStatement(
            update(runs)
            .where(
                runs.c.status == RunStatus.running.value,
                runs.c.id >= bindparam("c_low", type_=String()),
                runs.c.id < bindparam("c_high", type_=String()),
            )
            .values(
                status=RunStatus.crashed.value, error=CRASHED_WHY,
                finished_ts=bindparam("c_now", type_=Double()),
            )
        )
        self._jobs_name = jobs.name
        #: whether the usual case is tried first (set when the store opens: ``UPDATE ..
        #: FROM`` and 1,026 parameters need SQLite 3.33)
        self.free_first = True
        #: the free-fire claim's SQL by size, made when first used
        self._claim_free: dict[int, str] = {}
        #: every statement, for ``DirectPath.compile``
        self.all = [self.rows, self.claim_stored, self.claim, self.crash]

    def _claim_all_free(
        self, tx: Tx, claims: Mapping[str, float], owner_id: str, until: float
    ) -> bool:
        """Claim the free fires of ``claims``; whether that was all of them."""
        items = iter(claims.items())
        left = len(claims)
        taken = 0
        while left:
            size = next((s for s in FREE_SIZES if s >= left), FREE_SIZES[-1])
            sql = self._claim_free.get(size)
            if sql is None:
                sql = self._claim_free[size] = _claim_free_sql(self._jobs_name, size)
            params: list[Any] = [owner_id, until]
            params.extend(chain.from_iterable(islice(items, size)))
            params.extend([None] * (2 + 2 * size - len(params)))  # (the padding)
            taken += tx.run_driver(sql, params)
            left -= min(size, left)
        return taken == len(claims)

    def claim_fires(
        self,
        tx: Tx,
        claims: Mapping[str, float],
        owner_id: str,
        now: float,
        lease: float,
    ) -> dict[str, float | None]:
        """Claim in the open write transaction ``tx`` (``BEGIN IMMEDIATE``: the whole
        transaction is serialized, nothing to lock row by row)."""
        until = now + lease
        if self.free_first and self._claim_all_free(tx, claims, owner_id, until):
            return {}
        lost: dict[str, float | None] = {}
        won: list[str] = []
        ahead: list[str] = []
        gone: set[str] = set()
        rows = tx.rows(self.rows, {"c_names": json.dumps(list(claims))})
        seen = _decide(rows, claims, owner_id, now, won, ahead, lost, gone)
        if len(seen) < len(claims):  # removed
            lost.update((n, None) for n in claims if n not in seen)
        if won:
            tx.run(
                self.claim_stored,
                {"c_won": json.dumps(won), "c_owner": owner_id, "c_until": until},
            )
        if ahead:
            tx.run_many(
                self.claim,
                [{"c_name": n, "c_owner": owner_id, "c_until": until, "c_fire": claims[n]}
                 for n in ahead],
            )
        for holder in sorted(gone):  # as _crash
            tx.run(self.crash, {"c_low": f"{holder}-", "c_high": f"{holder}.", "c_now": now})
        return lost


def of(runs: Table, scheduler_id: str) -> ColumnElement[bool]:
    """The runs of one scheduler: ids ``<scheduler_id>-...``, as a range of the primary key
    (an index range on every database; ``LIKE`` is not one on SQLite)."""
    return and_(runs.c.id >= f"{scheduler_id}-", runs.c.id < f"{scheduler_id}.")


def _crash(conn: Connection, t: Tables, gone: set[str], now: float) -> None:
    runs = t.runs
    for holder in sorted(gone):
        conn.execute(
            update(runs)
            .where(runs.c.status == RunStatus.running.value, of(runs, holder))
            .values(status=RunStatus.crashed.value, error=CRASHED_WHY, finished_ts=now)
        )


def forget(conn: Connection, t: Tables, scheduler_id: str) -> None:
    """``JobStore.forget`` in the open write transaction ``conn``."""
    jobs = t.jobs
    conn.execute(
        update(jobs)
        .where(jobs.c.claimed_by == scheduler_id)
        .values(claimed_by=None, claimed_until=None, claimed_fire=None)
    )
    conn.execute(delete(t.schedulers).where(t.schedulers.c.id == scheduler_id))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (someone else's process: alive)
        return True
    return True


def beat(conn: Connection, t: Tables, scheduler_id: str, now: float, lease: float) -> list[str]:
    """``JobStore.beat`` in the open write transaction ``conn``."""
    table = t.schedulers
    mine = table.c.id == scheduler_id
    here = socket.gethostname()
    row = {"alive_until": now + lease, "host": here, "pid": os.getpid()}
    if not conn.execute(update(table).where(mine).values(row)).rowcount:
        conn.execute(insert(table).values(id=scheduler_id, **row))
    gone = set()
    for other, until, host, pid in conn.execute(
        select(table.c.id, table.c.alive_until, table.c.host, table.c.pid).where(~mine)
    ):
        if until < now or host == here and pid is not None and not _pid_alive(pid):
            gone.add(other)
    if gone:
        conn.execute(delete(table).where(table.c.id.in_(sorted(gone))))
        _crash(conn, t, gone, now)
    live = conn.execute(select(table.c.id).where(~mine)).scalars()
    return sorted(live)
