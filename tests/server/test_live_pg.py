"""The live stream on a PostgreSQL store: a kernel's run reaches it through the store's run
notifications, not through a look a second."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from nbsched.jobs import CellTarget
from tests.stores.conftest import DEFAULT_PG_URL

from .conftest import until
from .events import Stream, a_kernel_run_reaches

pytestmark = [pytest.mark.slow, pytest.mark.external_service]


@pytest.fixture
def db_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema of this test's own (the server's store has the default table prefix)."""
    base = make_url(os.environ.get("NBSCHED_TEST_PG_URL", DEFAULT_PG_URL))
    schema = f"nbsched_live_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    monkeypatch.setenv("NBSCHED_DB_URL", url)
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


async def test_a_kernels_run_reaches_the_stream_without_polling(
    jp_fetch: Any, server_app: Any, kernel_scheduler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a look a minute at most without a report: only the run notification can be in time
    monkeypatch.setattr("nbsched.server.storelook.POLL_LOOK", 60.0)
    kernel_scheduler.add_job(CellTarget("1 / 0"), "every 1h", name="kernel-cell")
    server_app.scheduler.refresh_from_store()
    stream = Stream(jp_fetch)
    await until(lambda: stream.seen("hello"), what="the stream to open")
    await a_kernel_run_reaches(stream, kernel_scheduler.store, "kernel-cell")
    # (the server stops its scheduler after the schema is gone otherwise)
    await server_app.stop_extension()
    await stream.fetch
