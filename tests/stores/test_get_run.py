"""``JobStore.get_run``: one run by id, on every store (the REST API's ``runs/{id}``)."""

from __future__ import annotations

from .conftest import Stores
from .helpers import make_job, make_run


def test_get_run_by_id(stores: Stores) -> None:
    store = stores.make()
    store.add_job(make_job("a"))
    store.write_runs([make_run("r1", "a", 1.0, output="one"), make_run("r2", "a", 2.0)])
    found = store.get_run("r1")
    assert found is not None and found.id == "r1" and found.output == "one"
    assert store.get_run("nope") is None
