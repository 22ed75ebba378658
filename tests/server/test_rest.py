"""The REST API (DESIGN's table) against a real Jupyter server with the extension, on a real
SQLite store shared with a "kernel" (a scheduler with an owner, as a kernel has)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from nbsched import Scheduler
from nbsched.jobs import CellTarget

from .conftest import until

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel_jobs(kernel_scheduler: Scheduler) -> Scheduler:
    kernel_scheduler.add_job(CellTarget("print('tick')"), "every 1h", name="tick")
    kernel_scheduler.add_job("tests.server.jobfuncs:hello", "*/5 * * * *", name="greet")
    return kernel_scheduler


@pytest.fixture
def server_job(db_url: str, server_app: Any) -> str:
    """A ``module:function`` job made outside a kernel (owner None): the server serves it."""
    other = Scheduler(db_url, timezone="UTC")
    other.store.open()
    other.add_job("tests.server.jobfuncs:hello", "every 1h", name="hello")
    other.store.close()
    server_app.scheduler.refresh_from_store()
    return "hello"


async def test_jobs_lists_every_owner(api, kernel_jobs):
    code, data = await api("GET", "jobs")
    assert code == 200
    jobs = {job["name"]: job for job in data["jobs"]}
    assert set(jobs) == {"greet", "tick"}
    tick, greet = jobs["tick"], jobs["greet"]
    assert tick["kind"] == "cell" and tick["owner"] == "work/a.ipynb"
    assert greet["kind"] == "function" and greet["target"] == "tests.server.jobfuncs:hello"
    assert greet["schedule"] == "*/5 * * * *" and greet["description"] == "Every 5 minutes"
    assert greet["timezone"] == "UTC"
    assert datetime.fromisoformat(greet["next_run_time"]).minute % 5 == 0
    for job in jobs.values():
        assert {"name", "owner", "kind", "target", "schedule", "description", "timezone",
                "next_run_time", "paused", "unbound", "executor", "last_run"} <= set(job)
        assert job["paused"] is False and job["last_run"] is None


async def test_get_one_job_and_unknown(api, kernel_jobs):
    code, job = await api("GET", "jobs", "tick")
    assert code == 200 and job["name"] == "tick" and job["lab_path"] == "work/a.ipynb"
    code, err = await api("GET", "jobs", "nope")
    assert code == 404 and "nope" in err["message"]


async def test_a_name_with_a_slash_is_percent_encoded(
    api, kernel_scheduler, http_server_client, jp_base_url, jp_auth_header
):
    kernel_scheduler.add_job(CellTarget("print('x')"), "every 1h", name="team/report")
    # (jp_fetch would escape the % again: the raw URL, as the browser sends it)
    url = f"{jp_base_url.rstrip('/')}/nbsched/api/jobs/team%2Freport"
    response = await http_server_client.fetch(url, headers=jp_auth_header)
    assert response.code == 200 and json.loads(response.body)["name"] == "team/report"


async def test_pause_and_resume_a_kernels_job_through_the_store(api, kernel_jobs):
    code, job = await api("PATCH", "jobs", "tick", body={"paused": True})
    assert code == 200 and job["paused"] is True and job["next_run_time"] is None
    stored = kernel_jobs.store.get_job("tick")
    assert stored is not None and stored.paused and stored.next_run_time is None
    code, job = await api("PATCH", "jobs", "tick", body={"paused": False})
    assert code == 200 and job["paused"] is False and job["next_run_time"] is not None
    stored = kernel_jobs.store.get_job("tick")
    assert stored is not None and not stored.paused and stored.next_run_time is not None


@pytest.mark.parametrize("body", [{}, {"paused": "yes"}, {"paused": True, "x": 1}, "[]", "{"])
async def test_patch_bad_body_is_400_and_changes_nothing(api, kernel_jobs, body):
    code, err = await api("PATCH", "jobs", "tick", body=body)
    assert code == 400 and err["message"]
    stored = kernel_jobs.store.get_job("tick")
    assert stored is not None and not stored.paused


async def test_patch_unknown_job_is_404(api, kernel_jobs):
    code, err = await api("PATCH", "jobs", "nope", body={"paused": True})
    assert code == 404 and "nope" in err["message"]


async def test_pause_a_served_job(api, server_job, server_app):
    code, job = await api("PATCH", "jobs", server_job, body={"paused": True})
    assert code == 200 and job["paused"] is True
    assert server_app.scheduler.get_job(server_job).paused


async def test_delete(api, kernel_jobs, server_job, server_app):
    code, body = await api("DELETE", "jobs", "tick")
    assert code == 204 and body is None
    assert kernel_jobs.store.get_job("tick") is None
    code, _ = await api("DELETE", "jobs", server_job)
    assert code == 204
    assert server_app.scheduler.store.get_job(server_job) is None
    code, err = await api("DELETE", "jobs", "tick")
    assert code == 404 and "tick" in err["message"]


async def test_run_now_and_the_run_with_its_output(api, server_job):
    code, data = await api("POST", "jobs", server_job, "run")
    assert code == 202
    run_id = data["run_id"]

    async def finished() -> bool:
        code, run = await api("GET", "runs", run_id)
        return code == 200 and run["status"] != "running"

    await until(finished, what="the run to finish")
    code, run = await api("GET", "runs", run_id)
    assert run["status"] == "succeeded", run
    assert "hello from the server's scheduler" in run["output"]
    assert run["job_name"] == server_job and run["duration"] >= 0
    assert {"id", "job_name", "status", "scheduled_for", "started_at", "finished_at",
            "duration", "error", "output_path"} <= set(run)
    code, data = await api("GET", "runs", params={"job": server_job, "limit": "5"})
    assert code == 200 and [r["id"] for r in data["runs"]] == [run_id]
    assert "output" not in data["runs"][0]
    code, job = await api("GET", "jobs", server_job)
    assert job["last_run"]["id"] == run_id and job["last_run"]["status"] == "succeeded"


async def test_run_now_of_a_kernels_job_is_409(api, kernel_jobs):
    code, err = await api("POST", "jobs", "tick", "run")
    assert code == 409 and "work/a.ipynb" in err["message"]
    assert kernel_jobs.store.get_runs("tick") == []
    code, err = await api("POST", "jobs", "nope", "run")
    assert code == 404


async def test_cancel_a_run(api, db_url, server_app):
    from . import jobfuncs

    jobfuncs.release.clear()
    other = Scheduler(db_url, timezone="UTC")
    other.store.open()
    other.add_job("tests.server.jobfuncs:wait_here", "every 1h", name="slow")
    other.store.close()
    server_app.scheduler.refresh_from_store()
    try:
        code, data = await api("POST", "jobs", "slow", "run")
        assert code == 202
        run_id = data["run_id"]

        async def started() -> bool:
            code, run = await api("GET", "runs", run_id)
            return code == 200 and run["status"] == "running"

        await until(started, what="the run to start")
        code, _ = await api("POST", "runs", run_id, "cancel")
        assert code == 202
        code, run = await api("GET", "runs", run_id)
        assert run["status"] == "cancelled"
        code, err = await api("POST", "runs", run_id, "cancel")
        assert code == 409 and "not running" in err["message"]
    finally:
        jobfuncs.release.set()
    code, err = await api("POST", "runs", "no-such-run", "cancel")
    assert code == 404
    code, err = await api("GET", "runs", "no-such-run")
    assert code == 404 and "no-such-run" in err["message"]


@pytest.mark.parametrize("params", [{"limit": "x"}, {"limit": "0"}, {"limit": "100000"}])
async def test_runs_bad_limit_is_400(api, params):
    code, err = await api("GET", "runs", params=params)
    assert code == 400 and "limit" in err["message"]


async def test_runs_of_unknown_job_is_404(api):
    code, err = await api("GET", "runs", params={"job": "nope"})
    assert code == 404


async def test_status(api):
    code, data = await api("GET", "status")
    assert code == 200
    assert data["healthy"] is True and data["error"] is None
    assert len(data["schedulers"]) == 1 and data["schedulers"][0]["running"] is True


async def test_preview(api):
    code, data = await api(
        "GET", "preview", params={"schedule": "every day at 9:00", "timezone": "Europe/Paris"}
    )
    assert code == 200, data
    assert data["description"] == "At 09:00" and data["timezone"] == "Europe/Paris"
    times = [datetime.fromisoformat(t) for t in data["next"]]
    assert len(times) == 5 and times == sorted(times)
    assert all((t.hour, t.minute) == (9, 0) for t in times)
    assert all(t.utcoffset() is not None for t in times)


@pytest.mark.parametrize(
    "params, words",
    [
        ({"schedule": "every blue moon"}, "schedule"),
        ({"schedule": "*/5 * * *"}, ""),
        ({"schedule": "daily at 25:00"}, "25"),
        ({"schedule": "every day at 9:00", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"schedule": "at 2001-01-01 09:00"}, "never fires"),
        ({}, "schedule"),
    ],
)
async def test_preview_bad_schedule_is_400(api, params, words):
    code, err = await api("GET", "preview", params=params)
    assert code == 400 and err["message"] and words in err["message"]


async def test_server_shutdown_stops_the_scheduler(server_app):
    scheduler = server_app.scheduler
    assert scheduler.running
    await server_app.stop_extension()
    assert not scheduler.running
