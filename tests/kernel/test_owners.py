"""Which notebook a kernel is, and what it may do with other notebooks' jobs (in-process).

Another notebook's job is made here by handing one of ours over in the store (its owner
changed), as another kernel on the same store would own it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from IPython.core.error import UsageError

from nbsched import kernel
from nbsched.display import JobDetail, JobTable, RunLog
from nbsched.jobs import Run, RunStatus
from nbsched.kernel.extension import detect_owner, notebook_path
from tests.helpers.shell import OWNER, TestingShell
from tests.helpers.wait import wait_for

OTHER = "/notebooks/other.ipynb"


def line(ip: TestingShell, text: str) -> Any:
    return ip.run_line_magic("schedule", text)


def give_away(name: str, owner: str = OTHER) -> None:
    """Make this notebook's job ``name`` another notebook's, as if that one had made it."""
    sched = kernel.current()
    ran = len(sched.get_runs(name))
    # the runs it has are in the store (the scheduler writes them in the background)
    wait_for(lambda: len(sched.store.get_runs(name)) >= ran, 10, f"runs of {name} stored")
    job = sched.store.get_job(name)
    assert job is not None
    sched.store.update_job(replace(job, owner=owner))
    sched.refresh_from_store()
    assert name not in [j.name for j in sched.get_jobs()]


# -- which notebook is this -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "env", "expected"),
    [
        ({"__session__": "/nb/a.ipynb"}, {"JPY_SESSION_NAME": "/nb/b.ipynb"}, "/nb/a.ipynb"),
        ({}, {"JPY_SESSION_NAME": "work/b.ipynb"}, "work/b.ipynb"),
        ({"__vsc_ipynb_file__": "/code/c.ipynb"}, {}, "/code/c.ipynb"),
        (
            {"__vsc_ipynb_file__": "/code/c.ipynb"},
            {"JPY_SESSION_NAME": "/srv/b.ipynb"},
            "/srv/b.ipynb",
        ),
        ({"__session__": "  "}, {}, None),
        ({}, {}, None),
    ],
)
def test_notebook_path_from_each_front_end(
    shell: TestingShell,
    monkeypatch: pytest.MonkeyPatch,
    ns: dict[str, str],
    env: dict[str, str],
    expected: str | None,
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for key in ("__session__", "__vsc_ipynb_file__"):
        monkeypatch.delitem(shell.user_ns, key, raising=False)
    for key, value in ns.items():
        monkeypatch.setitem(shell.user_ns, key, value)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert notebook_path(shell) == expected
    owner = detect_owner(shell)
    assert owner == expected if expected else owner.startswith("ipython-")


def test_unknown_notebook_is_said_once_at_load(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delitem(shell.user_ns, "__session__", raising=False)
    monkeypatch.delitem(shell.user_ns, "__vsc_ipynb_file__", raising=False)
    monkeypatch.setitem(shell.config.NbschedConfig, "owner", "")
    kernel.unload(shell)
    kernel.load(shell)
    try:
        out = capsys.readouterr().out
        assert kernel.loaded().owner.startswith("ipython-")
        notice = [ln for ln in out.splitlines() if "which notebook" in ln]
        assert len(notice) == 1
        assert "belong to this kernel only" in notice[0]
        assert '%config NbschedConfig.owner = "name"' in notice[0]
        kernel.load(shell)  # loaded already: nothing more is said
        assert "which notebook" not in capsys.readouterr().out
    finally:
        kernel.unload(shell)


def test_known_notebook_says_nothing_at_load(
    shell: TestingShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(shell.config.NbschedConfig, "owner", "")
    monkeypatch.setenv("JPY_SESSION_NAME", "/nb/known.ipynb")
    kernel.unload(shell)
    kernel.load(shell)
    try:
        assert kernel.loaded().owner == "/nb/known.ipynb"
        assert "which notebook" not in capsys.readouterr().out
    finally:
        kernel.unload(shell)


# -- reading other notebooks' jobs ------------------------------------------------------------


def test_show_logs_and_list_all_read_other_notebooks_jobs(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name theirs")
    line(ext, "run theirs")
    give_away("theirs")

    detail = line(ext, "show theirs")
    assert isinstance(detail, JobDetail)
    assert detail.job.owner == OTHER
    assert [r.status for r in detail.runs] == [RunStatus.succeeded]

    logs = line(ext, "logs theirs -n 3")
    assert isinstance(logs, RunLog)
    assert "f ran" in logs.output
    assert OTHER in logs.caption

    table = line(ext, "list --all")
    row = next(r for r in table.rows if r.name == "theirs")
    assert row.owner == OTHER
    assert "succeeded" in row.last_status
    assert "theirs" not in [r.name for r in line(ext, "list").rows]


def test_other_notebooks_run_in_flight_says_since_when(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name stuck")
    give_away("stuck")
    sched = kernel.current()
    started = sched.clock.time() - 300
    sched.store.write_runs(
        [
            Run(
                id="r1",
                job_name="stuck",
                status=RunStatus.running,
                scheduled_ts=started,
                started_ts=started,
                owner=OTHER,
            )
        ]
    )
    row = next(r for r in line(ext, "list --all").rows if r.name == "stuck")
    assert row.last_status == "… running (since 5m ago)"


# -- changing them ----------------------------------------------------------------------------


def test_pause_resume_remove_another_notebooks_job(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name theirs")
    give_away("theirs")
    store = kernel.current().store

    paused = line(ext, "pause theirs")
    assert isinstance(paused, JobTable)
    assert paused.caption == (
        f"Paused 'theirs' (a job of notebook {OTHER}; its kernel picks the change up "
        "through the store)"
    )
    job = store.get_job("theirs")
    assert job is not None and job.paused and job.owner == OTHER

    resumed = line(ext, "resume theirs")
    assert resumed.caption.startswith(f"Resumed 'theirs' (a job of notebook {OTHER};")
    job = store.get_job("theirs")
    assert job is not None and not job.paused and job.next_run_time is not None

    removed = line(ext, "remove theirs")
    assert f"Removed 'theirs' (a job of notebook {OTHER};" in repr(removed)
    assert store.get_job("theirs") is None


def test_run_and_cancel_of_another_notebooks_job_say_how_to_adopt(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name theirs")
    give_away("theirs")
    for verb in ("run", "cancel"):
        with pytest.raises(UsageError, match=f"notebook {OTHER}.*%schedule adopt theirs"):
            line(ext, f"{verb} theirs")


def test_adding_a_job_named_like_another_notebooks_says_whose_it_is(ext: TestingShell) -> None:
    line(ext, "add f --every 1h")
    give_away("f")
    with pytest.raises(UsageError, match=f"'f' is a job of notebook {OTHER}.*%schedule adopt f"):
        line(ext, "add f --every 5m")
    job = kernel.current().store.get_job("f")
    assert job is not None and job.owner == OTHER and job.trigger.describe() == "Every hour"


def test_adopt_takes_a_job_over_and_binds_it(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name renamed")
    give_away("renamed", "/notebooks/old-name.ipynb")

    table = line(ext, "adopt renamed")
    assert table.caption == "Adopted job 'renamed' from notebook /notebooks/old-name.ipynb"
    sched = kernel.current()
    job = sched.get_job("renamed")
    assert job.owner == OWNER and not job.unbound
    stored = sched.store.get_job("renamed")
    assert stored is not None and stored.owner == OWNER
    assert "f ran" in line(ext, "run renamed").output


def test_adopt_of_a_function_not_defined_here_waits_unbound(ext: TestingShell) -> None:
    ext.run_cell("def only_there():\n    pass\n")
    line(ext, "add only_there --every 1h")
    give_away("only_there")
    del ext.user_ns["only_there"]
    table = line(ext, "adopt only_there")
    assert "unbound" in table.caption
    assert kernel.current().get_job("only_there").unbound


def test_adopt_mistakes(ext: TestingShell) -> None:
    line(ext, "add f --every 1h --name mine")
    assert "already" in line(ext, "adopt mine").caption
    with pytest.raises(UsageError, match="nope"):
        line(ext, "adopt nope")
    with pytest.raises(UsageError, match="adopt"):
        line(ext, "adopt")
