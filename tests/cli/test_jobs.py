"""``list``, ``runs``, ``logs``, ``pause``, ``resume`` and ``remove`` on a real SQLite file
(and once on PostgreSQL): every owner's jobs, the REST API's JSON fields, exit status 1 for
an unknown job or run, and nothing changed by a command that fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nbsched import Scheduler
from nbsched.jobs import Job, Run, RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from nbsched.triggers import parse_trigger
from tests.helpers.wait import wait_for

from .helpers import Result, snapshot

JOB_FIELDS = {
    "name", "owner", "kind", "target", "schedule", "description", "timezone", "next_run_time",
    "paused", "unbound", "executor", "last_run",
}
RUN_FIELDS = {
    "id", "job_name", "status", "scheduled_for", "started_at", "finished_at", "duration",
    "error", "output_path",
}
SAY = "tests.cli._jobs:say"


def add(url: str, name: str, *, owner: str | None = None, target: str = "os:getpid",
        schedule: str = "every 1h", args: tuple[object, ...] = ()) -> None:
    s = Scheduler(url, owner=owner, timezone="UTC")
    s.add_job(target, schedule, name=name, args=args)
    s.store.close()


def run_now(url: str, name: str, *, owner: str | None = None, times: int = 1) -> list[Run]:
    """Run a job ``times`` times through a real scheduler of its owner."""
    s = Scheduler(url, owner=owner)
    s.start()
    try:
        return [s.run_job(name) for _ in range(times)]
    finally:
        s.shutdown()


def add_notebook_run(url: str) -> Run:
    """A notebook job with one failed run, written to the store directly (as the notebook
    executor would record it)."""
    store = SQLAlchemyJobStore(url)
    now = time.time()
    trigger = parse_trigger("every 1h", timezone="UTC").anchor(datetime.fromtimestamp(now, UTC))
    store.add_job(Job(
        name="report", kind="notebook", target="/srv/notebooks/report.ipynb", trigger=trigger,
        executor="notebook", next_run_time=datetime.fromtimestamp(now + 3600, UTC),
        parameters={"day": "monday"},
    ))
    run = Run(
        id="nb-run-1", job_name="report", status=RunStatus.failed, scheduled_ts=now - 60,
        started_ts=now - 60, finished_ts=now - 55, output="loading data\n",
        error="Traceback (most recent call last):\nZeroDivisionError: division by zero",
        output_path="/srv/out/report-2026-12-07T09-00-00.ipynb",
    )
    store.write_runs([run])
    store.close()
    return run


# -- list -------------------------------------------------------------------------------------


def test_list_shows_every_owners_jobs(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    add(db_url, "hello", target=SAY, args=(str(tmp_path / "n"),))
    add(db_url, "pid", owner="work/a.ipynb", schedule="*/5 * * * *")
    add_notebook_run(db_url)
    run_now(db_url, "hello")
    result = cli("list", "--db", db_url)
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].split() == ["name", "schedule", "next", "run", "last", "run", "took", "state",
                                "notebook"]
    rows = {ln.split()[0]: ln for ln in lines[2:]}
    assert set(rows) == {"hello", "pid", "report"}
    assert "Every hour" in rows["hello"] and "✓ succeeded" in rows["hello"]
    assert "Every 5 minutes" in rows["pid"] and rows["pid"].endswith("work/a.ipynb")
    assert "✗ failed" in rows["report"] and rows["report"].endswith("/srv/notebooks/report.ipynb")
    assert all("active" in row for row in rows.values())


def test_list_of_an_empty_store(cli: Callable[..., Result], db_url: str) -> None:
    result = cli("list", "--db", db_url)
    assert (result.code, result.out) == (0, "No scheduled jobs.\n")
    assert json.loads(cli("list", "--db", db_url, "--json").out) == {"jobs": []}


def test_list_json_has_the_rest_api_fields(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    add(db_url, "hello", target=SAY, args=(str(tmp_path / "n"),))
    add(db_url, "nightly", owner="a.ipynb", schedule="every weekday at 9:30")
    nb_run = add_notebook_run(db_url)
    (ran,) = run_now(db_url, "hello")
    assert cli("pause", "nightly", "--db", db_url).code == 0
    jobs = {j["name"]: j for j in json.loads(cli("list", "--db", db_url, "--json").out)["jobs"]}
    assert all(set(j) == JOB_FIELDS for j in jobs.values())

    hello = jobs["hello"]
    assert (hello["kind"], hello["target"], hello["owner"]) == ("function", SAY, None)
    assert (hello["schedule"], hello["description"]) == ("every 1h", "Every hour")
    assert hello["paused"] is False and hello["executor"] == "thread"
    assert datetime.fromisoformat(hello["next_run_time"]).timestamp() > time.time()
    assert set(hello["last_run"]) == RUN_FIELDS
    assert hello["last_run"]["id"] == ran.id and hello["last_run"]["status"] == "succeeded"

    nightly = jobs["nightly"]
    assert (nightly["schedule"], nightly["timezone"]) == ("30 9 * * 1-5", "UTC")
    assert nightly["description"] == "At 09:30, Monday through Friday"
    assert nightly["paused"] is True and nightly["next_run_time"] is None
    assert nightly["last_run"] is None

    report = jobs["report"]
    assert (report["kind"], report["executor"]) == ("notebook", "notebook")
    assert report["last_run"]["output_path"] == nb_run.output_path
    assert report["last_run"]["status"] == "failed"
    assert report["last_run"]["duration"] == pytest.approx(5.0)


# -- runs and logs ----------------------------------------------------------------------------


def test_runs_newest_first_with_limit_and_filter(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    add(db_url, "hello", target=SAY, args=(str(tmp_path / "n"),))
    add(db_url, "other", target=SAY, args=(str(tmp_path / "m"),))
    runs = run_now(db_url, "hello", times=3) + run_now(db_url, "other")
    listed = json.loads(cli("runs", "--db", db_url, "--json").out)["runs"]
    assert [r["id"] for r in listed] == [r.id for r in reversed(runs)]
    assert all(set(r) == RUN_FIELDS for r in listed)
    hello = json.loads(cli("runs", "hello", "--limit", "2", "--db", db_url, "--json").out)
    assert [r["id"] for r in hello["runs"]] == [runs[2].id, runs[1].id]

    table = cli("runs", "hello", "--db", db_url)
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["job", "status", "started", "took", "retry", "id"]
    assert [ln.split()[-1] for ln in lines[2:]] == [runs[2].id, runs[1].id, runs[0].id]


def test_logs_shows_the_latest_run_or_the_one_asked_for(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    add(db_url, "hello", target=SAY, args=(str(tmp_path / "n"),))
    first, _, last = run_now(db_url, "hello", times=3)
    latest = cli("logs", "hello", "--db", db_url)
    assert latest.code == 0
    assert f"run {last.id}" in latest.out and "run number 3" in latest.out
    assert "run number 1" not in latest.out
    older = cli("logs", "hello", "--run", first.id, "--db", db_url)
    assert older.code == 0 and "run number 1" in older.out and "run number 3" not in older.out


def test_logs_of_a_notebook_run_names_the_executed_notebook(
    cli: Callable[..., Result], db_url: str
) -> None:
    run = add_notebook_run(db_url)
    result = cli("logs", "report", "--db", db_url)
    assert result.code == 0
    assert "✗ failed" in result.out and "loading data" in result.out
    assert "ZeroDivisionError: division by zero" in result.out
    assert result.out.splitlines()[-1] == f"executed notebook: {run.output_path}"


def test_logs_of_a_job_that_never_ran(cli: Callable[..., Result], db_url: str) -> None:
    add(db_url, "idle")
    result = cli("logs", "idle", "--db", db_url)
    assert (result.code, result.out) == (0, "Job 'idle' has not run yet.\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["logs", "hello", "--run", "no-such-run"],
         "nbsched logs: error: job 'hello' has no run 'no-such-run' (see `nbsched runs hello` "
         "for its runs)"),
        (["logs", "helo"], "nbsched logs: error: No job named 'helo' (did you mean 'hello'?)"),
        (["runs", "helo"], "nbsched runs: error: No job named 'helo' (did you mean 'hello'?)"),
        (["pause", "helo"], "nbsched pause: error: No job named 'helo' (did you mean 'hello'?)"),
        (["resume", "x"], "nbsched resume: error: No job named 'x' (known: 'hello')"),
        (["remove", "x"], "nbsched remove: error: No job named 'x' (known: 'hello')"),
    ],
)
def test_unknown_job_or_run_is_one_line_exit_1_and_changes_nothing(
    argv: list[str], message: str, cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    add(db_url, "hello", target=SAY, args=(str(tmp_path / "n"),))
    run_now(db_url, "hello")
    before = snapshot(db_url)
    result = cli(*argv, "--db", db_url)
    assert (result.code, result.out, result.err_lines) == (1, "", [message])
    assert snapshot(db_url) == before


# -- pause, resume, remove --------------------------------------------------------------------


def _stored(url: str, name: str) -> Job | None:
    store = SQLAlchemyJobStore(url)
    try:
        return store.get_job(name)
    finally:
        store.close()


def test_pause_resume_remove(cli: Callable[..., Result], db_url: str, tmp_path: Path) -> None:
    add(db_url, "hello", owner="a.ipynb", target=SAY, args=(str(tmp_path / "n"),))
    run_now(db_url, "hello", owner="a.ipynb")

    assert cli("pause", "hello", "--db", db_url).out == "Paused job 'hello'.\n"
    job = _stored(db_url, "hello")
    assert job is not None and job.paused and job.next_ts is None
    assert "paused" in cli("list", "--db", db_url).out.splitlines()[2]

    before = time.time()
    resumed = cli("resume", "hello", "--db", db_url)
    assert resumed.code == 0 and resumed.out.startswith("Resumed job 'hello'; next run in ")
    job = _stored(db_url, "hello")
    assert job is not None and not job.paused
    assert job.next_ts is not None and before < job.next_ts <= time.time() + 3600

    assert cli("remove", "hello", "--db", db_url).out == (
        "Removed job 'hello' and its run history.\n"
    )
    assert snapshot(db_url) == ([], [])


def test_a_running_scheduler_obeys_pause_from_the_command_line(
    cli: Callable[..., Result], db_url: str
) -> None:
    add(db_url, "mine", owner="a.ipynb")
    s = Scheduler(db_url, owner="a.ipynb")
    s.start()
    try:
        assert not s.get_job("mine").paused
        assert cli("pause", "mine", "--db", db_url).code == 0
        wait_for(lambda: s.get_job("mine").paused, timeout=10, what="the kernel to see the pause")
        assert cli("resume", "mine", "--db", db_url).code == 0
        wait_for(lambda: not s.get_job("mine").paused, timeout=10, what="the resume")
        assert s.get_job("mine").next_run_time is not None
    finally:
        s.shutdown()


@pytest.mark.external_service
@pytest.mark.slow
def test_list_and_pause_on_postgresql(
    program: Callable[..., Result], pg_database: str
) -> None:
    add(pg_database, "pg-job", owner="b.ipynb", schedule="every 10m")
    listed = program("list", "--db", pg_database)
    assert listed.code == 0, listed.err
    assert "pg-job" in listed.out and "Every 10 minutes" in listed.out
    paused = program("pause", "pg-job", "--db", pg_database)
    assert (paused.code, paused.out) == (0, "Paused job 'pg-job'.\n")
    job = _stored(pg_database, "pg-job")
    assert job is not None and job.paused
    as_json = json.loads(program("list", "--db", pg_database, "--json").out)
    assert [(j["name"], j["paused"], j["owner"]) for j in as_json["jobs"]] == [
        ("pg-job", True, "b.ipynb")
    ]
