"""nbsched in real kernels (ipykernel 7 and 6): loading, magics, restarts, outside changes.

One kernel per kernel generation for the whole module (starting kernels is the slow part).
Each test stands on its own: it loads nbsched first (a no-op when it is loaded), uses job
names no other test uses, and removes its jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nbsched.abc import ALL_OWNERS
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.kernels import KernelHarness, Kernels
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def store(kernel: KernelHarness) -> Iterator[SQLAlchemyJobStore]:
    """The kernel's SQLite store, opened from the test process (another process)."""
    st = SQLAlchemyJobStore(kernel.db_url)
    st.open()
    try:
        yield st
    finally:
        st.close()


def loop_threads(k: KernelHarness) -> int:
    return int(
        k.eval(
            "sum(t.name == 'nbsched-loop' and t.is_alive() for t in __import__('threading').enumerate())"
        )
    )


def test_load_twice_then_reload(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("import nbsched.kernel; first = id(nbsched.kernel.current())")
    res = kernel.run("%load_ext nbsched")
    assert "already loaded" in res.stdout + res.text
    assert kernel.eval("id(nbsched.kernel.current()) == first") is True
    assert loop_threads(kernel) == 1

    kernel.run("old = nbsched.kernel.current()")
    kernel.run("%reload_ext nbsched")
    assert kernel.eval("id(nbsched.kernel.current()) != first") is True
    assert kernel.eval("old.running") is False
    wait_for(lambda: loop_threads(kernel) == 1, what="one scheduler loop after reload")

    kernel.run("%config NbschedConfig.max_workers = 3")
    assert kernel.eval("nbsched.kernel.loaded().config.max_workers") == 3


def test_unload_leaves_harmless_magics(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("%unload_ext nbsched")
    res = kernel.run("%schedule list", check=False)
    assert res.ename == "UsageError"
    assert "not loaded" in res.evalue
    wait_for(lambda: loop_threads(kernel) == 0, what="the loop thread to end after unload")
    kernel.run("%load_ext nbsched")
    assert loop_threads(kernel) == 1


def test_owner_is_the_notebook_path(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    assert kernel.eval("nbsched.kernel.loaded().owner") == kernel.owner
    status = kernel.run("%schedule status")
    assert kernel.owner in status.text
    assert "running, healthy" in status.text
    assert "<table>" in status.html[0]


def test_usage_error_is_one_line_without_traceback(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    res = kernel.run("%schedule lsit", check=False)
    assert res.ename == "UsageError"
    assert "did you mean 'list'" in res.evalue
    assert "Traceback" not in res.stderr + res.stdout


def test_cell_job_rerun_updates_in_place(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    cell_id = str(uuid.uuid4())
    kernel.run("%%schedule --every 1h\nprint('version 1')\n", cell_id=cell_id)
    res = kernel.run("%%schedule --every 2h\nprint('version 2')\n", cell_id=cell_id)
    assert "Updated job" in res.text
    jobs = kernel.eval(
        "[j.target for j in nbsched.kernel.current().get_jobs() if j.kind == 'cell' "
        "and 'version' in j.target]"
    )
    assert jobs == ["print('version 2')\n"]
    kernel.run("%schedule remove " + res.text.split("'")[1])


def test_html_and_text_reprs(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("def reprs_job():\n    print('reprs')\n")
    kernel.run("%schedule add reprs_job --every 1h")
    res = kernel.run("%schedule list")
    assert "reprs_job" in res.text and "reprs_job" in res.html[0]
    assert "<script" not in res.html[0] and "<style" not in res.html[0]
    kernel.run("%schedule remove reprs_job")


def test_restart_unbound_rebind_and_cell_jobs_restored(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("def fetch():\n    print('fetched', 41 + 1)\n")
    kernel.run("%schedule add fetch --every 1h")
    kernel.run("%%schedule --every 1s --name beat\nimport os\nprint('beat in', os.getpid())\n")
    old_pid = kernel.pid
    kernel.restart()
    new_pid = kernel.pid
    assert new_pid != old_pid and kernel.eval("__import__('os').getpid()") == new_pid

    kernel.run("%load_ext nbsched")
    table = kernel.run("%schedule list")
    rows = {ln.split()[0]: ln for ln in table.text.splitlines()[2:] if ln.strip()}
    assert rows["fetch"].rstrip().endswith("unbound"), table.text
    assert "unbound" in table.html[0]
    assert rows["beat"].rstrip().endswith("active"), table.text

    # The restored cell job runs on its own, in the new kernel process.
    kernel.wait_until(
        "[r.output for r in nbsched.kernel.current().get_runs('beat', limit=20) "
        f"if 'beat in {new_pid}' in r.output]",
        timeout=15,
        what="the restored cell job to run in the new kernel",
    )

    # Defining the function again binds the job (post_run_cell hook).
    res = kernel.run("%schedule run fetch", check=False)
    assert res.ename == "UsageError" and "unbound" in res.evalue
    kernel.run("def fetch():\n    print('fetched', 41 + 1)\n")
    assert "unbound" not in kernel.run("%schedule show fetch").text.split("state", 1)[1][:20]
    assert "fetched 42" in kernel.run("%schedule run fetch").text
    kernel.run("%schedule remove beat")
    kernel.run("%schedule remove fetch")


def test_outside_changes_are_noticed(kernel: KernelHarness, store: SQLAlchemyJobStore) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("def outside():\n    pass\n")
    kernel.run("%schedule add outside --every 1h")
    job = store.get_job("outside")
    assert job is not None and job.owner == kernel.owner

    store.update_job(replace(job, paused=True, next_run_time=None))
    kernel.wait_until(
        "nbsched.kernel.current().get_job('outside').paused",
        what="the kernel to see the pause made by another process",
    )
    assert "paused" in kernel.run("%schedule list").text

    store.remove_job("outside")
    kernel.wait_until(
        "'outside' not in [j.name for j in nbsched.kernel.current().get_jobs()]",
        what="the kernel to see the removal made by another process",
    )
    assert all(j.name != "outside" for j in store.get_jobs(ALL_OWNERS))


def test_loaded_from_config_at_kernel_start(kernel_factory: Kernels, tmp_path: Path) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["nbsched"]\nc.NbschedConfig.timezone = "UTC"\n'
    )
    k = kernel_factory.start("ipk7", notebook="autoload.ipynb", root=tmp_path)
    assert k.eval("nbsched.kernel.loaded().owner") == k.owner
    assert k.eval("str(nbsched.kernel.current().timezone)") == "UTC"
    res = k.run("%load_ext nbsched")  # a second load is a no-op
    assert "already loaded" in res.stdout + res.text
    assert loop_threads(k) == 1
