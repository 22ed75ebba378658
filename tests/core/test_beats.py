"""Beats on a shared store (``JobStore.beat``): an idle scheduler alone does not wake up to
beat; one with runs in flight beats every third of the lease, so that it loses them a lease
after it dies; schedulers that were idle learn of each other when work comes.

A real SQLite file, schedulers driven by one fake clock.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from nbsched import Scheduler
from nbsched._engine.sync import PEERS_EVERY
from nbsched.jobs import RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for

LEASE = 30.0
RELEASE = threading.Event()


def hold() -> None:
    """A job body that runs until the test lets it go."""
    RELEASE.wait(30)


class CountingStore(SQLAlchemyJobStore):
    """A SQLite store that counts its beats."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.beats: list[tuple[str, float]] = []

    def beat(self, scheduler_id: str, now: float, lease: float) -> list[str]:
        self.beats.append((scheduler_id, now))
        return super().beat(scheduler_id, now, lease)

    def alive_until(self, scheduler_id: str) -> float:
        with self._engine.connect() as conn:
            return float(
                conn.execute(
                    text("SELECT alive_until FROM nbsched_schedulers WHERE id = :id"),
                    {"id": scheduler_id},
                ).scalar_one()
            )


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Scheduler]]:
    RELEASE.clear()
    schedulers: list[Scheduler] = []
    yield schedulers
    RELEASE.set()
    for s in schedulers:
        s.shutdown()
    for s in schedulers:
        s.store.close()


def start(url: str, clock: FakeClock, made: list[Scheduler]) -> Scheduler:
    s = Scheduler(store=CountingStore(url), clock=clock, timezone="UTC", lease_seconds=LEASE)
    made.append(s)
    s.start()
    settle(s, clock)
    return s


def settle(s: Scheduler, clock: FakeClock) -> None:
    """Wait until the loop has done every look and beat due by the fake time."""
    sync = s._engine.sync
    wait_for(lambda: sync.loaded and (sync.next_look() or 0) > clock.time(), 10, "the loop")


def advance(schedulers: list[Scheduler], clock: FakeClock, seconds: float, step: float) -> None:
    for _ in range(round(seconds / step)):
        clock.advance(step)
        for s in schedulers:
            settle(s, clock)


def beats_of(s: Scheduler) -> list[float]:
    store = s.store
    assert isinstance(store, CountingStore)
    mine = s._engine.loop.scheduler_id
    return [now for who, now in store.beats if who == mine]


def wait_running_record(store: SQLAlchemyJobStore, name: str) -> None:
    wait_for(
        lambda: any(r.status is RunStatus.running for r in store.get_runs(name)),
        10, "the running record in the store",
    )


def knows(s: Scheduler, other: Scheduler) -> bool:
    return zlib.crc32(other._engine.loop.scheduler_id.encode()) in s._engine.loop._claims.peers  # type: ignore[union-attr]


def test_an_idle_scheduler_alone_on_a_shared_store_does_not_beat(
    db_url: str, clock: FakeClock, made: list[Scheduler]
) -> None:
    s = start(db_url, clock, made)
    s.add_job(hold, "every 1d", name="daily")  # (a job that does not come due meanwhile)
    before = len(beats_of(s))
    advance([s], clock, 10 * LEASE, 2.5)
    assert len(beats_of(s)) - before <= 1
    # ... and the others still see it alive
    store = s.store
    assert isinstance(store, CountingStore)
    assert store.beat("another", clock.time(), LEASE) == [s._engine.loop.scheduler_id]


def test_a_scheduler_with_a_run_in_flight_beats_and_loses_it_a_lease_after_it_stops(
    db_url: str, clock: FakeClock, made: list[Scheduler]
) -> None:
    s = start(db_url, clock, made)
    store = s.store
    assert isinstance(store, CountingStore)
    me = s._engine.loop.scheduler_id
    s.add_job(hold, "every 1d", name="daily")
    clock.advance(86_400)  # the job comes due and runs until RELEASE
    wait_running_record(store, "daily")
    # the row in the store covers the running run for one lease only
    assert store.alive_until(me) <= clock.time() + LEASE
    before = len(beats_of(s))
    advance([s], clock, 3 * LEASE, 2.5)
    assert len(beats_of(s)) - before >= 8  # every third of the lease
    # were it to stop beating now (SIGKILL), the next beat of another scheduler after its
    # lease crashes its run
    assert store.alive_until(me) <= clock.time() + LEASE
    store.beat("another", clock.time() + LEASE + 1, LEASE)
    (run,) = store.get_runs("daily")
    assert run.status is RunStatus.crashed


def test_a_run_started_by_hand_on_an_idle_scheduler_is_covered_by_a_busy_row(
    db_url: str, clock: FakeClock, made: list[Scheduler]
) -> None:
    s = start(db_url, clock, made)
    store = s.store
    assert isinstance(store, CountingStore)
    s.add_job(hold, "every 1d", name="daily")
    runner = threading.Thread(target=s.run_job, args=("daily",))  # (no claim: no wake beat)
    runner.start()
    try:
        wait_running_record(store, "daily")
        assert store.alive_until(s._engine.loop.scheduler_id) <= clock.time() + LEASE
    finally:
        RELEASE.set()
        runner.join(10)
    # idle again: back to an idle row, and no more beats
    wait_for(lambda: s._engine.writer.pending == 0, 10, "the finished record")
    advance([s], clock, LEASE, 2.5)
    assert s._engine.sync.idle_row
    before = len(beats_of(s))
    advance([s], clock, 5 * LEASE, 2.5)
    assert len(beats_of(s)) == before


def test_idle_schedulers_find_each_other_when_work_comes(
    db_url: str, clock: FakeClock, made: list[Scheduler]
) -> None:
    first = start(db_url, clock, made)
    advance([first], clock, LEASE, 2.5)
    second = start(db_url, clock, made)  # it sees the first one's idle row
    assert knows(second, first)
    assert not knows(first, second)  # the first one has not beaten since
    first.add_job(f"{__name__}:hold", "every 45s", name="job")
    second.refresh_from_store()
    RELEASE.set()
    advance([first, second], clock, 42.5, 2.5)
    assert not knows(first, second)  # nothing woke it up
    clock.advance(2.5)  # the fire: the first one beats before it claims
    wait_for(lambda: knows(first, second), 10, "the first one to learn of the second")
    wait_for(lambda: len(first.get_runs("job")) == 1, 10, "the run")
    assert first.get_runs("job")[0].status is RunStatus.succeeded


def test_a_busy_scheduler_learns_of_a_newcomer_within_peers_every(
    db_url: str, clock: FakeClock, made: list[Scheduler]
) -> None:
    """Until it knows a newcomer, a scheduler claims the fires the newcomer is the first
    choice for too: it must learn of it sooner than its beats every third of the lease."""
    first = start(db_url, clock, made)
    first.add_job(hold, "every 1d", name="daily")
    clock.advance(86_400)  # the job runs until RELEASE: the first one is busy
    wait_for(lambda: first.status()["running_runs"] == 1, 10, "the run")
    advance([first], clock, 5, 0.5)
    second = start(db_url, clock, made)
    assert knows(second, first) and not knows(first, second)
    advance([first, second], clock, PEERS_EVERY + 0.5, 0.5)
    assert knows(first, second)
