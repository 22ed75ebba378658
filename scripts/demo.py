"""`make demo`: a headless quick start that schedules a few jobs and prints their runs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from nbsched import RunStatus, Scheduler


def greet(who: str) -> None:
    print(f"hello, {who}!")


def flaky() -> None:
    raise RuntimeError("this job fails on purpose")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'demo.db'}"
        print(f"store: {db}")
        with Scheduler(db, timezone="UTC") as s:
            s.add_job(greet, "every 1s", name="greet", args=("nbsched",))
            s.add_job(flaky, "every 2s", name="flaky", retries=1)
            s.add_job("json:dumps", "*/5 * * * *", name="cron-job", args=({"a": 1},))
            print("\njobs:")
            for job in s.get_jobs():
                print(f"  {job.name:10} {job.schedule:40} next {job.next_run_time:%H:%M:%S}")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                runs = s.get_runs(limit=100)
                if sum(r.status is RunStatus.succeeded for r in runs) >= 3 and any(
                    r.status is RunStatus.failed for r in runs
                ):
                    break
                time.sleep(0.2)
            print("\nruns (newest first):")
            for r in s.get_runs(limit=10):
                detail = r.output.strip() or (r.error or "").strip().splitlines()[-1:]
                print(f"  {r.job_name:10} {r.status.value:10} {r.scheduled_for:%H:%M:%S}  {detail}")


if __name__ == "__main__":
    main()
