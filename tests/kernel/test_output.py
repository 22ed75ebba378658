"""Job output never reaches a cell, on ipykernel 7 and 6; it lands in the run.

ipykernel sends a background thread's writes with the *most recent* parent header, i.e. into
whatever cell ran last. The job below writes through every path a job commonly uses --
``print``, ``sys.stderr``, a stream object grabbed *before* nbsched was loaded, a ``logging``
handler made before that, and ``display()`` -- while a cell is running, and while no cell
runs (the kernel is idle).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from nbsched.abc import ALL_OWNERS
from nbsched.jobs import Run, RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.kernels import KERNELS, KernelHarness, Kernels
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow

MARK = "JOB-"

SETUP = """\
import logging, sys, threading, time
from IPython.display import display
early_err = sys.stderr                      # held from before %load_ext
joblog = logging.getLogger("joblog")
joblog.addHandler(logging.StreamHandler(sys.stderr))
joblog.propagate = False
running = threading.Event()
done = threading.Event()
"""

JOB = """\
running.set()
for i in range(20):
    print(f"JOB-OUT {i}")
    sys.stderr.write(f"JOB-ERR {i}\\n")
    early_err.write(f"JOB-EARLY {i}\\n")
    joblog.warning("JOB-LOG %d", i)
    display(f"JOB-DISPLAY {i}")
    time.sleep(0.002)
done.set()
"""


def _texts(msgs: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in msgs:
        c = m["content"]
        if m["msg_type"] == "stream":
            out.append(c["text"])
        elif m["msg_type"] in ("display_data", "execute_result", "update_display_data"):
            out.extend(str(v) for v in c.get("data", {}).values())
        elif m["msg_type"] == "error":
            out.append(c.get("evalue", ""))
    return out


@pytest.fixture(scope="module", params=KERNELS)
def kernel(request: pytest.FixtureRequest, kernel_factory: Kernels) -> KernelHarness:
    k = kernel_factory.start(request.param, notebook="output.ipynb")
    k.run(SETUP)
    k.run("%load_ext nbsched")
    return k


def _leaks(msgs: list[dict[str, Any]]) -> list[str]:
    return [t for t in _texts(msgs) if MARK in t]


def _add_chatter(kernel: KernelHarness) -> str:
    """A paused ``chatter-*`` cell job that runs :data:`JOB` every second; its name."""
    name = f"chatter-{uuid.uuid4().hex[:8]}"
    kernel.run("%load_ext nbsched")  # (no-op when loaded)
    kernel.run(f"%%schedule --every 1s --name {name} --paused\n" + JOB)
    return name


def _check_run_output(kernel: KernelHarness, name: str) -> None:
    """Everything the job wrote is in its run, through every path."""
    kernel.wait_until(
        "nbsched.kernel.current().status()['running_runs'] == 0",
        what=f"the last run of {name} to finish",
    )
    logs = kernel.run(f"%schedule logs {name} -n 5")
    for what in ("JOB-OUT 19", "JOB-ERR 19", "JOB-EARLY 19", "JOB-LOG 19", "'JOB-DISPLAY 19'"):
        assert what in logs.text, f"{what!r} missing from the run's output"
    assert "succeeded" in logs.text


def test_job_output_never_reaches_a_busy_cell(kernel: KernelHarness) -> None:
    """The job fires while a cell runs (the cell waits for it): nothing of the job's reaches
    that cell, and all of it is in the run."""
    name = _add_chatter(kernel)
    kernel.iopub.clear()
    kernel.run(f"running.clear(); done.clear()\n%schedule resume {name}")
    busy = kernel.run(
        "print('CELL-START')\n"
        "assert running.wait(30), 'the job never started'\n"
        "assert done.wait(30), 'the job never finished'\n"
        "print('CELL-END')\n"
    )
    assert busy.stdout == "CELL-START\nCELL-END\n"
    assert not _leaks(busy.msgs)
    kernel.run(f"%schedule pause {name}")
    kernel.drain()
    assert not _leaks(kernel.iopub), f"job output reached a cell on {kernel.name}"
    _check_run_output(kernel, name)
    kernel.run(f"%schedule remove {name}")


def _idle_runs(db_url: str, name: str, since: float) -> list[Run]:
    store = SQLAlchemyJobStore(db_url)
    store.open()
    try:
        runs = store.get_runs(name, owner=ALL_OWNERS, limit=20)
    finally:
        store.close()
    return [
        r
        for r in runs
        if r.status is RunStatus.succeeded and r.started_ts is not None and r.started_ts > since
    ]


def test_job_output_never_reaches_a_cell_while_the_kernel_is_idle(kernel: KernelHarness) -> None:
    """The common case: the job fires while no cell runs. ipykernel sends a background
    thread's output with the parent header of the *last* cell, so without routing it would
    show up under that cell. It must go only into the run, and the next cell's output must
    be the cell's own."""
    name = _add_chatter(kernel)
    kernel.iopub.clear()
    resume = kernel.run(f"%schedule resume {name}")
    resume_id = resume.msgs[0]["parent_header"]["msg_id"]
    idle_since = time.time()  # no request is sent to the kernel until the run is seen
    found: list[Run] = []

    def ran_while_idle() -> bool:
        kernel.drain()  # keep what the kernel sends meanwhile, for the leak check
        found[:] = _idle_runs(kernel.db_url, name, idle_since)
        return bool(found)

    wait_for(ran_while_idle, timeout=30, what=f"a run of {name} while the kernel is idle", poll=0.1)
    others = [
        m
        for m in kernel.iopub
        if m["msg_type"] == "status" and m["parent_header"].get("msg_id") != resume_id
    ]
    assert not others, "the kernel was busy with something else during the idle period"
    assert not _leaks(kernel.iopub), f"job output reached a cell on {kernel.name}"
    assert "JOB-OUT 19" in found[0].output and "JOB-LOG 19" in found[0].output

    following = kernel.run("print('NEXT-CELL')")
    assert following.stdout == "NEXT-CELL\n"
    assert following.stderr == "" and following.data == []
    kernel.run(f"%schedule pause {name}")
    kernel.drain()
    assert not _leaks(kernel.iopub), f"job output reached a cell on {kernel.name}"
    _check_run_output(kernel, name)
    kernel.run(f"%schedule remove {name}")


def test_still_isolated_after_reload(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    kernel.run("%reload_ext nbsched")
    name = _add_chatter(kernel)
    kernel.iopub.clear()
    kernel.run(f"running.clear(); done.clear()\n%schedule resume {name}")
    busy = kernel.run("assert done.wait(30), 'the job never finished'\nprint('CELL-END')")
    assert busy.stdout == "CELL-END\n"
    kernel.run(f"%schedule pause {name}")
    kernel.drain()
    assert not _leaks(kernel.iopub), f"job output reached a cell on {kernel.name}"
    _check_run_output(kernel, name)
    kernel.run(f"%schedule remove {name}")


def test_cell_output_still_works_after_load(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    res = kernel.run(
        "import sys\nprint('out')\nsys.stderr.write('err\\n')\nearly_err.write('early\\n')\n"
        "joblog.warning('logged')\ndisplay('shown')\n"
    )
    assert res.stdout == "out\n"
    assert res.stderr == "err\nearly\nlogged\n"
    assert res.data == ["'shown'"]


def test_status_says_how_output_is_routed(kernel: KernelHarness) -> None:
    kernel.run("%load_ext nbsched")
    text = kernel.run("%schedule status").text
    assert "kernel streams hooked" in text
