"""A program using nbsched exits at once, with its own exit code, whatever its jobs do.

The scenario of background/000: the main program ends (sys.exit(88)) while a 30 s job runs.
APScheduler's pool makes the interpreter wait for the job; nbsched must not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import sys, time, threading
    from nbsched import Scheduler
    s = Scheduler({db!r}, timezone="UTC")
    s.start()
    started = threading.Event()
    def long_job():
        started.set()
        time.sleep(30)
    s.add_job(long_job, "every 1s", name="long")
    started.wait(20)
    print("job running; exiting", flush=True)
    sys.exit(88)
""")


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_sys_exit_while_a_thread_job_runs(store: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = None if store == "memory" else f"sqlite:///{tmp_path / 'exit.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(db=db)],
        capture_output=True, text=True, timeout=20,  # far below the job's 30 s
    )
    assert proc.returncode == 88, proc.stderr
    assert "job running; exiting" in proc.stdout
    if db:
        from nbsched import RunStatus, Scheduler

        s = Scheduler(db, timezone="UTC")
        runs = s.store.get_runs("long")
        assert runs and runs[0].status is RunStatus.cancelled  # recorded, not lost
        s.store.close()
