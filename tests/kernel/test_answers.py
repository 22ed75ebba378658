"""Every ``%schedule`` line answers, nothing is replaced silently, and mistakes name what
the user typed (in-process shell, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from nbsched import kernel
from nbsched.display import JobTable
from tests.helpers.shell import TestingShell


def line(ip: TestingShell, text: str) -> Any:
    return ip.run_line_magic("schedule", text)


def names(table: JobTable) -> list[str]:
    return [r.name for r in table.rows]


# -- comments ---------------------------------------------------------------------------------


def test_a_trailing_comment_is_ignored(ext: TestingShell) -> None:
    line(ext, "add f --every 5m  # every five minutes, in the background")
    assert kernel.current().get_job("f").trigger.describe() == "Every 5 minutes"
    assert names(line(ext, "list  # name, schedule, next run")) == ["f"]


def test_a_hash_inside_quotes_is_not_a_comment(ext: TestingShell) -> None:
    line(ext, 'add g --every 1h -p "tag=#1" --name "job #2"  # a comment')
    job = kernel.current().get_job("job #2")
    assert dict(job.kwargs) == {"tag": "#1"}


def test_a_comment_in_a_cell_with_a_line_magic(ext: TestingShell) -> None:
    ext.run_cell("%schedule add f --every 5m  # the comment\n")
    assert [j.name for j in kernel.current().get_jobs()] == ["f"]


# -- nothing is replaced silently -------------------------------------------------------------


def test_another_cell_does_not_replace_a_job(ext: TestingShell) -> None:
    ext.run_cell("%schedule add g --every 3s -p x=5", cell_id="cell-a")
    with pytest.raises(UsageError) as err:
        ext.run_cell('%schedule add g "every weekday at 9:30"', cell_id="cell-b")
    message = str(err.value)
    assert "\n" not in message
    assert "'g'" in message and "Every 3 seconds" in message and "--replace" in message
    job = kernel.current().get_job("g")
    assert job.trigger.describe() == "Every 3 seconds"
    assert dict(job.kwargs) == {"x": 5}


def test_replace_on_purpose_says_what_changed(ext: TestingShell) -> None:
    ext.run_cell("%schedule add g --every 3s -p x=5", cell_id="cell-a")
    ext.run_cell('%schedule add g "every weekday at 9:30" --replace', cell_id="cell-b")
    table = ext.user_ns["_"]
    assert isinstance(table, JobTable)
    assert table.caption.startswith("Replaced job 'g': schedule: Every 3 seconds → At 09:30")
    assert "parameters: x=5 → none" in table.caption


def test_rerunning_the_same_cell_updates_in_place_and_says_what_changed(
    ext: TestingShell,
) -> None:
    ext.run_cell("%schedule add g --every 3s -p x=5", cell_id="cell-a")
    ext.run_cell("%schedule add g --every 10s -p x=6 --timeout 30", cell_id="cell-a")
    table = ext.user_ns["_"]
    assert table.caption == (
        "Updated job 'g': schedule: Every 3 seconds → Every 10 seconds; "
        "parameters: x=5 → x=6; timeout: none → 30s"
    )
    assert [j.name for j in kernel.current().get_jobs()] == ["g"]
    ext.run_cell("%schedule add g --every 10s -p x=6 --timeout 30", cell_id="cell-a")
    assert ext.user_ns["_"].caption == "Job 'g' is unchanged"


def test_a_cell_job_name_taken_by_another_cell_is_refused(ext: TestingShell) -> None:
    ext.run_cell("%%schedule --every 1h --name tick\nprint('a')\n", cell_id="cell-a")
    with pytest.raises(UsageError, match="'tick'.*another cell.*--replace"):
        ext.run_cell("%%schedule --every 2h --name tick\nprint('b')\n", cell_id="cell-b")
    assert "print('a')" in kernel.current().get_job("tick").target


def test_an_empty_name_is_an_error(ext: TestingShell) -> None:
    with pytest.raises(UsageError, match=r"--name: Job name '' is empty"):
        line(ext, 'add f --every 5m --name ""')
    assert kernel.current().get_jobs() == []


# -- every line answers -----------------------------------------------------------------------


def test_each_line_of_a_cell_answers(ext: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    ext.run_cell(
        "%schedule add f --every 5m\n"
        "%schedule add g --every 1h --name second\n"
        "%schedule pause second\n"
    )
    out = capsys.readouterr().out
    assert "Added job 'f'" in out
    assert "Added job 'second'" in out
    assert "Paused job 'second'" in out
    assert out.index("Added job 'f'") < out.index("Added job 'second'") < out.index("Paused")


def test_a_magic_line_followed_by_code_still_answers(
    ext: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ext.run_cell("%schedule add f --every 5m\ny = 1\n")
    assert "Added job 'f'" in capsys.readouterr().out


# -- mistakes name what was typed -------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["-n", "--limit"])
def test_a_bad_count_names_the_option_typed(ext: TestingShell, spelling: str) -> None:
    with pytest.raises(UsageError, match=f"^{spelling}: expected a whole number, got 'x'"):
        line(ext, f"logs {spelling} x")


def test_a_negative_interval_says_so(ext: TestingShell) -> None:
    with pytest.raises(UsageError, match=r"--every: '-5s' is negative"):
        line(ext, "add f --every -5s")


def test_add_without_arguments_says_what_is_needed(ext: TestingShell) -> None:
    with pytest.raises(UsageError) as err:
        line(ext, "add")
    message = str(err.value)
    assert "needs what to run and when" in message
    assert "PHRASE" not in message and "required" not in message


def test_add_without_a_schedule_does_not_call_the_phrase_required(ext: TestingShell) -> None:
    with pytest.raises(UsageError) as err:
        line(ext, "add f")
    assert "PHRASE" not in str(err.value) and "give exactly one schedule" in str(err.value)


# -- list -------------------------------------------------------------------------------------


@pytest.fixture
def several(ext: TestingShell) -> TestingShell:
    line(ext, "add f --every 5m --name etl-load")
    line(ext, "add f --every 5m --name etl-clean --paused")
    line(ext, "add f --every 5m --name report")
    ext.run_cell("def gone():\n    pass\n")
    line(ext, "add gone --every 5m --name report-old")
    ext.run_cell("def broken():\n    raise ValueError('no')\n")
    line(ext, "add broken --every 5m --name failing-one")
    line(ext, "run failing-one")
    return ext


def test_list_filters_by_name(several: TestingShell) -> None:
    assert names(line(several, "list etl*")) == ["etl-clean", "etl-load"]
    assert names(line(several, "list --name 'report*'")) == ["report", "report-old"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("paused", ["etl-clean"]),
        ("failing", ["failing-one"]),
        ("active", ["etl-load", "failing-one", "report", "report-old"]),
        ("running", []),
    ],
)
def test_list_filters_by_state(several: TestingShell, state: str, expected: list[str]) -> None:
    assert names(line(several, f"list --state {state}")) == expected


def test_list_bad_state_lists_the_choices(ext: TestingShell) -> None:
    with pytest.raises(UsageError, match="invalid choice.*paused"):
        line(ext, "list --state sleeping")


def test_list_says_how_many_rows_it_hides_and_how_to_see_them(
    ext: TestingShell,
) -> None:
    ext.run_line_magic("config", "ScheduleMagics.table_limit = 2")
    try:
        for i in range(5):
            line(ext, f"add f --every 5m --name job{i}")
        table = line(ext, "list")
        assert len(table) == 2
        text = repr(table)
        assert "3 more not shown" in text
        assert "%schedule list PATTERN" in text and "table_limit" in text
    finally:
        ext.run_line_magic("config", "ScheduleMagics.table_limit = 50")
