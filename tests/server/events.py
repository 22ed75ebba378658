"""The server's event stream as the tests read it: open it, see what came, and a kernel's run
reaching it through the store."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from nbsched.abc import JobStore
from nbsched.jobs import Run, RunStatus

from .conftest import until


def parse(chunks: list[bytes]) -> list[tuple[str, Any]]:
    """The (event, data) pairs of server-sent event text."""
    found = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            found.append((fields["event"], json.loads(fields.get("data", "null"))))
    return found


class Stream:
    """``GET /nbsched/api/events``, read as it comes; ``fetch`` ends with the stream."""

    def __init__(self, jp_fetch: Any) -> None:
        self.chunks: list[bytes] = []
        self.fetch = asyncio.ensure_future(
            jp_fetch("nbsched", "api", "events", streaming_callback=self.chunks.append,
                     request_timeout=60)
        )

    def events(self) -> list[tuple[str, Any]]:
        return parse(self.chunks)

    async def seen(self, name: str, **data: Any) -> bool:
        return any(e == name and all(d.get(k) == v for k, v in data.items())
                   for e, d in self.events())


async def a_kernel_run_reaches(stream: Stream, store: JobStore, job: str) -> dict[str, Any]:
    """Write a run of ``job`` as a kernel's scheduler does (another store object, the store
    only), started then failed: both must reach ``stream`` within 5 s. Returns the
    run-finished event's data."""
    now = time.time()
    store.write_runs([Run(
        id="kernel-1", job_name=job, status=RunStatus.running, scheduled_ts=now,
        started_ts=now, owner="work/a.ipynb",
    )])
    await until(lambda: stream.seen("run-started", job_name=job, run_id="kernel-1"),
                timeout=5.0, what="the kernel's run to start on the stream")
    store.write_runs([Run(
        id="kernel-1", job_name=job, status=RunStatus.failed, scheduled_ts=now,
        started_ts=now, finished_ts=now + 0.5, error="ZeroDivisionError", owner="work/a.ipynb",
    )])
    await until(lambda: stream.seen("run-finished", job_name=job),
                timeout=5.0, what="the kernel's run to finish on the stream")
    finished: dict[str, Any] = [d for e, d in stream.events() if e == "run-finished"][-1]
    return finished
