"""Live updates (the server-sent event stream), the Prometheus metrics and the OpenAPI
description."""

from __future__ import annotations

from typing import Any

import pytest

from nbsched import Scheduler
from nbsched.server.handlers import handlers

from .conftest import until
from .events import Stream, a_kernel_run_reaches

pytestmark = pytest.mark.slow


@pytest.fixture
def hello(db_url: str, server_app: Any) -> str:
    other = Scheduler(db_url, timezone="UTC")
    other.store.open()
    other.add_job("tests.server.jobfuncs:hello", "every 1h", name="hello")
    other.add_job("tests.server.jobfuncs:boom", "every 1h", name="boom")
    other.store.close()
    server_app.scheduler.refresh_from_store()
    return "hello"


async def test_event_stream_sends_job_and_run_changes(jp_fetch, api, hello, server_app,
                                                       kernel_scheduler):
    stream = Stream(jp_fetch)
    seen = stream.seen
    await until(lambda: seen("hello"), what="the stream to open")
    await api("PATCH", "jobs", "hello", body={"paused": True})
    await until(lambda: seen("job", job_name="hello", change="paused"), what="the pause event")
    await api("POST", "jobs", "boom", "run")
    await until(lambda: seen("run-finished", job_name="boom"), what="the run event")
    finished = [d for e, d in stream.events() if e == "run-finished"][0]
    assert finished["run"]["status"] == "failed" and "boom on purpose" in finished["run"]["error"]
    # a kernel's change reaches the stream through the store
    kernel_scheduler.add_job("tests.server.jobfuncs:hello", "every 2h", name="kernel-job")
    await until(lambda: seen("jobs-changed"), what="the store change event")

    server_app.hub.close()  # server shutdown ends every stream
    response = await stream.fetch
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/event-stream"


async def test_a_run_another_process_records_reaches_the_stream_promptly(
    jp_fetch, hello, server_app, kernel_scheduler
):
    """A kernel records its runs in the store only: the stream learns of them from the
    store's watch (no polling at the sidebar's 30 s), with the run as the sidebar shows it."""
    from nbsched.jobs import CellTarget

    kernel_scheduler.add_job(CellTarget("1 / 0"), "every 1h", name="kernel-cell")
    stream = Stream(jp_fetch)
    await until(lambda: stream.seen("hello"), what="the stream to open")
    # another store object on the same file, as a kernel's scheduler writes its runs
    finished = await a_kernel_run_reaches(stream, kernel_scheduler.store, "kernel-cell")
    assert finished["run"]["id"] == "kernel-1" and finished["run"]["status"] == "failed"
    server_app.hub.close()
    await stream.fetch


async def test_metrics(jp_fetch, api, hello):
    code, data = await api("POST", "jobs", "hello", "run")
    assert code == 202

    async def counted() -> bool:
        text = (await jp_fetch("metrics")).body.decode()
        return 'nbsched_runs_total{status="succeeded"} 1.0' in text

    await until(counted, what="the run in /metrics")
    text = (await jp_fetch("metrics")).body.decode()
    for name in ("nbsched_store_faults_total", "nbsched_run_lateness_seconds_count",
                 "nbsched_runs_in_flight", "nbsched_pending_writes", "nbsched_jobs 2.0",
                 "nbsched_healthy 1.0"):
        assert name in text


async def test_openapi_describes_every_endpoint(api):
    from openapi_spec_validator import validate

    code, spec = await api("GET", "openapi.json")
    assert code == 200
    validate(spec)
    described = {path.removeprefix("/nbsched/api/") for path in spec["paths"]}
    served = {pattern.removeprefix("/nbsched/api/").replace("(?P<name>[^/]+)", "{name}")
              .replace("(?P<run_id>[^/]+)", "{id}") for pattern, _, _ in handlers(None, None)}  # type: ignore[arg-type]
    assert described == served
    methods = {
        path: {m for m in ops if m in ("get", "post", "patch", "delete")}
        for path, ops in spec["paths"].items()
    }
    assert methods["/nbsched/api/jobs"] == {"get", "post"}
    assert methods["/nbsched/api/jobs/{name}"] == {"get", "patch", "delete"}
