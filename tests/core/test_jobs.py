"""``Job`` is a compact value that still behaves like the frozen dataclass it replaced."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from nbsched import IntervalTrigger
from nbsched.jobs import Job

PARIS = ZoneInfo("Europe/Paris")
WHEN = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=PARIS)


def make(name: str = "a", **options: object) -> Job:
    return Job(name=name, target="m:f", trigger=IntervalTrigger(5), **options)  # type: ignore[arg-type]


def test_defaults_and_values_read_back_as_given() -> None:
    job = make(timeout=1, retry_delay=2, next_run_time=WHEN, created_at=WHEN, owner="nb.ipynb")
    assert (job.kind, job.executor, job.args, dict(job.kwargs)) == ("callable", "thread", (), {})
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
    assert type(job.timeout) is int and type(job.retry_delay) is int
    assert job.next_run_time == WHEN and job.next_run_time.tzinfo is PARIS  # type: ignore[union-attr]
    assert job.created_at == WHEN and job.created_at.microsecond == 123456  # type: ignore[union-attr]
    assert job.next_ts == WHEN.timestamp() and job.owner == "nb.ipynb"


def test_jobs_with_the_same_options_share_one_options_object() -> None:
    a, b = make("a"), make("b")
    assert a.options is b.options
    assert make("c", timeout=1).options is not a.options
    # equal numbers of another type are not swapped for each other
    assert type(make("d", timeout=1.0).timeout) is float
    assert make("e", args=(1,)).options is not make("f", args=(1,)).options


def test_dataclass_helpers_work_on_jobs() -> None:
    job = make(args=(1, "x"), kwargs={"k": 2}, next_run_time=WHEN)
    paused = dataclasses.replace(job, paused=True)
    assert paused.paused and not job.paused
    assert dataclasses.replace(paused, paused=False) == job
    assert [f.name for f in dataclasses.fields(job)][:4] == ["name", "kind", "target", "trigger"]
    assert dataclasses.asdict(job)["kwargs"] == {"k": 2}
    assert dataclasses.is_dataclass(job)
    for clone in (pickle.loads(pickle.dumps(job)), copy.deepcopy(job), copy.copy(job)):
        assert clone == job
    assert job != make(args=(1, "x"), kwargs={"k": 3}, next_run_time=WHEN)


def test_jobs_are_frozen() -> None:
    job = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.options.timeout = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(job)


def test_repr_names_the_job_and_its_next_run() -> None:
    job = make(next_run_time=datetime(2026, 1, 1, tzinfo=UTC), paused=True)
    assert repr(job) == (
        "<Job 'a' callable='m:f' schedule='Every 5 seconds' "
        "next=2026-01-01T00:00:00+00:00 paused>"
    )
