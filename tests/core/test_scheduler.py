"""The engine, driven by a fake clock: no sleeping, every wait bounded."""

from __future__ import annotations

import threading

import pytest

from nbsched import (
    ConflictingJobError,
    InvalidArgumentError,
    JobLookupError,
    RunStatus,
    Scheduler,
    TargetLookupError,
    TriggerParseError,
)
from nbsched.events import JobAdded, JobPaused, RunFinished, RunStarted
from nbsched.testing import FakeClock
from tests.helpers.wait import wait_for

calls: list[str] = []


def record_call(tag: str = "x") -> None:
    calls.append(tag)


def runs_of(s: Scheduler, name: str, n: int, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Wait (bounded) until job ``name`` has at least ``n`` finished runs; oldest first."""
    def enough() -> bool:
        return sum(r.status.finished for r in s.get_runs(name, limit=1000)) >= n

    wait_for(enough, timeout, f"{n} runs of {name!r}")
    return [r for r in reversed(s.get_runs(name, limit=1000)) if r.status.finished]


def test_interval_job_fires_on_the_grid_without_drift(sched: Scheduler, clock: FakeClock) -> None:
    t0 = clock.time()
    sched.add_job(lambda: None, "every 10s", name="tick")
    clock.advance(0.37)  # the loop always wakes a little after the fire time
    for k in range(1, 6):
        clock.advance(10)
        runs = runs_of(sched, "tick", k)
    assert [r.scheduled_ts - t0 for r in runs] == [10, 20, 30, 40, 50]
    assert {r.status for r in runs} == {RunStatus.succeeded}


def test_output_goes_to_its_own_run(sched: Scheduler, clock: FakeClock, capsys) -> None:  # type: ignore[no-untyped-def]
    def loud() -> None:
        print("hello from the job")
        import sys

        print("and from stderr", file=sys.stderr)

    sched.add_job(loud, "every 5s", name="loud")
    clock.advance(5)
    (run,) = runs_of(sched, "loud", 1)
    assert run.output == "hello from the job\nand from stderr\n"
    print("main thread output")
    out, err = capsys.readouterr()
    assert "hello from the job" not in out and "and from stderr" not in err
    assert "main thread output" in out


def test_concurrent_jobs_never_mix_output(sched: Scheduler, clock: FakeClock) -> None:
    barrier = threading.Barrier(3, timeout=10)

    def talker(tag: str) -> None:
        barrier.wait()  # all three print at the same time
        for i in range(200):
            print(f"{tag}{i}")

    for tag in "abc":
        sched.add_job(talker, "every 1s", name=tag, args=(tag,))
    clock.advance(1)
    for tag in "abc":
        (run,) = runs_of(sched, tag, 1)
        assert run.output == "".join(f"{tag}{i}\n" for i in range(200))


def test_failure_is_recorded_with_traceback(sched: Scheduler, clock: FakeClock) -> None:
    def boom() -> None:
        raise RuntimeError("kaput")

    sched.add_job(boom, "every 1m", name="boom")
    clock.advance(60)
    (run,) = runs_of(sched, "boom", 1)
    assert run.status is RunStatus.failed
    assert "RuntimeError: kaput" in run.error and "Traceback" in run.error


def test_retries_with_delay(sched: Scheduler, clock: FakeClock) -> None:
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        raise ValueError("try again")

    sched.add_job(flaky, "every 1h", name="flaky", retries=2, retry_delay=30)
    clock.advance(3600)
    runs_of(sched, "flaky", 1)
    clock.advance(30)
    runs_of(sched, "flaky", 2)
    clock.advance(30)
    runs = runs_of(sched, "flaky", 3)
    assert [r.attempt for r in runs] == [0, 1, 2]
    assert all(r.status is RunStatus.failed for r in runs)
    assert len({r.scheduled_ts for r in runs}) == 1  # retries belong to the same fire time
    clock.advance(3600)  # no fourth attempt, but the next fire time runs normally
    assert [r.attempt for r in runs_of(sched, "flaky", 4)] == [0, 1, 2, 0]


def test_pause_and_resume(sched: Scheduler, clock: FakeClock) -> None:
    sched.add_job(record_call, "every 10s", name="p")
    job = sched.pause_job("p")
    assert job.paused and job.next_run_time is None
    clock.advance(100)
    assert sched.get_runs("p") == []
    clock.advance(5)  # resume at t0+105: next fire is t0+110, on the original grid
    t = clock.time()
    job = sched.resume_job("p")
    assert job.next_run_time.timestamp() == t + 5
    clock.advance(5)
    (run,) = runs_of(sched, "p", 1)
    assert run.scheduled_ts == t + 5


def test_remove_job_and_lookup_errors(sched: Scheduler, clock: FakeClock) -> None:
    sched.add_job(record_call, "every 10s", name="refresh")
    with pytest.raises(JobLookupError, match="did you mean 'refresh'"):
        sched.pause_job("refrsh")
    sched.remove_job("refresh")
    clock.advance(30)
    with pytest.raises(JobLookupError, match="no jobs"):
        sched.get_job("refresh")


def test_misfire_grace_records_missed_runs(sched: Scheduler, clock: FakeClock) -> None:
    sched.add_job(record_call, "every 10s", name="g", misfire_grace_time=1, coalesce=False)
    clock.advance(35)  # fire times 10, 20, 30 are all late by more than 1 s
    runs = runs_of(sched, "g", 3)
    assert [r.status for r in runs] == [RunStatus.missed] * 3
    assert "misfire_grace_time=1" in runs[0].error


def test_coalesce_runs_once_and_records_what_it_folded(sched: Scheduler, clock: FakeClock) -> None:
    t0 = clock.time()
    sched.add_job(record_call, "every 10s", name="c")
    clock.advance(95)
    runs = runs_of(sched, "c", 2)
    assert sorted(r.status.value for r in runs) == ["missed", "succeeded"]
    ran = next(r for r in runs if r.status is RunStatus.succeeded)
    folded = next(r for r in runs if r.status is RunStatus.missed)
    assert ran.scheduled_ts == t0 + 10 and folded.scheduled_ts == t0 + 20
    assert "Coalesced" in folded.error
    assert sched.get_job("c").next_run_time.timestamp() == t0 + 100  # back on the grid


def test_no_coalesce_runs_every_missed_time(sched: Scheduler, clock: FakeClock) -> None:
    t0 = clock.time()
    # every missed fire time runs; max_instances still applies, so allow them to overlap
    sched.add_job(record_call, "every 10s", name="all", coalesce=False, max_instances=4)
    clock.advance(45)
    runs = runs_of(sched, "all", 4)
    assert [r.scheduled_ts - t0 for r in runs] == [10, 20, 30, 40]
    assert {r.status for r in runs} == {RunStatus.succeeded}


def test_max_instances_skips_and_records(sched: Scheduler, clock: FakeClock) -> None:
    release = threading.Event()
    sched.add_job(release.wait, "every 10s", name="slow", args=(10,))
    clock.advance(10)
    wait_for(lambda: sched.status()["running_runs"] == 1)
    clock.advance(10)
    skipped = runs_of(sched, "slow", 1)
    assert skipped[0].status is RunStatus.skipped and "max_instances=1" in skipped[0].error
    release.set()
    runs = runs_of(sched, "slow", 2)
    assert sorted(r.status.value for r in runs) == ["skipped", "succeeded"]


def test_timeout_abandons_a_thread_job(sched: Scheduler, clock: FakeClock) -> None:
    release = threading.Event()
    sched.add_job(release.wait, "every 1h", name="stuck", args=(30,), timeout=5)
    clock.advance(3600)
    wait_for(lambda: sched.status()["running_runs"] == 1)
    clock.advance(5)
    (run,) = runs_of(sched, "stuck", 1)
    assert run.status is RunStatus.timed_out and "abandoned" in run.error
    release.set()


def test_run_job_returns_the_finished_run(sched: Scheduler) -> None:
    sched.add_job(lambda: print("now!"), "every 1d", name="now")
    run = sched.run_job("now")
    assert run.status is RunStatus.succeeded and run.output == "now!\n"
    assert sched.get_runs("now")[0].id == run.id


def test_listeners_get_events_and_a_broken_listener_is_harmless(
    sched: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []
    sched.add_listener(lambda e: 1 / 0)  # logged and counted, never propagated
    remove = sched.add_listener(seen.append)
    sched.add_job(record_call, "every 10s", name="ev")
    sched.pause_job("ev")
    sched.resume_job("ev")
    clock.advance(10)
    wait_for(lambda: any(isinstance(e, RunFinished) for e in seen))
    kinds = [type(e) for e in seen]
    assert JobAdded in kinds and JobPaused in kinds and RunStarted in kinds
    # every event the broken listener got is one ZeroDivisionError, logged and counted
    failed = [r for r in caplog.records if r.name == "nbsched" and "listener" in r.message]
    assert failed and all(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in failed)
    assert sched.status()["listener_errors"] >= len(kinds) > 0
    remove()
    n = len(seen)
    sched.run_job("ev")
    assert len(seen) == n


def test_upcoming_is_sorted(sched: Scheduler, clock: FakeClock) -> None:
    sched.add_job(record_call, "every 30s", name="b")
    sched.add_job(record_call, "every 10s", name="a")
    sched.add_job(record_call, "every 20s", name="c", paused=True)
    assert [job.name for _, job in sched.upcoming()] == ["a", "b"]
    assert [when.timestamp() - clock.time() for when, _ in sched.upcoming()] == [10, 30]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trigger": "evry 5m"}, TriggerParseError, "evry 5m"),
        ({"timeout": 0}, InvalidArgumentError, "timeout"),
        ({"max_instances": 0}, InvalidArgumentError, "max_instances"),
        ({"misfire_grace_time": -1}, InvalidArgumentError, "misfire_grace_time"),
        ({"retries": -1}, InvalidArgumentError, "retries"),
        ({"retry_delay": -5}, InvalidArgumentError, "retry_delay"),
        ({"executor": "threads"}, InvalidArgumentError, "did you mean 'thread'"),
        ({"name": " padded "}, InvalidArgumentError, "name"),
        ({"target": "nosuchmodule_xyz:f"}, TargetLookupError, "nosuchmodule_xyz"),
        ({"target": "json:nosuchfunction"}, TargetLookupError, "nosuchfunction"),
        ({"target": "not a ref"}, InvalidArgumentError, "Invalid target"),
        ({"trigger": "at 2001-01-01 09:00"}, InvalidArgumentError, "never fires"),
    ],
)
def test_bad_input_raises_typed_errors_and_changes_nothing(
    sched: Scheduler, kwargs: dict, error: type, match: str
) -> None:
    sched.add_job(record_call, "every 10s", name="keep")
    args = {"target": record_call, "trigger": "every 10s", "name": "new"} | kwargs
    with pytest.raises(error, match=match):
        sched.add_job(args.pop("target"), args.pop("trigger"), **args)
    assert [j.name for j in sched.get_jobs()] == ["keep"]
    assert [j.name for j in sched.store.get_jobs()] == ["keep"]


def test_duplicate_name_conflicts_unless_replacing(sched: Scheduler, clock: FakeClock) -> None:
    sched.add_job(record_call, "every 10s", name="dup")
    with pytest.raises(ConflictingJobError, match="replace_existing=True"):
        sched.add_job(record_call, "every 20s", name="dup")
    assert sched.get_job("dup").trigger.describe() == sched.get_job("dup").schedule
    job = sched.add_job(record_call, "every 20s", name="dup", replace_existing=True)
    assert job.next_run_time.timestamp() == clock.time() + 20
    assert len(sched.get_jobs()) == 1
    clock.advance(10)  # the old 10 s schedule is gone
    clock.advance(10)
    assert [r.scheduled_ts for r in runs_of(sched, "dup", 1)] == [clock.time()]


def test_unbound_job_waits_and_binds_later(clock: FakeClock) -> None:
    namespace: dict[str, object] = {}

    def resolver(job):  # type: ignore[no-untyped-def]
        return namespace.get(job.target.partition(":")[2])

    namespace["fetch"] = lambda: print("fetched")
    s = Scheduler(clock=clock, timezone="UTC", resolver=resolver)
    s.start()
    try:
        s.add_job("__main__:fetch", "every 10s", name="fetch")
        del namespace["fetch"]
        # Simulate a restart: the store keeps the job, the new process lacks the function.
        s2_store = s.store
        s.shutdown()
        s2 = Scheduler(store=s2_store, clock=clock, timezone="UTC", resolver=resolver)
        s2.start()
        try:
            assert s2.get_job("fetch").unbound
            assert s2.status()["unbound"] == 1
            clock.advance(30)
            assert s2.get_runs("fetch") == []  # waits, does not fail every 10 s
            with pytest.raises(TargetLookupError, match="run the cell that defines it"):
                s2.run_job("fetch")
            assert s2.bind_unbound() == []
            namespace["fetch"] = lambda: print("fetched again")
            assert s2.bind_unbound() == ["fetch"]
            runs = runs_of(s2, "fetch", 2)  # overdue fire times: coalesced into one run
            assert sorted(r.status.value for r in runs) == ["missed", "succeeded"]
            assert next(r for r in runs if r.status is RunStatus.succeeded).output == "fetched again\n"
        finally:
            s2.shutdown()
    finally:
        s.shutdown()


def test_status_reports_health(sched: Scheduler) -> None:
    st = sched.status()
    assert st["running"] and st["healthy"] and st["error"] is None
    sched.shutdown()
    assert not sched.status()["running"]


def test_a_new_interval_job_first_fires_one_interval_later() -> None:
    """Regression: anchoring at a "now" that datetime rounds up to the microsecond made about
    a third of new interval jobs fire at once."""
    import random

    rng = random.Random(7)
    for _ in range(2000):
        clock = FakeClock(1_800_000_000 + rng.random() * 1000)
        s = Scheduler(clock=clock, timezone="UTC")  # not started: add_job only computes
        job = s.add_job(record_call, "every 10s", name="x")
        assert job.next_run_time.timestamp() - clock.time() == pytest.approx(10, abs=1e-5)


@pytest.mark.parametrize("url", [None, "memory:", "memory://"])
def test_memory_store_urls(url: str | None) -> None:
    from nbsched.stores import MemoryJobStore

    s = Scheduler(url, timezone="UTC")
    assert isinstance(s.store, MemoryJobStore)
