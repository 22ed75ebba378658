"""``JobStore.claim_fires``: the claims that make each fire run once when several schedulers
share a store. Every store keeps the same rules (memory included); the SQL stores also under
real concurrency, and when opened over tables of the layout before claims."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select, update

from nbsched.abc import JobStore
from nbsched.jobs import RunStatus
from nbsched.stores.sqlalchemy import SCHEMA_VERSION, SQLAlchemyJobStore

from .conftest import Stores
from .helpers import T0, make_job, make_run

FIRE = T0 + 60  # make_job's next run time
NOW = T0 + 59.9
LEASE = 30.0


def test_the_first_claim_of_a_fire_wins_and_the_other_scheduler_is_told(store: JobStore) -> None:
    store.add_job(make_job("a"))
    assert store.claim_fires({"a": FIRE}, "s1", NOW, LEASE) == {}
    # held by s1: s2 gets the fire itself back (try it again later), s1 nothing new
    assert store.claim_fires({"a": FIRE}, "s2", NOW, LEASE) == {"a": FIRE}
    # recorded: the next run time moves on and the claim is released
    store.set_next_run_times([("a", FIRE + 60)])
    assert store.claim_fires({"a": FIRE}, "s2", NOW + 1, LEASE) == {"a": FIRE + 60}
    assert store.claim_fires({"a": FIRE + 60}, "s2", NOW + 1, LEASE) == {}
    assert store.claim_fires({"a": FIRE + 60}, "s1", NOW + 1, LEASE) == {"a": FIRE + 60}


def test_a_claim_loses_on_a_paused_removed_or_advanced_job(store: JobStore) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("p", paused=True, next_run_time=None))
    store.add_job(make_job("later"))
    store.set_next_run_times([("later", FIRE + 60)])
    lost = store.claim_fires(
        {"a": FIRE, "p": FIRE, "gone": FIRE, "later": FIRE}, "s1", NOW, LEASE
    )
    assert lost == {"p": None, "gone": None, "later": FIRE + 60}
    assert store.claim_fires({}, "s1", NOW, LEASE) == {}


@pytest.mark.parametrize("size", [1, 17, 700])
def test_a_batch_of_free_fires_is_claimed_whole(store: JobStore, size: int) -> None:
    names = [f"j{i:03d}" for i in range(size)]
    for name in names:
        store.add_job(make_job(name))
    assert store.claim_fires(dict.fromkeys(names, FIRE), "s1", NOW, LEASE) == {}
    assert store.claim_fires(dict.fromkeys(names, FIRE), "s2", NOW, LEASE) == dict.fromkeys(
        names, FIRE
    )


def test_a_batch_with_some_fires_not_free_loses_those_alone(store: JobStore) -> None:
    # 700 fires (more than one statement of the SQLite store's usual claim), among them a
    # few that are held, paused, removed or past: each is decided as if claimed alone
    names = [f"j{i:03d}" for i in range(700)]
    for name in names:
        store.add_job(make_job(name, paused=name in ("j010", "j600")))
    assert store.claim_fires({"j005": FIRE, "j650": FIRE}, "s2", NOW, LEASE) == {}
    store.remove_job("j300")
    store.set_next_run_times([("j020", FIRE + 60)])
    wanted = dict.fromkeys(names, FIRE)
    wanted["j030"] = FIRE - 60  # a fire the store shows past
    wanted["j040"] = math.nextafter(FIRE, math.inf)  # fire times are compared exactly
    lost = store.claim_fires(wanted, "s1", NOW, LEASE)
    assert lost == {
        "j005": FIRE, "j650": FIRE, "j010": None, "j600": None, "j300": None,
        "j020": FIRE + 60, "j030": FIRE, "j040": FIRE,
    }
    won = {name: ts for name, ts in wanted.items() if name not in lost}
    assert len(won) == 692
    assert store.claim_fires(won, "s3", NOW, LEASE) == won  # held by s1 now, every one


def test_the_holder_claims_its_next_fire_before_its_write_lands(store: JobStore) -> None:
    store.add_job(make_job("a"))
    assert store.claim_fires({"a": FIRE}, "s1", NOW, LEASE) == {}
    # s1's next-run-time write is on its way: s1 may claim the next fire, s2 may not
    assert store.claim_fires({"a": FIRE + 60}, "s2", NOW + 1, LEASE) == {"a": FIRE}
    assert store.claim_fires({"a": FIRE + 60}, "s1", NOW + 1, LEASE) == {}
    # the late write of FIRE + 60 keeps the claim of that very fire...
    store.set_next_run_times([("a", FIRE + 60)])
    assert store.claim_fires({"a": FIRE + 60}, "s2", NOW + 2, LEASE) == {"a": FIRE + 60}
    # ... and the next one releases it
    store.set_next_run_times([("a", FIRE + 120)])
    assert store.claim_fires({"a": FIRE + 120}, "s2", NOW + 3, LEASE) == {}


def test_an_expired_claim_is_taken_over_and_its_holders_running_runs_crash(
    store: JobStore,
) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b"))
    assert store.claim_fires({"a": FIRE}, "dead", NOW, LEASE) == {}
    store.write_runs(
        [
            make_run("dead-1", "b", 0, status=RunStatus.running, finished_ts=None),
            make_run("live-1", "b", 1, status=RunStatus.running, finished_ts=None),
        ]
    )
    assert store.claim_fires({"a": FIRE}, "s2", NOW + LEASE - 1, LEASE) == {"a": FIRE}
    assert store.get_runs("b")[1].status is RunStatus.running  # not before the lease ends
    assert store.claim_fires({"a": FIRE}, "s2", NOW + LEASE + 1, LEASE) == {}
    runs = {run.id: run for run in store.get_runs("b")}
    assert runs["dead-1"].status is RunStatus.crashed
    assert runs["dead-1"].finished_ts == NOW + LEASE + 1
    assert "ended before" in (runs["dead-1"].error or "")
    assert runs["live-1"].status is RunStatus.running


def test_concurrent_claims_from_two_store_objects_have_one_winner_each(
    persistent_stores: Stores,
) -> None:
    first = persistent_stores.make()
    second = persistent_stores.make()
    names = [f"j{i:03d}" for i in range(200)]
    for name in names:
        first.add_job(make_job(name))
    wins: dict[str, list[str]] = {name: [] for name in names}
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claim(store: JobStore, me: str) -> None:
        start.wait()
        for i in range(0, len(names), 20):
            chunk = dict.fromkeys(names[i : i + 20], FIRE)
            lost = store.claim_fires(chunk, me, NOW, LEASE)
            with lock:
                for name in chunk:
                    if name not in lost:
                        wins[name].append(me)

    threads = [
        threading.Thread(target=claim, args=(s, f"s{i}"))
        for i, s in enumerate([first, second, first, second])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # SKIP LOCKED may make all of them lose a row another one was claiming: that fire is
    # tried again (the loser got the fire itself back), never run twice
    assert all(len(w) <= 1 for w in wins.values()), {n: w for n, w in wins.items() if len(w) > 1}
    again = first.claim_fires({n: FIRE for n in names if not wins[n]}, "late", NOW, LEASE)
    assert all(v == FIRE for v in again.values())


def test_tables_of_the_layout_before_claims_are_upgraded_when_opened(
    persistent_stores: Stores,
) -> None:
    old = persistent_stores.make()
    assert isinstance(old, SQLAlchemyJobStore)
    old.add_job(make_job("a"))
    jobs, meta = old.tables.jobs, old.tables.meta
    with old.engine.begin() as conn:
        for column in ("claimed_by", "claimed_until", "claimed_fire"):
            conn.exec_driver_sql(f'ALTER TABLE "{jobs.name}" DROP COLUMN {column}')
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=1))
    old.close()
    store = persistent_stores.make()
    assert isinstance(store, SQLAlchemyJobStore)
    with store.engine.connect() as conn:
        version = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
        assert version.scalar() == SCHEMA_VERSION == 2
    assert [job.name for job in store.get_jobs()] == ["a"]
    assert store.claim_fires({"a": FIRE}, "s1", NOW, LEASE) == {}  # old rows: unclaimed
    assert store.claim_fires({"a": FIRE}, "s2", NOW, LEASE) == {"a": FIRE}


def test_beats_tell_the_live_schedulers_and_crash_the_runs_of_those_gone(
    persistent_stores: Stores,
) -> None:
    store = persistent_stores.make()
    store.add_job(make_job("b"))
    store.write_runs(
        [
            make_run(f"{who}-1", "b", i, status=RunStatus.running, finished_ts=None)
            for i, who in enumerate(["s1", "s2", "s3"])
        ]
    )
    assert store.beat("s1", NOW, LEASE) == []
    assert store.beat("s2", NOW + 1, LEASE) == ["s1"]
    # a process of this machine that is gone is known dead at once, lease or not
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert isinstance(store, SQLAlchemyJobStore)
    with store.engine.begin() as conn:
        table = store.tables.schedulers
        conn.execute(update(table).where(table.c.id == "s1").values(pid=int(dead.stdout)))
    store.beat("s3", NOW + 2, LEASE)
    status = {run.id: run.status for run in store.get_runs("b")}
    assert status == {
        "s1-1": RunStatus.crashed,
        "s2-1": RunStatus.running,
        "s3-1": RunStatus.running,
    }
    # s2 stops beating: once its lease has run out, s3's next beat ends its runs
    assert store.beat("s3", NOW + LEASE, LEASE) == ["s2"]
    assert store.beat("s3", NOW + LEASE + 2, LEASE) == []
    status = {run.id: run.status for run in store.get_runs("b")}
    assert status["s2-1"] is RunStatus.crashed and status["s3-1"] is RunStatus.running


def test_a_scheduler_that_stops_releases_its_claims(store: JobStore) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b"))
    assert store.claim_fires({"a": FIRE}, "s1", NOW, LEASE) == {}
    assert store.claim_fires({"b": FIRE}, "s2", NOW, LEASE) == {}
    store.forget("s1")
    assert store.claim_fires({"a": FIRE, "b": FIRE}, "s3", NOW, LEASE) == {"b": FIRE}
