"""The JobStore contract (nbsched/abc.py): one suite, run against every store.

``stores`` (conftest.py) is parametrized over memory, a SQLite file and PostgreSQL; tests of
what persists (pickling, unreadable rows, a second store object on the same database) use
``persistent_stores``, which leaves out the memory store.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nbsched.abc import ALL_OWNERS, JobStore
from nbsched.errors import (
    ConflictingJobError,
    InvalidArgumentError,
    JobLookupError,
    NbschedError,
    NotPicklableError,
    StateVersionError,
)
from nbsched.jobs import Job, Run, RunStatus
from nbsched.stores import UnreadableArgs, UnreadableKwargs
from nbsched.triggers import parse_trigger
from nbsched.triggers.registry import BrokenTrigger
from tests.helpers.wait import wait_for

from .conftest import Stores
from .helpers import T0, at, make_job, make_run


def names(jobs: list[Job]) -> list[str]:
    return [job.name for job in jobs]


def ids(runs: list[Run]) -> list[str]:
    return [run.id for run in runs]


def snapshot(store: JobStore) -> tuple[list[Job], list[Run], object]:
    """Everything a rejected call must leave as it was."""
    return store.get_jobs(), store.get_runs(limit=10_000), store.change_marker()


@dataclasses.dataclass
class Point:
    """A user-defined value in the arguments (pickled by reference to this module)."""

    x: int
    y: int


# -- open / close -------------------------------------------------------------------------------


def test_open_and_close_are_idempotent(stores: Stores) -> None:
    store = stores.make()
    store.open()
    store.add_job(make_job("a"))
    store.close()
    store.close()
    store.open()
    assert names(store.get_jobs()) == ["a"]


# -- jobs ---------------------------------------------------------------------------------------


def test_a_job_round_trips_with_every_field(store: JobStore) -> None:
    job = make_job(
        "full",
        kind="callable",
        executor="process",
        args=(1, "two", Point(3, 4), {"nested": [1.5, None]}, b"\x00bytes"),
        kwargs={"point": Point(5, 6), "flag": True},
        timeout=12.5,
        max_instances=3,
        coalesce=False,
        misfire_grace_time=30.0,
        retries=2,
        retry_delay=1.5,
        paused=True,
        next_run_time=at(120.25),
        parameters={"alpha": 1, "names": ["x", "y"], "nested": {"k": None}},
        owner="notebooks/report.ipynb",
        created_at=at(-10.000001),
    )
    store.add_job(job)
    got = store.get_job("full")
    assert got == job
    assert got is not None and isinstance(got.args, tuple) and got.args[2] == Point(3, 4)
    assert got.next_run_time is not None and got.next_run_time.utcoffset() is not None
    assert store.get_jobs() == [job]


def test_optional_fields_round_trip_as_none(store: JobStore) -> None:
    job = make_job("bare", kind="cell", target="print('hi')\n", next_run_time=None, created_at=None)
    store.add_job(job)
    assert store.get_job("bare") == job


def test_get_job_of_an_unknown_name_is_none(store: JobStore) -> None:
    store.add_job(make_job("a"))
    assert store.get_job("b") is None


def test_unbound_is_not_stored(store: JobStore) -> None:
    store.add_job(make_job("a", unbound=True))
    got = store.get_job("a")
    assert got is not None and got.unbound is False


def test_adding_a_taken_name_is_refused_and_changes_nothing(store: JobStore) -> None:
    store.add_job(make_job("a", target="m:one"))
    before = snapshot(store)
    with pytest.raises(ConflictingJobError, match="'a' already exists") as info:
        store.add_job(make_job("a", target="m:two"))
    assert isinstance(info.value, KeyError) and isinstance(info.value, NbschedError)
    assert snapshot(store) == before


def test_replace_existing_replaces_but_keeps_created_at(store: JobStore) -> None:
    store.add_job(make_job("a", target="m:one", created_at=at(-100)))
    store.add_job(
        make_job("a", target="m:two", created_at=at(0), paused=True), replace_existing=True
    )
    got = store.get_job("a")
    assert got is not None
    assert (got.target, got.paused, got.created_at) == ("m:two", True, at(-100))
    assert len(store.get_jobs()) == 1


def test_replace_existing_adds_a_new_job(store: JobStore) -> None:
    store.add_job(make_job("a"), replace_existing=True)
    assert store.get_job("a") == make_job("a")


def test_update_job_replaces_the_stored_job(store: JobStore) -> None:
    store.add_job(make_job("a", created_at=at(-100)))
    store.update_job(make_job("a", target="m:other", paused=True, next_run_time=None))
    got = store.get_job("a")
    assert got == make_job(
        "a", target="m:other", paused=True, next_run_time=None, created_at=at(-100)
    )


def test_update_of_an_unknown_job_raises_and_changes_nothing(store: JobStore) -> None:
    store.add_job(make_job("alpha"))
    before = snapshot(store)
    with pytest.raises(JobLookupError, match="No job named 'alphb'.*'alpha'") as info:
        store.update_job(make_job("alphb"))
    assert isinstance(info.value, LookupError)
    assert snapshot(store) == before


def test_remove_job_removes_it_and_its_runs_only(store: JobStore) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b"))
    store.write_runs([make_run("r1", "a"), make_run("r2", "b"), make_run("r3", "a", 60)])
    store.remove_job("a")
    assert names(store.get_jobs()) == ["b"]
    assert store.get_job("a") is None
    assert ids(store.get_runs("a")) == []
    assert ids(store.get_runs()) == ["r2"]


def test_remove_of_an_unknown_job_raises_and_changes_nothing(store: JobStore) -> None:
    store.add_job(make_job("a"))
    store.write_runs([make_run("ghost-run", "ghost")])  # runs of a job the store does not know
    before = snapshot(store)
    with pytest.raises(JobLookupError, match="No job named 'ghost'"):
        store.remove_job("ghost")
    assert snapshot(store) == before
    store.remove_job("a")
    with pytest.raises(JobLookupError, match="there are no jobs"):
        store.remove_job("a")


def test_get_jobs_sorts_by_name_and_filters_by_owner(store: JobStore) -> None:
    jobs = [("b", "nb1"), ("a", None), ("C", "nb2"), ("a_b", "nb1"), ("aB", None), ("é", "nb1")]
    for name, owner in jobs:
        store.add_job(make_job(name, owner=owner))
    in_order = ["C", "a", "aB", "a_b", "b", "é"]  # code point order, whatever the locale
    assert names(store.get_jobs()) == in_order
    assert names(store.get_jobs(ALL_OWNERS)) == in_order
    assert names(store.get_jobs("nb1")) == ["a_b", "b", "é"]
    assert names(store.get_jobs(None)) == ["a", "aB"]  # None is an owner: "no owner"
    assert store.get_jobs("nobody") == []


def test_set_next_run_times_updates_several_and_ignores_unknown_names(store: JobStore) -> None:
    store.add_job(make_job("a"))
    store.add_job(make_job("b"))
    store.add_job(make_job("c", next_run_time=at(5)))
    store.set_next_run_times([("a", T0 + 1000.5), ("gone", T0), ("b", None)])
    store.set_next_run_times([])
    jobs = {job.name: job for job in store.get_jobs()}
    assert jobs["a"].next_run_time == at(1000.5)
    assert jobs["b"].next_run_time is None
    assert jobs["c"].next_run_time == at(5)
    assert jobs["a"] == make_job("a", next_run_time=at(1000.5))  # nothing else changed
    assert store.get_job("gone") is None


# -- runs ---------------------------------------------------------------------------------------


def test_runs_round_trip(store: JobStore) -> None:
    run = Run(
        id="r1",
        job_name="a",
        status=RunStatus.failed,
        scheduled_ts=T0 + 0.125,
        started_ts=T0 + 0.25,
        finished_ts=T0 + 3.5,
        output="line 1\nline 2 ünïcode\n",
        error="Traceback ...\nValueError: bad",
        attempt=2,
        owner="nb",
        output_path="/tmp/out.ipynb",
    )
    running = Run(id="r2", job_name="a", status=RunStatus.running, scheduled_ts=T0 + 60)
    store.write_runs([run, running])
    assert store.get_runs("a") == [running, run]


def test_runs_come_newest_first(store: JobStore) -> None:
    store.write_runs(
        [
            make_run("old", scheduled=0),
            make_run("new", scheduled=120),
            make_run("mid-late", scheduled=60, started_ts=T0 + 65),
            make_run("mid-early", scheduled=60, started_ts=T0 + 61),
            make_run("mid-never", scheduled=60, started_ts=None, status=RunStatus.missed),
            make_run("tie-b", scheduled=30, started_ts=T0 + 31),
            make_run("tie-a", scheduled=30, started_ts=T0 + 31),
        ]
    )
    expected = ["new", "mid-late", "mid-early", "mid-never", "tie-b", "tie-a", "old"]
    assert ids(store.get_runs()) == expected
    assert ids(store.get_runs("job")) == expected
    assert ids(store.get_runs("job", limit=2)) == expected[:2]
    assert store.get_runs("job", limit=0) == []


def test_runs_are_merged_newest_first_across_jobs(store: JobStore) -> None:
    store.write_runs([make_run(f"a{i}", "a", i * 10) for i in range(5)])
    store.write_runs([make_run(f"b{i}", "b", i * 10 + 5) for i in range(5)])
    assert ids(store.get_runs(limit=4)) == ["b4", "a4", "b3", "a3"]


def test_get_runs_filters_by_job_and_owner(store: JobStore) -> None:
    store.write_runs(
        [
            make_run("1", "a", 1, owner="nb1"),
            make_run("2", "b", 2, owner="nb1"),
            make_run("3", "c", 3, owner=None),
            make_run("4", "a", 4, owner="nb1"),
        ]
    )
    assert ids(store.get_runs(owner="nb1")) == ["4", "2", "1"]
    assert ids(store.get_runs(owner=None)) == ["3"]
    assert ids(store.get_runs("a", owner="nb1")) == ["4", "1"]
    assert ids(store.get_runs("a", owner=None)) == []
    assert ids(store.get_runs("nope")) == []


def test_last_runs_gives_the_newest_run_of_each_job_in_get_runs_order(store: JobStore) -> None:
    store.add_job(make_job("a", owner="nb1"))
    store.add_job(make_job("b", owner="nb1"))
    store.add_job(make_job("c", owner="nb2"))
    store.add_job(make_job("quiet", owner="nb1"))  # no runs: left out
    store.write_runs(
        [
            make_run("a-old", "a", 0, owner="nb1"),
            make_run("a-late", "a", 60, started_ts=T0 + 65, owner="nb1"),
            make_run("a-early", "a", 60, started_ts=T0 + 61, owner="nb1"),
            make_run("b-never", "b", 30, started_ts=None, status=RunStatus.missed, owner="nb1"),
            make_run("b-old", "b", 10, owner="nb1"),
            make_run("c-1", "c", 5, owner="nb2"),
            make_run("orphan", "gone", 90),  # a job not in the store
        ]
    )
    newest = {name: store.get_runs(name, limit=1)[0] for name in ("a", "b", "c")}
    assert store.last_runs() == newest
    assert store.last_runs(owner="nb1") == {"a": newest["a"], "b": newest["b"]}
    assert store.last_runs(owner=None) == {}
    assert store.last_runs(["c", "a", "quiet", "nope"]) == {"a": newest["a"], "c": newest["c"]}
    assert store.last_runs(["a", "c"], owner="nb2") == {"c": newest["c"]}
    assert store.last_runs([]) == {}


def test_last_runs_of_many_names_is_still_right(store: JobStore) -> None:
    # More names than one statement can hold (the SQL store then reads every job's).
    for i in range(3):
        store.add_job(make_job(f"j{i}"))
        store.write_runs([make_run(f"r{i}-{k}", f"j{i}", k) for k in range(3)])
    asked = [f"j{i}" for i in range(2)] + [f"x{i}" for i in range(2000)]
    assert ids(list(store.last_runs(asked).values())) == ["r0-2", "r1-2"]


def test_get_runs_refuses_a_negative_limit(store: JobStore) -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        store.get_runs(limit=-1)


def test_write_runs_replaces_by_id(store: JobStore) -> None:
    started = make_run("r1", status=RunStatus.running, finished_ts=None)
    store.write_runs([started, make_run("r0", scheduled=-60)])
    finished = dataclasses.replace(started, status=RunStatus.succeeded, finished_ts=T0 + 2)
    store.write_runs([finished])
    assert store.get_runs() == [finished, make_run("r0", scheduled=-60)]
    # the last write of an id within one batch wins, too
    a = make_run("r2", scheduled=5, status=RunStatus.running, finished_ts=None)
    b = dataclasses.replace(a, status=RunStatus.failed, error="boom", finished_ts=T0 + 9)
    store.write_runs([a, b])
    assert store.get_runs(limit=1) == [b]
    assert len(store.get_runs()) == 3


def test_a_replaced_run_may_change_its_sort_position(store: JobStore) -> None:
    store.write_runs([make_run("x", scheduled=0), make_run("y", scheduled=10)])
    store.write_runs([make_run("x", scheduled=20)])
    assert ids(store.get_runs()) == ["x", "y"]


def test_write_runs_of_nothing_is_fine(store: JobStore) -> None:
    store.write_runs([])
    assert store.get_runs() == []


@pytest.mark.parametrize("batches", [1, 3, 8])
def test_retention_keeps_the_newest_runs_per_job(stores: Stores, batches: int) -> None:
    store = stores.make(retention=5)
    store.add_job(make_job("a"))
    # written out of time order, in one or several batches
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    runs = [make_run(f"a{i}", "a", i * 10) for i in order]
    size = -(-len(runs) // batches)
    for start in range(0, len(runs), size):
        store.write_runs(runs[start : start + size])
    store.write_runs([make_run(f"b{i}", "b", i) for i in range(3)])  # another job: not pruned
    assert ids(store.get_runs("a")) == ["a7", "a6", "a5", "a4", "a3"]
    assert ids(store.get_runs("b")) == ["b2", "b1", "b0"]
    # an old run written now is pruned straight away; a newer one pushes out the oldest
    store.write_runs([make_run("ancient", "a", -100), make_run("a8", "a", 80)])
    assert ids(store.get_runs("a")) == ["a8", "a7", "a6", "a5", "a4"]


def test_retention_applies_to_runs_of_unknown_jobs_which_are_kept(stores: Stores) -> None:
    store = stores.make(retention=2)
    store.write_runs([make_run(f"g{i}", "ghost", i) for i in range(4)])
    assert ids(store.get_runs("ghost")) == ["g3", "g2"]


def test_retention_is_validated(stores: Stores) -> None:
    for bad in (0, -1, 1.5, "10"):
        with pytest.raises(InvalidArgumentError, match="retention"):
            stores.make(retention=bad)


def test_finish_stale_runs_marks_running_runs_of_one_owner(store: JobStore) -> None:
    def running(run_id: str, owner: str | None) -> Run:
        return make_run(run_id, status=RunStatus.running, finished_ts=None, owner=owner)

    done = make_run("done", owner="nb1", scheduled=-10)
    store.write_runs([running("r1", "nb1"), running("r2", "nb1"), running("r3", "nb2"), done])
    store.write_runs([running("r4", None)])
    n = store.finish_stale_runs("nb1", RunStatus.crashed, "the kernel died", T0 + 99)
    assert n == 2
    by_id = {run.id: run for run in store.get_runs(limit=100)}
    for run_id in ("r1", "r2"):
        assert by_id[run_id].status is RunStatus.crashed
        assert (by_id[run_id].error, by_id[run_id].finished_ts) == ("the kernel died", T0 + 99)
    assert by_id["r3"].status is RunStatus.running and by_id["r4"].status is RunStatus.running
    assert by_id["done"] == done
    assert store.finish_stale_runs("nb1", RunStatus.crashed, "again", T0 + 100) == 0
    assert store.finish_stale_runs(None, RunStatus.crashed, "no owner", T0 + 100) == 1
    assert store.get_runs(owner=None)[0].status is RunStatus.crashed
    assert store.finish_stale_runs(ALL_OWNERS, RunStatus.cancelled, "all", T0 + 100) == 1
    assert all(run.status.finished for run in store.get_runs(limit=100))


def test_a_batch_of_10000_runs(stores: Stores) -> None:
    store = stores.make()
    store.add_job(make_job("busy"))
    runs = [make_run(f"busy-{i:05d}", "busy", float(i)) for i in range(2_500)]
    runs += [make_run(f"many-{i:05d}", f"job{i % 500}", float(i)) for i in range(7_500)]
    store.write_runs(runs)
    newest = store.get_runs("busy", limit=2_000)
    assert len(newest) == 1_000  # retention: the newest 1000 of 2500
    assert newest[0].id == "busy-02499" and newest[-1].id == "busy-01500"
    assert len(store.get_runs("job7", limit=100)) == 15
    assert len(store.get_runs(limit=20_000)) == 1_000 + 7_500
    # and a second batch replacing all of them
    finished = [dataclasses.replace(run, status=RunStatus.failed) for run in runs]
    store.write_runs(finished)
    assert {run.status for run in store.get_runs(limit=20_000)} == {RunStatus.failed}


# -- change detection ---------------------------------------------------------------------------


def test_change_marker_moves_on_every_job_mutation(store: JobStore) -> None:
    seen = [store.change_marker()]

    def moved() -> bool:
        seen.append(store.change_marker())
        return seen[-1] != seen[-2]

    assert store.change_marker() == seen[0]  # reading does not move it
    store.add_job(make_job("a"))
    assert moved()
    store.add_job(make_job("a", paused=True), replace_existing=True)
    assert moved()
    store.update_job(make_job("a", paused=False))
    assert moved()
    store.remove_job("a")
    assert moved()
    assert len(set(seen)) == len(seen)  # never back to an earlier value


def test_change_marker_stays_on_rejected_calls_and_bookkeeping(store: JobStore) -> None:
    store.add_job(make_job("a"))
    marker = store.change_marker()
    with pytest.raises(ConflictingJobError):
        store.add_job(make_job("a"))
    with pytest.raises(JobLookupError):
        store.update_job(make_job("b"))
    with pytest.raises(JobLookupError):
        store.remove_job("b")
    # the scheduler's own bookkeeping does not count as a change to the jobs (see the docs)
    store.set_next_run_times([("a", T0 + 5)])
    store.write_runs([make_run("r", "a")])
    store.finish_stale_runs(None, RunStatus.crashed, "x", T0)
    store.get_jobs()
    assert store.change_marker() == marker


def test_change_marker_is_seen_from_another_store_object(persistent_stores: Stores) -> None:
    writer, watcher = persistent_stores.make(), persistent_stores.make()
    before = watcher.change_marker()
    writer.add_job(make_job("a"))
    after_add = watcher.change_marker()
    assert after_add != before
    assert watcher.get_job("a") == make_job("a")
    writer.update_job(make_job("a", paused=True))
    assert watcher.change_marker() not in (before, after_add)
    watched = watcher.change_marker()
    watcher.remove_job("a")
    assert writer.change_marker() != watched


# -- persistence --------------------------------------------------------------------------------


def test_jobs_and_runs_survive_a_new_store_object(persistent_stores: Stores) -> None:
    first = persistent_stores.make()
    first.add_job(make_job("a", args=(Point(1, 2),)))
    first.write_runs([make_run("r1", "a")])
    first.close()
    second = persistent_stores.make()
    assert second.get_jobs() == [make_job("a", args=(Point(1, 2),))]
    assert ids(second.get_runs("a")) == ["r1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"args": (1, threading.Lock())}, r"'bad'.*argument 1 \(a _thread.lock\)"),
        ({"kwargs": {"ok": 1, "cb": lambda: 0}}, r"'bad'.*keyword argument 'cb' \(a function\)"),
        ({"parameters": {"when": object()}}, r"'bad'.*parameter 'when' \(a object\).*JSON"),
    ],
)
def test_values_that_cannot_be_stored_are_refused_and_change_nothing(
    persistent_stores: Stores, change: dict[str, Any], message: str
) -> None:
    store = persistent_stores.make()
    store.add_job(make_job("bad"))
    before = snapshot(store)
    calls: list[tuple[str, Callable[[], None]]] = [
        ("bad", lambda: store.add_job(make_job("bad", **change), replace_existing=True)),
        ("bad", lambda: store.update_job(make_job("bad", **change))),
        ("new", lambda: store.add_job(make_job("new", **change))),
    ]
    for name, call in calls:
        with pytest.raises(NotPicklableError, match=message.replace("'bad'", f"'{name}'")) as info:
            call()
        assert isinstance(info.value, TypeError)
        assert "\n" not in str(info.value)
    assert snapshot(store) == before


def _corrupt(store: JobStore, name: str, **values: Any) -> None:
    """Change stored columns behind the store's back, as another version of nbsched might."""
    from sqlalchemy import update

    tables = store.tables  # type: ignore[attr-defined]
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(tables.jobs).where(tables.jobs.c.name == name).values(**values))


UNREADABLE: list[tuple[dict[str, Any], str]] = [
    ({"trigger": '{"type": "from-the-future", "version": 1}'}, "Unknown trigger type"),
    ({"trigger": '{"type": "test-every", "version": 7, "seconds": 1}'}, "version 7"),
    ({"trigger": '{"type": "test-exploding", "version": 1}'}, "RuntimeError: boom"),
    ({"trigger": "not json at all"}, "not JSON"),
    ({"trigger": "[1, 2]"}, "not a JSON object"),
    ({"version": 99}, "newer nbsched"),
    ({"args": b"\x80\x05garbage"}, "arguments cannot be unpickled"),
    ({"kwargs": b"\x80\x05garbage"}, "keyword arguments cannot be unpickled"),
    ({"options": "{broken"}, "options are unreadable"),
]


@pytest.mark.parametrize(("values", "reason"), UNREADABLE)
def test_unreadable_jobs_are_returned_broken_and_never_deleted(
    persistent_stores: Stores, values: dict[str, Any], reason: str
) -> None:
    store = persistent_stores.make()
    store.add_job(make_job("bad", owner="nb"))
    store.add_job(make_job("good", owner="nb"))
    store.write_runs([make_run("r1", "bad")])
    _corrupt(store, "bad", **values)

    for reader in (store, persistent_stores.make()):  # this process, and "another" one
        bad = reader.get_job("bad")
        assert bad is not None and isinstance(bad.trigger, BrokenTrigger)
        assert reason in bad.trigger.reason
        assert bad.trigger.next_fire_time(at(0)) is None  # it never fires
        assert (bad.target, bad.owner) == ("tests.stores.helpers:target_function", "nb")
        assert names(reader.get_jobs()) == ["bad", "good"]
        assert names(reader.get_jobs("nb")) == ["bad", "good"]
        assert reader.get_job("good") == make_job("good", owner="nb")
        assert ids(reader.get_runs("bad")) == ["r1"]

    bad = store.get_job("bad")
    assert bad is not None and isinstance(bad.trigger, BrokenTrigger)
    paused = dataclasses.replace(bad, paused=True)
    if "version" in values:
        # not modified in place by an older version, which would drop what it does not know
        with pytest.raises(StateVersionError, match="'bad' was stored by a newer nbsched"):
            store.update_job(paused)
    else:
        # Writing the broken job back (e.g. pausing it) keeps what could not be read. Only
        # options that were garbage are replaced by the defaults.
        store.update_job(paused)
        again = store.get_job("bad")
        assert again is not None and again.paused
        if "options" in values:
            assert again == dataclasses.replace(make_job("bad", owner="nb"), paused=True)
        else:
            assert isinstance(again.trigger, BrokenTrigger)
            assert again.trigger.state == bad.trigger.state
    if "args" in values:
        again = store.get_job("bad")
        assert again is not None
        assert isinstance(again.args, UnreadableArgs) and again.args.data == values["args"]
        for copied in (copy.deepcopy(again.args), pickle.loads(pickle.dumps(again.args))):
            assert isinstance(copied, UnreadableArgs) and copied.data == values["args"]
    if "kwargs" in values:
        again = store.get_job("bad")
        assert again is not None
        assert isinstance(again.kwargs, UnreadableKwargs) and again.kwargs.data == values["kwargs"]
        copied = copy.deepcopy(again.kwargs)
        assert isinstance(copied, UnreadableKwargs) and copied.reason == again.kwargs.reason
    # ...and it can still be removed
    store.remove_job("bad")
    assert names(store.get_jobs()) == ["good"]


def test_jobs_read_back_own_their_parameters_and_older_rows_take_the_defaults(
    persistent_stores: Stores,
) -> None:
    # Reading options is cached by their text (thousands of jobs share one): what a job
    # owns must still be its own.
    store = persistent_stores.make()
    for name in ("a", "b"):
        store.add_job(make_job(name, parameters={"day": "mon"}, retries=2))
    a, b = store.get_job("a"), store.get_job("b")
    assert a is not None and b is not None
    assert a.parameters == b.parameters == {"day": "mon"} and a.retries == b.retries == 2
    assert a.parameters is not b.parameters
    # a row written before most options existed
    _corrupt(store, "a", options='{"retries": 3}')
    old = store.get_job("a")
    assert old is not None and not isinstance(old.trigger, BrokenTrigger)
    assert old == make_job("a", retries=3)


def test_a_broken_job_reads_fine_again_once_repaired(persistent_stores: Stores) -> None:
    store = persistent_stores.make()
    store.add_job(make_job("a"))
    good_state = '{"seconds":60.0,"start":1800000000.0,"type":"test-every","version":1}'
    _corrupt(store, "a", trigger='{"type": "test-every", "version": 9}')
    broken = store.get_job("a")
    assert broken is not None and isinstance(broken.trigger, BrokenTrigger)
    _corrupt(store, "a", trigger=good_state)
    assert store.get_job("a") == make_job("a")


# -- threads ------------------------------------------------------------------------------------


def test_concurrent_use_from_several_threads(stores: Stores) -> None:
    store = stores.make()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                store.add_job(make_job(f"t{n}-{i}", owner=f"nb{n}"))
                store.write_runs([make_run(f"t{n}-{i}-r", f"t{n}-{i}", float(i), owner=f"nb{n}")])
                store.set_next_run_times([(f"t{n}-{i}", T0 + i)])
                store.get_jobs(f"nb{n}")
                store.change_marker()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), name=f"store-test-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.get_jobs()) == 60
    assert len(store.get_runs(limit=1000)) == 60
    assert [job.next_run_time for job in store.get_jobs("nb2")][:2] == [at(0), at(1)]


# -- the real triggers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    ["every 10s", "every 1h30m", "*/5 * * * *", "every weekday at 09:30", "at 2030-12-01 09:00"],
)
def test_the_built_in_triggers_round_trip(stores: Stores, schedule: str) -> None:
    trigger = parse_trigger(schedule, timezone="Europe/Paris")
    store = stores.make()
    store.add_job(make_job("t", trigger=trigger))
    reader = stores.make() if stores.persistent else store
    got = reader.get_job("t")
    assert got is not None and not isinstance(got.trigger, BrokenTrigger)
    assert got.trigger == trigger
    assert got.trigger.next_fire_time(at(0)) == trigger.next_fire_time(at(0))
    assert got.schedule == trigger.describe()


@pytest.mark.parametrize("schedule", ["every 7s", "in 10 minutes"])
def test_relative_triggers_keep_their_anchor(stores: Stores, schedule: str) -> None:
    """A relative schedule is anchored when parsed (provisionally, until a job start moves
    it): a stored one keeps that anchor, and still moves to a job start after reading."""
    parsed_at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    trigger = parse_trigger(schedule, timezone="Europe/Paris", now=parsed_at)
    anchored = trigger.anchor(parsed_at + timedelta(hours=1))
    store = stores.make()
    store.add_job(make_job("parsed", trigger=trigger))
    store.add_job(make_job("anchored", trigger=anchored))
    reader = stores.make() if stores.persistent else store
    for name, original in (("parsed", trigger), ("anchored", anchored)):
        got = reader.get_job(name)
        assert got is not None and got.trigger.to_state() == original.to_state()
        for seconds in (-1, 0, 3.2, 7, 10.2, 600, 3600, 3603.2, 4200, 4201):
            after = parsed_at + timedelta(seconds=seconds)
            assert got.trigger.next_fire_time(after) == original.next_fire_time(after)
        job_start = parsed_at + timedelta(days=1)
        assert got.trigger.anchor(job_start).next_fire_time(job_start) == original.anchor(
            job_start
        ).next_fire_time(job_start)


def test_a_watch_of_runs_hears_another_store_objects_run_write(stores: Stores) -> None:
    """``watch(runs=True)``: a run record written through another store object is reported
    (SQLite's file watch reports every write; PostgreSQL listens on its runs channel). A
    store no other process sees cannot watch (``None``): its writes are its process's own."""
    store = stores.make()
    calls: list[None] = []
    stop = store.watch(lambda: calls.append(None), runs=True)
    if not stores.persistent:
        assert stop is None
        return
    assert stop is not None
    try:
        other = stores.make()
        if stores.kind == "postgres":  # it listens once connected, and looks then
            wait_for(lambda: calls, 10, "the look made on connecting")
        before = len(calls)
        other.write_runs([make_run("r1")])
        wait_for(lambda: len(calls) > before, 10, "the report of the run write")
    finally:
        stop()
