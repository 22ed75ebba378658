"""Job output never reaches a cell, on ipykernel 7 and 6; it lands in the run.

ipykernel sends a background thread's writes with the *most recent* parent header, i.e. into
whatever cell ran last (research/apscheduler.md §6.4). The job below writes through every
path a job commonly uses -- ``print``, ``sys.stderr``, a stream object grabbed *before*
nbsched was loaded, a ``logging`` handler made before that, and ``display()`` -- while a cell
is running, and again while the kernel is idle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ..conftest import wait_for
from .conftest import KERNELS, KernelHarness

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
def kernel(request: pytest.FixtureRequest, kernel_factory: Callable[..., KernelHarness]):
    k = kernel_factory(request.param, notebook="output.ipynb")
    k.run(SETUP)
    k.run("%load_ext nbsched")
    return k


def _check_isolation(kernel: KernelHarness) -> None:
    """Let ``chatter`` fire during a busy cell and while idle; no JOB- text may reach IOPub,
    and all of it must be in the run."""
    kernel.run("running.clear(); done.clear()\n%schedule resume chatter")
    # A long cell: it waits (bounded) while the job fires and prints, then prints itself.
    busy = kernel.run(
        "print('CELL-START')\n"
        "assert running.wait(30), 'the job never started'\n"
        "assert done.wait(30), 'the job never finished'\n"
        "print('CELL-END')\n"
    )
    assert busy.stdout == "CELL-START\nCELL-END\n"
    assert not [t for t in _texts(busy.msgs) if MARK in t]

    # It goes on firing while the kernel is idle: those prints must not land anywhere either.
    kernel.run("done.clear()")
    kernel.run("assert done.wait(30)")
    kernel.run("%schedule pause chatter")
    kernel.drain()
    leaked = [t for t in _texts(kernel.iopub) if MARK in t]
    assert not leaked, f"job output reached a cell on {kernel.name}: {leaked[:5]}"

    wait_for(
        lambda: kernel.eval("nbsched.kernel.current().status()['running_runs']") == 0,
        what="the last run of chatter to finish",
    )
    logs = kernel.run("%schedule logs chatter -n 5")
    for what in ("JOB-OUT 19", "JOB-ERR 19", "JOB-EARLY 19", "JOB-LOG 19", "'JOB-DISPLAY 19'"):
        assert what in logs.text, f"{what!r} missing from the run's output"
    assert "succeeded" in logs.text
    kernel.iopub.clear()


def test_job_output_never_reaches_a_cell(kernel: KernelHarness) -> None:
    kernel.run("%%schedule --every 1s --name chatter --paused\n" + JOB)
    _check_isolation(kernel)


def test_still_isolated_after_reload(kernel: KernelHarness) -> None:
    kernel.run("%reload_ext nbsched")
    _check_isolation(kernel)


def test_cell_output_still_works_after_load(kernel: KernelHarness) -> None:
    res = kernel.run(
        "import sys\nprint('out')\nsys.stderr.write('err\\n')\nearly_err.write('early\\n')\n"
        "joblog.warning('logged')\ndisplay('shown')\n"
    )
    assert res.stdout == "out\n"
    assert res.stderr == "err\nearly\nlogged\n"
    assert res.data == ["'shown'"]


def test_status_says_how_output_is_routed(kernel: KernelHarness) -> None:
    text = kernel.run("%schedule status").text
    assert "kernel streams hooked" in text
