"""%schedule / %%schedule in an in-process shell: parsing, errors, verbs, fuzzing.

Fast: no kernel, an in-memory store and a fake clock (nothing fires unless a test runs it).
"""

from __future__ import annotations

import re
import shlex
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from nbsched import kernel
from nbsched.display import HelpText, JobDetail, JobTable, RunLog, StatusView
from nbsched.jobs import CellTarget, Run, RunStatus, default_job_name
from nbsched.kernel.config import NbschedConfig
from nbsched.kernel.parsing import HELP, VERBS
from nbsched.testing import FakeClock
from tests.helpers.shell import OWNER, TestingShell
from tests.helpers.wait import wait_for


def line(ip: TestingShell, text: str) -> Any:
    return ip.run_line_magic("schedule", text)


def cell(ip: TestingShell, text: str, body: str) -> Any:
    return ip.run_cell_magic("schedule", text, body)


def names(ip: TestingShell) -> list[str]:
    return [j.name for j in kernel.current().get_jobs()]


# -- loading ----------------------------------------------------------------------------------


def test_not_loaded_is_a_usage_error(shell: TestingShell) -> None:
    kernel.unload(shell)
    with pytest.raises(UsageError, match="not loaded.*%load_ext nbsched"):
        kernel.current()


def test_load_twice_is_a_noop(ext: TestingShell) -> None:
    sched = kernel.current()
    kernel.load(ext)
    assert kernel.current() is sched
    assert sum(isinstance(c, NbschedConfig) for c in ext.configurables) == 1


def test_config_is_reachable_with_percent_config(ext: TestingShell) -> None:
    ext.run_line_magic("config", "NbschedConfig.max_workers = 3")
    cfg = next(c for c in ext.configurables if isinstance(c, NbschedConfig))
    assert cfg.max_workers == 3
    assert kernel.loaded().owner == OWNER


def test_unload_removes_hooks_and_config(ext: TestingShell) -> None:
    n_post = len(ext.events.callbacks["post_run_cell"])
    kernel.unload(ext)
    assert len(ext.events.callbacks["post_run_cell"]) == n_post - 1
    assert not any(isinstance(c, NbschedConfig) for c in ext.configurables)
    with pytest.raises(UsageError, match="not loaded"):
        line(ext, "list")


def test_bad_store_url_is_a_usage_error(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel.unload(shell)
    monkeypatch.setenv("NBSCHED_DB_URL", "nosuchdb://nowhere")
    with pytest.raises(UsageError, match="nbsched could not start.*nosuchdb"):
        kernel.load(shell)
    with pytest.raises(UsageError, match="not loaded"):
        kernel.current()


# -- adding jobs ------------------------------------------------------------------------------


def test_add_function_every(ext: TestingShell) -> None:
    table = line(ext, "add f --every 10s")
    assert isinstance(table, JobTable)
    assert "Added job 'f'" in repr(table)
    job = kernel.current().get_job("f")
    assert job.target == "__main__:f"
    assert job.owner == OWNER
    assert not job.unbound


def test_add_with_options(ext: TestingShell) -> None:
    line(
        ext,
        "add g --every 1h30m --name hourly --timeout 2m --max-instances 2 "
        "--misfire-grace 30 --no-coalesce --retries 3 --retry-delay 5s -p n=3 -p who=bob",
    )
    job = kernel.current().get_job("hourly")
    assert job.timeout == 120
    assert job.max_instances == 2
    assert job.misfire_grace_time == 30
    assert job.coalesce is False
    assert (job.retries, job.retry_delay) == (3, 5)
    assert dict(job.kwargs) == {"n": 3, "who": "bob"}


@pytest.mark.parametrize(
    "when",
    [
        '--cron "*/5 * * * *"',
        '"every weekday at 09:30"',
        "every 5 minutes",
        '--at "2030-12-01 09:00"',
        '--every 5m --tz "Europe/Paris"',
    ],
)
def test_add_schedules(ext: TestingShell, when: str) -> None:
    line(ext, f"add f {when}")
    assert kernel.current().get_job("f").schedule


def test_add_importable_function_binds_by_reference(ext: TestingShell) -> None:
    ext.run_cell("import json")
    line(ext, "add json.dumps --every 1h")
    assert kernel.current().get_job("dumps").target == "json:dumps"


def test_readding_updates_in_place(ext: TestingShell) -> None:
    line(ext, "add f --every 10s")
    table = line(ext, "add f --every 20s")
    assert "Updated job 'f'" in repr(table)
    assert names(ext) == ["f"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("add f", "exactly one schedule"),
        ("add f --every 10s --cron '* * * * *'", "exactly one schedule.*--every and --cron"),
        ("add f --every 10s 'every day'", "exactly one schedule"),
        ("add fx --every 10s", "nothing named 'fx'.*did you mean 'f'"),
        ("add x --every 10s", "is a int, not a function"),
        ("add f --every 10s --evry 3", "unrecognized arguments: --evry.*did you mean '--every'"),
        ("add f --every 10s --tz Europe/Pariss", "--tz: Unknown time zone.*did you mean 'Europe/Paris'"),
        ("add f --every 10s --timeout -5", "--timeout"),
        ("add f --every 10s --timeout abc", "--timeout: Cannot read duration 'abc'; use seconds"),
        ("add f --every 10s --max-instances 0", "--max-instances"),
        ("add f --every 10s --retry-delay 5", "--retry-delay needs --retries"),
        ("add f --every 10s -p nokey", "KEY=VALUE"),
        ("add f --every 10s --executor fork", "invalid choice"),
        ("add f --every 10s --name ' '", "--name: Job name ' ' is empty; a job name is"),
        ("add missing.ipynb --every 10s", "No notebook at"),
        ("lsit", "unknown command 'lsit'.*did you mean 'list'"),
        ("--every 10s", "needs a command first.*%%schedule"),
        ("add f --every 'unbalanced", "No closing quotation"),
        ("show nope", "No job named 'nope'"),
        ("pause", "the following arguments are required: NAME"),
    ],
)
def test_mistakes_are_one_line_usage_errors(ext: TestingShell, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        line(ext, text)
    assert type(info.value) is UsageError  # ipython#14024: subclasses print a traceback
    assert "\n" not in str(info.value)
    assert names(ext) == []


def test_bad_trigger_text_is_a_usage_error(ext: TestingShell) -> None:
    with pytest.raises(UsageError):
        line(ext, "add f --every banana")
    with pytest.raises(UsageError):
        line(ext, "add f --cron '99 * * * *'")
    with pytest.raises(UsageError, match="--cron"):
        line(ext, "add f --cron 10s")


def test_job_name_did_you_mean(ext: TestingShell) -> None:
    line(ext, "add f --every 10s --name refresh")
    with pytest.raises(UsageError, match="did you mean 'refresh'"):
        line(ext, "pause refrsh")


def test_unknown_option_of_other_verbs(ext: TestingShell) -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --al.*did you mean '--all'"):
        line(ext, "list --al")


# -- cell jobs --------------------------------------------------------------------------------


def test_cell_job_identity_by_name(ext: TestingShell) -> None:
    cell(ext, "--every 10s --name tick", "print('a')\n")
    table = cell(ext, "--every 20s --name tick", "print('b')\n")
    assert "Updated job 'tick'" in repr(table)
    job = kernel.current().get_job("tick")
    assert job.kind == "cell" and "print('b')" in job.target
    assert names(ext) == ["tick"]


def test_cell_job_identity_by_cell_id(ext: TestingShell) -> None:
    ext.run_cell("%%schedule --every 10s\nprint('a')\n", cell_id="cell-1")
    ext.run_cell("%%schedule --every 10s\nprint('b, edited')\n", cell_id="cell-1")
    ext.run_cell("%%schedule --every 10s\nprint('a')\n", cell_id="cell-2")
    jobs = kernel.current().get_jobs()
    assert len(jobs) == 2
    assert sorted("edited" in j.target for j in jobs) == [False, True]


def test_cell_job_identity_by_source(ext: TestingShell) -> None:
    cell(ext, "--every 10s", "print('same')\n")
    cell(ext, "--every 30s", "print('same')\n")
    assert len(names(ext)) == 1
    cell(ext, "--every 10s", "print('other')\n")
    assert len(names(ext)) == 2


@pytest.mark.parametrize(
    "api_source", ["print('same cell')\n", "print('same cell')", "\nprint('same cell')\n\n"]
)
def test_cell_job_gets_the_same_default_name_through_the_api(
    ext: TestingShell, api_source: str
) -> None:
    """``%%schedule`` and ``Scheduler.add_job(CellTarget(...))`` name the same cell alike
    (surrounding blank lines aside), so either can update the job the other made."""
    magic_name = cell(ext, "--every 1h", "print('same cell')\n").rows[0].name
    sched = kernel.current()
    sched.remove_job(magic_name)
    api_job = sched.add_job(CellTarget(api_source), "every 1h")
    assert api_job.name == magic_name
    assert magic_name.startswith("cell-")
    # ... and the magic updates the job the API made, instead of adding a second one
    assert "Updated job" in repr(cell(ext, "--every 2h", "print('same cell')\n"))
    assert names(ext) == [magic_name]


def test_default_names_depend_on_the_notebook(ext: TestingShell) -> None:
    name = cell(ext, "--every 1h", "print('x')\n").rows[0].name
    assert default_job_name("cell", "print('x')\n", owner=OWNER) == name
    assert default_job_name("cell", "print('x')\n", owner="/other.ipynb") != name
    assert default_job_name("cell", "print('x')\n", owner=OWNER, cell_id="c1") != name


@pytest.mark.parametrize(
    ("text", "body", "message"),
    [
        ("--every 10s", "def (:\n", "syntax error on line 1"),
        ("--every 10s", "!ls\n", "plain Python"),
        ("--every 10s", "   \n", "cell is empty"),
        ("--every 10s --executor process", "x = 1\n", "only in threads"),
        ("list", "x = 1\n", "use the line magic"),
        ("", "x = 1\n", "exactly one schedule"),
    ],
)
def test_cell_job_mistakes(ext: TestingShell, text: str, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cell(ext, text, body)
    assert names(ext) == []


def test_cell_job_runs_in_user_namespace(ext: TestingShell) -> None:
    ext.user_ns["counter"] = 0
    cell(ext, "--every 1h --name bump", "counter += 1\nprint('bumped', counter)\n")
    log = line(ext, "run bump")
    assert isinstance(log, RunLog)
    assert log.runs[0].status.value == "succeeded"
    assert ext.user_ns["counter"] == 1
    assert "bumped 1" in log.output
    assert "bumped 1" in repr(line(ext, "logs bump"))


def test_failing_cell_job_shows_its_traceback(ext: TestingShell) -> None:
    cell(ext, "--every 1h --name boom", "x = 1\nraise ValueError('kaput')\n")
    log = line(ext, "run boom")
    run = log.runs[0]
    assert run.status.value == "failed"
    assert "kaput" in (run.error or "")
    assert "raise ValueError('kaput')" in (run.error or "")  # linecache shows the source line


# -- the other verbs --------------------------------------------------------------------------


def test_list_show_pause_resume_remove(ext: TestingShell) -> None:
    line(ext, "add f --every 10s")
    line(ext, "run f")
    table = line(ext, "list")
    assert [r.name for r in table.rows] == ["f"]
    row = table.rows[0]
    assert row.schedule and row.next_in == "in 10s" and row.last_status.endswith("succeeded")
    assert re.fullmatch(r"[\d.]+m?s", row.last_duration), row.last_duration  # "120ms", "3.4s"
    assert "<table>" in table._repr_html_()
    assert isinstance(line(ext, ""), JobTable)

    detail = line(ext, "show f")
    assert isinstance(detail, JobDetail)
    assert "__main__:f" in repr(detail) and "succeeded" in repr(detail)

    assert line(ext, "pause f").rows[0].state == "paused"
    assert kernel.current().get_job("f").paused
    assert line(ext, "resume f").rows[0].state == "active"
    assert "Removed job 'f'" in repr(line(ext, "remove f"))
    assert names(ext) == []


def test_unbound_function_job_after_reload(
    ext: TestingShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, clock: Any
) -> None:
    monkeypatch.setenv("NBSCHED_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    kernel.unload(ext)
    kernel.load(ext, clock=clock)
    ext.run_cell("def later():\n    print('later ran')\n")
    line(ext, "add later --every 1h")
    # "Restart": the scheduler goes, the function is forgotten, the store stays.
    kernel.unload(ext)
    del ext.user_ns["later"]
    kernel.load(ext, clock=clock)
    assert line(ext, "list").rows[0].state == "unbound"
    assert "unbound" in repr(line(ext, "list"))
    with pytest.raises(UsageError, match="unbound"):
        line(ext, "run later")
    # Running the defining cell again binds it (post_run_cell hook).
    ext.run_cell("def later():\n    print('later ran again')\n")
    assert line(ext, "list").rows[0].state == "active"
    assert "later ran again" in line(ext, "run later").output


def test_status_panel_help(ext: TestingShell) -> None:
    status = line(ext, "status")
    assert isinstance(status, StatusView)
    text = repr(status)
    assert "running" in text and OWNER in text and "job output" in text
    panel = line(ext, "panel")  # the live widget panel, the same one when shown again
    assert type(panel).__name__ == "SchedulerPanel" and line(ext, "panel") is panel
    for text in ("--help", "help", "-h"):
        assert line(ext, text).text == HELP
    assert "--every" in line(ext, "add --help").text
    assert "%schedule pause" in line(ext, "help pause").text
    assert isinstance(cell(ext, "--help", "x = 1\n"), HelpText)
    assert names(ext) == []


def test_question_mark_help_shows_everything(ext: TestingShell) -> None:
    doc = ext.find_line_magic("schedule").__doc__
    assert doc == HELP
    for verb in VERBS:
        if verb not in ("start",):
            assert verb in doc
    assert "%%schedule --every 10s" in doc


def test_logs_and_cancel_without_runs(ext: TestingShell) -> None:
    line(ext, "add f --every 10s")
    assert "No runs yet" in repr(line(ext, "logs f"))
    assert "no run in flight" in repr(line(ext, "cancel f"))
    assert "No runs yet" in repr(line(ext, "logs"))


def test_logs_show_what_a_running_run_printed_so_far(ext: TestingShell, clock: FakeClock) -> None:
    go = threading.Event()
    ext.user_ns["go"] = go
    ext.run_cell("def waiter():\n    print('halfway there')\n    go.wait(30)\n    print('done')\n")
    sched = kernel.current()

    def running() -> list[Run]:
        return [r for r in sched.get_runs("waiter") if r.status is RunStatus.running]

    try:
        line(ext, "add waiter --every 1h")
        clock.advance(3600)
        wait_for(lambda: running() and sched.run_output(running()[0].id), 10, "the run")
        for log in (line(ext, "logs waiter"), line(ext, "logs")):
            assert log.runs[0].status is RunStatus.running
            assert log.output == "halfway there\n"
            assert "halfway there" in repr(log) and "halfway there" in log._repr_html_()
    finally:
        go.set()
        ext.user_ns.pop("waiter", None)
    wait_for(lambda: not running(), 10, "the run to end")
    assert line(ext, "logs waiter").output == "halfway there\ndone\n"


def test_no_variable_expansion(ext: TestingShell) -> None:
    ext.user_ns["n"] = "expanded"
    line(ext, "add f --every 10s --name {n}")
    assert names(ext) == ["{n}"]


# -- fuzzing ----------------------------------------------------------------------------------

_WORDS = [
    *VERBS,
    "lst",
    "pasue",
    "--every",
    "--cron",
    "--at",
    "--tz",
    "--name",
    "--executor",
    "--timeout",
    "--max-instances",
    "--misfire-grace",
    "--no-coalesce",
    "--retries",
    "--retry-delay",
    "-p",
    "--all",
    "-a",
    "-n",
    "--limit",
    "--help",
    "--",
    "f",
    "g",
    "x",
    "nope",
    "os.path:join",
    "nomod:nofunc",
    "x.ipynb",
    "10s",
    "5m",
    "0s",
    "1h30m",
    "-1",
    "0",
    "3",
    "1e999",
    "nan",
    "*/5 * * * *",
    "99 * * * *",
    "every weekday at 09:30",
    "in 10 minutes",
    "2030-01-01 09:00",
    "2001-01-01",
    "Europe/Paris",
    "Mars/Base",
    "thread",
    "process",
    "a=1",
    "b=[1,",
    "=",
    "tick",
    '"',
    "'",
    "\\",
    "{x}",
    "$x",
    "é",
]


def _snapshot() -> tuple[Any, ...]:
    sched = kernel.current()
    jobs = tuple(
        (j.name, j.kind, j.target, j.paused, j.schedule, j.timeout, j.max_instances)
        for j in sched.store.get_jobs()
    )
    runs = tuple(r.id for r in sched.store.get_runs(limit=1000))
    return jobs, runs


_lines = st.one_of(
    st.lists(st.sampled_from(_WORDS), max_size=7).map(" ".join),
    st.lists(st.sampled_from(_WORDS), max_size=7).map(shlex.join),
    st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=8)), max_size=6).map(" ".join),
    st.text(max_size=30),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_lines, as_cell=st.booleans())
@example(text="add f --every 10s --executor process", as_cell=False)
@example(text="add f --at 2001-01-01", as_cell=False)
@example(text="add nomod:nofunc --every 10s", as_cell=False)
@example(text="add os.path:join --every 10s --name tick", as_cell=False)
@example(text="run tick", as_cell=False)
@example(text="--name tick --every 5m", as_cell=True)
@example(text="--every 0s", as_cell=True)
@example(text="add f --cron '*/0 * * * *'", as_cell=False)
def test_fuzz_every_line_gives_a_result_or_a_usage_error(
    ext: TestingShell, text: str, as_cell: bool
) -> None:
    sched = kernel.current()
    for job in sched.get_jobs():
        sched.remove_job(job.name)
    line(ext, "add f --every 10s --name tick")
    before = _snapshot()
    try:
        if as_cell:
            result = cell(ext, text, "y = 1\n")
        else:
            result = line(ext, text)
    except UsageError as exc:
        assert type(exc) is UsageError
        assert "\n" not in str(exc), str(exc)
        assert _snapshot() == before, f"rejected line {text!r} changed the store"
    else:
        assert result is not None
        assert repr(result)
        if hasattr(result, "_repr_html_"):
            assert result._repr_html_()


def test_list_all_shows_the_notebook_column(ext: TestingShell) -> None:
    line(ext, "add f --every 10s")
    table = line(ext, "list --all")
    assert table.show_owner and table.rows[0].owner == OWNER
    assert "notebook" in repr(table) and OWNER in table._repr_html_()


def test_table_limit_is_configurable(ext: TestingShell) -> None:
    line(ext, "add f --every 10s")
    line(ext, "add g --every 10s")
    ext.run_line_magic("config", "ScheduleMagics.table_limit = 1")
    try:
        table = line(ext, "list")
        assert len(table) == 1 and table.more == 1
        assert "1 more" in repr(table)
    finally:
        ext.run_line_magic("config", "ScheduleMagics.table_limit = 50")


def test_cancel_a_run_in_flight(ext: TestingShell) -> None:
    import threading

    started, release = threading.Event(), threading.Event()
    ext.user_ns.update(started=started, release=release)
    cell(ext, "--every 1h --name spin", "started.set()\nrelease.wait(30)\n")
    sched = kernel.current()
    runner = threading.Thread(target=sched.run_job, args=("spin",), name="test-runner")
    runner.start()
    try:
        assert started.wait(10)
        log = line(ext, "cancel spin")
        assert isinstance(log, RunLog) and log.runs[0].status.value == "cancelled"
    finally:
        release.set()
        runner.join(10)
    assert "no run in flight" in repr(line(ext, "cancel spin"))


def test_process_executor_function(ext: TestingShell) -> None:
    ext.run_cell("def square():\n    print(7 * 7)\n")
    line(ext, "add square --every 1h --executor process")
    assert kernel.current().get_job("square").executor == "process"
    log = line(ext, "run square")
    assert log.runs[0].status.value == "succeeded", log
    assert "49" in log.output
