"""What the API refuses: requests without (or with a wrong) token, notebook paths outside the
server's root, and bad input -- each answered with a message and nothing stored."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from nbsched import Scheduler
from nbsched.jobs import CellTarget

pytestmark = pytest.mark.slow

ENDPOINTS = [
    ("GET", ("jobs",), None),
    ("POST", ("jobs",), {"notebook": "reports/daily.ipynb", "schedule": "every 1h"}),
    ("GET", ("jobs", "tick"), None),
    ("PATCH", ("jobs", "tick"), {"paused": True}),
    ("DELETE", ("jobs", "tick"), None),
    ("POST", ("jobs", "tick", "run"), None),
    ("GET", ("runs",), None),
    ("GET", ("runs", "some-id"), None),
    ("POST", ("runs", "some-id", "cancel"), None),
    ("GET", ("runs", "some-id", "notebook"), None),
    ("GET", ("status",), None),
    ("GET", ("preview",), None),
    ("GET", ("events",), None),
    ("GET", ("openapi.json",), None),
]


def _snapshot(store_user: Scheduler) -> list[tuple[str, bool, Any]]:
    return [(j.name, j.paused, j.next_ts) for j in store_user.store.get_jobs()]


@pytest.fixture
def tick(kernel_scheduler: Scheduler) -> Scheduler:
    kernel_scheduler.add_job(CellTarget("print('tick')"), "every 1h", name="tick")
    return kernel_scheduler


@pytest.mark.parametrize("header", ["", "token wrong-token"], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("method, path, body", ENDPOINTS, ids=lambda v: str(v))
async def test_without_the_token_403_and_nothing_changes(api, root, tick, method, path, body,
                                                          header):
    before = _snapshot(tick)
    code, _ = await api(method, *path, body=body, headers={"Authorization": header})
    assert code == 403
    assert _snapshot(tick) == before


@pytest.mark.parametrize(
    "notebook, words",
    [
        ("../outside.ipynb", "outside"),
        ("reports/../../outside.ipynb", "outside"),
        ("/etc/passwd.ipynb", "relative"),
        ("escape/link.ipynb", "outside"),  # a symlink out of the root
        ("reports/missing.ipynb", "No notebook"),
        ("reports/daily.py", ".ipynb"),
        ("", "notebook"),
        (5, "notebook"),
    ],
)
async def test_notebook_paths_outside_the_root_are_400(api, root, tick, tmp_path_factory,
                                                        notebook, words):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "link.ipynb").write_text((root / "reports" / "daily.ipynb").read_text())
    (root.parent / "outside.ipynb").write_text("{}")
    os.symlink(outside, root / "escape")
    before = _snapshot(tick)
    code, err = await api("POST", "jobs", body={"notebook": notebook, "schedule": "every 1h"})
    assert code == 400, err
    assert words in err["message"]
    assert _snapshot(tick) == before


@pytest.mark.parametrize(
    "body, words",
    [
        ("not json", "JSON"),
        ([1, 2], "object"),
        ({"schedule": "every 1h"}, "notebook"),
        ({"notebook": "reports/daily.ipynb"}, "schedule"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every blue moon"}, "blue moon"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "timezone": "Mars/X"},
         "Mars/X"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "timeout": -1}, "timeout"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "timeout": "5"}, "timeout"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "parameters": [1]},
         "parameters"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "name": ""}, "name"),
        ({"notebook": "reports/daily.ipynb", "schedule": "every 1h", "colour": "red"},
         "colour"),
    ],
)
async def test_bad_job_is_400_and_nothing_stored(api, root, tick, body, words):
    before = _snapshot(tick)
    code, err = await api("POST", "jobs", body=body)
    assert code == 400, err
    assert words in err["message"]
    assert _snapshot(tick) == before


async def test_errors_are_json_with_a_message(jp_fetch, root):
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbsched", "api", "jobs", "nope")
    assert info.value.code == 404
    assert info.value.response is not None
    body = json.loads(info.value.response.body)
    assert body["message"] == "No job named 'nope'"
