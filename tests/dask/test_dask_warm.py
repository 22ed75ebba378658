"""Function runs on Dask are forked by a warm process per worker thread: each run is still a
process of its own (nothing one run changes reaches the next, nothing it starts outlives it,
a timeout kills it and nothing else), and the warm process is reused, replaced when it dies,
and gone with its worker."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from nbsched import RunStatus, Scheduler
from nbsched.executors.dask import DaskJobExecutor
from tests.helpers.processes import pid_alive
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow


def _parent(pid: int) -> int:
    return psutil.Process(pid).ppid()


def _reported(sched: Scheduler, name: str) -> Any:
    """Run ``name`` once; the value its job printed on its last line (a Python literal)."""
    run = sched.run_job(name)
    assert run.status is RunStatus.succeeded, run.error
    return ast.literal_eval(run.output.splitlines()[-1])


def _add_who(sched: Scheduler) -> None:
    def who() -> None:
        print((os.getpid(), os.getppid()), flush=True)

    sched.add_job(who, "every 1h", name="who", executor="dask")


def test_the_runs_of_a_worker_thread_are_forked_by_its_one_warm_process(
    sched: Scheduler, client: Any
) -> None:
    _add_who(sched)
    seen = [_reported(sched, "who") for _ in range(5)]
    workers = set(client.run(os.getpid).values())
    warm = {ppid: _parent(ppid) for _, ppid in seen}  # warm process -> the worker that has it
    assert len({pid for pid, _ in seen}) == 5  # a process of its own per run
    assert not set(warm) & workers  # forked by a warm process, not started by the worker
    assert set(warm.values()) <= workers  # ... which the worker started
    assert len(warm) == len(set(warm.values()))  # one per worker (one thread each): reused


def test_nothing_a_run_changes_reaches_the_next_run(sched: Scheduler, tmp_path: Path) -> None:
    def meddle(folder: str) -> None:
        import json

        seen = [
            os.environ.get("NBSCHED_TEST_LEAK"),
            os.getcwd() == folder,
            getattr(json, "nbsched_leak", None),
            "/nbsched-leak" in sys.path,
            "nbsched_leak" in sys.modules,
            signal.getsignal(signal.SIGTERM) == signal.SIG_IGN,
        ]
        os.environ["NBSCHED_TEST_LEAK"] = "1"
        os.chdir(folder)
        json.nbsched_leak = True  # type: ignore[attr-defined]
        sys.path.append("/nbsched-leak")
        sys.modules["nbsched_leak"] = json
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print((os.getppid(), seen), flush=True)

    sched.add_job(meddle, "every 1h", name="meddle", executor="dask", args=(str(tmp_path),))
    reports = [_reported(sched, "meddle") for _ in range(3)]
    assert len({warm for warm, _ in reports}) < 3  # (2 workers: one warm process ran two)
    assert all(seen == [None, False, None, False, False, False] for _, seen in reports)


def test_a_run_ends_as_a_python_program_ends(sched: Scheduler) -> None:
    def body() -> None:
        import atexit

        atexit.register(lambda: print("atexit handler", flush=True))

        def late() -> None:
            time.sleep(0.2)
            print("thread finished", flush=True)

        threading.Thread(target=late).start()  # not a daemon: the run waits for it

    sched.add_job(body, "every 1h", name="body", executor="dask")
    run = sched.run_job("body")
    assert run.status is RunStatus.succeeded, run.error
    assert run.output == "thread finished\natexit handler\n"


def test_what_a_run_leaves_running_is_killed_when_it_ends(sched: Scheduler) -> None:
    def leave_behind() -> None:
        child = subprocess.Popen(["sleep", "600"])
        orphan = subprocess.run(  # a grandchild whose parent has exited
            ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"],
            capture_output=True, text=True, check=True,
        ).stdout
        print((os.getppid(), child.pid, int(orphan)), flush=True)

    sched.add_job(leave_behind, "every 1h", name="leave", executor="dask")
    for _ in range(2):
        warm, *left = _reported(sched, "leave")
        wait_for(lambda left=left: not any(map(pid_alive, left)), 5, "the leftovers to go")
        assert pid_alive(warm)  # (not in the run's group)


def test_a_timed_out_run_is_killed_and_its_worker_keeps_its_warm_process(
    sched: Scheduler, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"

    def hang(path: str) -> None:
        Path(path).write_text(f"{os.getpid()} {os.getppid()}")
        time.sleep(600)

    sched.add_job(hang, "every 1h", name="hang", executor="dask", timeout=1, args=(str(pidfile),))
    assert sched.run_job("hang").status is RunStatus.timed_out
    pid, warm = map(int, pidfile.read_text().split())
    wait_for(lambda: not pid_alive(pid), 5, "the run's process to be killed")
    assert pid_alive(warm)
    worker = _parent(warm)
    _add_who(sched)
    for _ in range(4):  # every run of that worker is forked by the same warm process
        _, ppid = _reported(sched, "who")
        assert ppid == warm or _parent(ppid) != worker


def test_a_run_whose_process_dies_is_crashed_and_the_worker_goes_on(sched: Scheduler) -> None:
    def exits() -> None:
        os._exit(9)

    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def kills_its_warm_process() -> None:
        print(os.getppid(), flush=True)
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(600)  # (killed with it: PDEATHSIG)

    for name, job, error in [
        ("exits", exits, "exited with code 9"),
        ("killed", killed, "was killed by signal 9"),
        ("orphaned", kills_its_warm_process, "died with the warm process that forked it"),
    ]:
        sched.add_job(job, "every 1h", name=name, executor="dask")
        run = sched.run_job(name)
        assert run.status is RunStatus.crashed, (name, run.error)
        assert error in (run.error or ""), (name, run.error)
    assert not pid_alive(int(run.output))
    _add_who(sched)
    for _ in range(3):  # a new warm process where one was killed
        _reported(sched, "who")


def test_nothing_outlives_a_worker_that_is_killed_during_a_run(
    own_cluster: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    address, _, worker = own_cluster
    pidfile = tmp_path / "pids"

    def long(path: str) -> None:
        child = subprocess.Popen(["sleep", "600"])
        Path(path + ".tmp").write_text(f"{os.getpid()} {os.getppid()} {child.pid}")
        os.replace(path + ".tmp", path)  # (whole when it appears)
        time.sleep(600)

    executor = DaskJobExecutor(address)
    s = Scheduler(timezone="UTC", executors={"dask": executor})
    s.start()
    try:
        wait_for(lambda: executor._client is not None, 30, "the executor to connect")
        executor._client.wait_for_workers(1, timeout=30)
        s.add_job(long, "every 1h", name="long", executor="dask", args=(str(pidfile),))
        threading.Thread(target=s.run_job, args=("long",), daemon=True).start()
        wait_for(pidfile.exists, 30, "the run to start")
        pids = [int(p) for p in pidfile.read_text().split()]  # run, warm process, its child
        assert _parent(pids[1]) == worker.pid
        worker.kill()
        wait_for(lambda: not any(map(pid_alive, pids)), 10, "the run's processes to die")
    finally:
        s.shutdown()


# -- in this process, without a cluster ------------------------------------------------------


@pytest.fixture
def here() -> Any:
    """``_dask_remote`` as the worker side runs it, in this process (as a worker thread
    would); its warm process and reaper are gone afterwards."""
    from nbsched.executors import _dask_remote, _dask_warm

    try:
        yield _dask_remote
    finally:
        warm = getattr(_dask_warm._local, "warm", None)
        if warm is not None:
            _dask_warm.drop(warm)
        if _dask_remote._reaper is not None:
            _dask_remote._reaper.close()
            _dask_remote._reaper = None


def _payload(func: Any, *args: Any) -> bytes:
    from types import SimpleNamespace

    from nbsched.executors.payload import pack

    return pack(SimpleNamespace(func=func, target="", args=args, kwargs={}))  # type: ignore[arg-type]


def test_a_stop_that_comes_while_the_run_is_forked_stops_it(
    here: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbsched.executors._dask_warm import WarmProcess

    start = WarmProcess.start

    def stopped_meanwhile(self: WarmProcess, *args: Any) -> int:
        assert here.cancel_on_worker("r1", "cancelled")  # known, its process not there yet
        return start(self, *args)

    monkeypatch.setattr(WarmProcess, "start", stopped_meanwhile)
    results: list[Any] = []
    t = threading.Thread(  # (a worker thread of its own: its warm process ends with it)
        target=lambda: results.append(here.run_task(_payload(time.sleep, 600), "r1", None))
    )
    t.start()
    try:
        t.join(30)
        assert results, "the run was not stopped"
        status, _, error, _, _ = results[0]
        assert (status, error) == ("cancelled", "Cancelled while it ran")
    finally:
        here.cancel_on_worker("r1", "cancelled")  # (if it was not stopped)
        t.join(10)


def test_a_warm_process_ends_with_the_thread_that_started_it(here: Any) -> None:
    from nbsched.executors import _dask_warm

    reaper = here._get_reaper()
    started: list[int] = []

    def worker_thread() -> None:
        warm = _dask_warm.for_this_thread(reaper)
        assert _dask_warm.for_this_thread(reaper) is warm  # kept for the thread's next run
        started.append(warm.pid)

    t = threading.Thread(target=worker_thread)
    t.start()
    t.join(30)
    assert started
    wait_for(lambda: not pid_alive(started[0]), 5, "the warm process to end with its thread")
