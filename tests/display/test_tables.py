"""nbsched.display tables: wide characters line up, times show in the job's zone, what an
update changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC

import pytest
from wcwidth import wcswidth

from nbsched import Scheduler
from nbsched.display import JobDetail, JobTable, job_changes
from nbsched.display.tables import kv_text, text_table
from nbsched.testing import FakeClock
from nbsched.triggers import parse_trigger

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a Friday


def tick() -> None:
    pass


@pytest.fixture
def sched() -> Iterator[Scheduler]:
    s = Scheduler(None, clock=FakeClock(NOW), timezone="UTC")
    try:
        yield s
    finally:
        s.shutdown()


@pytest.mark.parametrize("wide", ["🚀 rocket", "日本語の仕事", "café"])
def test_wide_characters_line_up(wide: str) -> None:
    text = text_table(["name", "state"], [[wide, "active"], ["plain", "paused"]])
    head, rule, *rows = text.splitlines()
    # the second column starts in the same terminal column on every line, under the rule's gap
    column = wcswidth(rule[: rule.index("  ") + 2])
    starts = [
        wcswidth(ln[: ln.index(w)])
        for ln, w in zip([head, *rows], ["state", "active", "paused"], strict=True)
    ]
    assert starts == [column] * 3, text


def test_wide_characters_are_cut_by_columns() -> None:
    text = text_table(["name", "x"], [["界" * 40, "y"]])
    head, _, row = text.splitlines()
    assert row.split("  ")[0].rstrip().endswith("…")
    assert wcswidth(row[: row.rindex("y")]) == wcswidth(head[: head.rindex("x")]) == 62


def test_kv_text_aligns_wide_keys() -> None:
    text = kv_text([("名前", "a"), ("name", "b")])
    assert [wcswidth(ln[: ln.rindex(" ") + 1]) for ln in text.splitlines()] == [6, 6]


def test_times_show_in_the_jobs_zone_named(sched: Scheduler) -> None:
    trigger = parse_trigger("every weekday at 09:30", timezone="Europe/Paris")
    job = sched.add_job(tick, trigger, name="paris")
    table = JobTable([job], {}, NOW, UTC)
    assert table.rows[0].next_at == "2027-01-15 09:30:00 CET"
    detail = repr(JobDetail(job, [], NOW, UTC))
    assert "09:30:00 CET" in detail


def test_times_of_a_job_without_a_zone_show_in_the_given_one(sched: Scheduler) -> None:
    job = sched.add_job(tick, "every 1h", name="hourly")
    assert JobTable([job], {}, NOW, UTC).rows[0].next_at.endswith(" UTC")


def test_job_changes(sched: Scheduler) -> None:
    old = sched.add_job(tick, "every 3s", name="j", kwargs={"x": 5})
    new = replace(old, trigger=parse_trigger("every 10s"), kwargs={}, timeout=30.0)
    assert job_changes(old, new) == [
        "schedule: Every 3 seconds → Every 10 seconds",
        "parameters: x=5 → none",
        "timeout: none → 30s",
    ]
    assert job_changes(old, old) == []
