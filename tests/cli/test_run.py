"""The commands that run notebooks: ``run`` (once, now), ``add`` of a notebook job, and
``serve`` running one. They need the notebook runner (``nbsched.runner``) and the
``notebook`` executor: real kernels through nbclient, real files, a real SQLite store.
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import psutil
import pytest

from nbsched.jobs import RunStatus
from nbsched.stores.sqlalchemy import SQLAlchemyJobStore
from tests.helpers.wait import wait_for

from .helpers import Result, program_env, snapshot

pytestmark = pytest.mark.slow


def notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    """Write a notebook of code cells (the first one tagged ``parameters`` if given)."""
    cells = []
    if parameters is not None:
        cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells.extend(nbformat.v4.new_code_cell(src) for src in sources)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )


# -- run --------------------------------------------------------------------------------------


def test_run_succeeds_with_parameters_and_shows_progress(
    program: Callable[..., Result], tmp_path: Path
) -> None:
    nb = notebook(tmp_path / "greet.ipynb", 'print(f"n is {n}")', 'print("done")',
                  parameters="n = 1")
    out = tmp_path / "out" / "greet-run.ipynb"
    result = program("run", str(nb), "-p", "n=41", "-o", str(out))
    assert result.code == 0, result.err
    assert "n is 41" in result.out and "done" in result.out
    last = result.err_lines[-1]
    assert re.fullmatch(
        rf"nbsched run: succeeded, (\d+)/\1 cells in .+; executed notebook: {re.escape(str(out))}",
        last,
    ), last
    # stderr is not a terminal here: a plain line per cell, counting up to the total
    done = [tuple(map(int, m.groups())) for m in
            (re.fullmatch(r"nbsched run: greet\.ipynb: cell (\d+)/(\d+) done", ln)
             for ln in result.err_lines) if m]
    assert done and [d for d, _ in done] == sorted({d for d, _ in done})
    assert done[-1][0] == done[-1][1]
    assert "n is 41" in outputs(out)


def test_run_failure_exits_1_and_says_where_the_notebook_is(
    program: Callable[..., Result], tmp_path: Path
) -> None:
    nb = notebook(tmp_path / "bad.ipynb", 'print("before")', "1 / 0", 'print("never")')
    out = tmp_path / "bad-run.ipynb"
    result = program("run", str(nb), "-o", str(out))
    assert result.code == 1
    assert "ZeroDivisionError" in result.err
    assert re.fullmatch(
        rf"nbsched run: failed after \d+/\d+ cells \(.+\); executed notebook saved to "
        rf"{re.escape(str(out))}",
        result.err_lines[-1],
    ), result.err_lines[-1]
    assert out.exists() and "before" in outputs(out) and "never" not in outputs(out)


def test_run_timeout_exits_1(program: Callable[..., Result], tmp_path: Path) -> None:
    nb = notebook(tmp_path / "slow.ipynb", "import time; time.sleep(120)")
    result = program("run", str(nb), "--timeout", "3", "-o", str(tmp_path / "slow-run.ipynb"))
    assert result.code == 1
    assert result.err_lines[-1].startswith("nbsched run: timed_out after ")


def test_run_bad_parameter_is_exit_2(program: Callable[..., Result], tmp_path: Path) -> None:
    nb = notebook(tmp_path / "p.ipynb", "print(1)")
    result = program("run", str(nb), "-p", "no-equals-sign")
    assert result.code == 2
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith("nbsched run: error: ")


def test_ctrl_c_cancels_the_run_and_kills_the_kernel(tmp_path: Path) -> None:
    pidfile = tmp_path / "kernel.pid"
    nb = notebook(
        tmp_path / "long.ipynb",
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsched", "run", str(nb), "-o", str(tmp_path / "long-run.ipynb")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=program_env(),
    )
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=60,
                 what="the notebook's kernel to start its long cell")
        kernel = psutil.Process(int(pidfile.read_text()))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("nbsched run: cancelled by SIGINT")
    wait_for(lambda: not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE,
             timeout=10, what="the kernel to be gone")


# -- add --------------------------------------------------------------------------------------


def test_add_stores_a_notebook_job_and_prints_it(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    nb = notebook(tmp_path / "report.ipynb", "print(day)", parameters="day = 'x'")
    result = cli("add", str(nb), "every weekday at 9:30", "--name", "report", "-p", "day=monday",
                 "-p", "n=3", "--tz", "Europe/Paris", "--timeout", "600", "--db", db_url)
    assert result.code == 0, result.err
    assert "report" in result.out and "At 09:30, Monday through Friday" in result.out
    assert re.search(r"next run\s+in ", result.out)
    store = SQLAlchemyJobStore(db_url)
    try:
        job = store.get_job("report")
    finally:
        store.close()
    assert job is not None
    assert (job.kind, job.executor, job.owner) == ("notebook", "notebook", None)
    assert job.target == str(nb.resolve())
    assert dict(job.parameters or {}) == {"day": "monday", "n": 3}
    assert job.timeout == 600 and job.next_run_time is not None
    listed = cli("list", "--db", db_url).out
    assert "report" in listed and "At 09:30, Monday through Friday" in listed
    (as_json,) = json.loads(cli("list", "--db", db_url, "--json").out)["jobs"]
    assert (as_json["kind"], as_json["target"], as_json["owner"]) == (
        "notebook", str(nb.resolve()), None
    )
    assert (as_json["schedule"], as_json["timezone"]) == ("30 9 * * 1-5", "Europe/Paris")


def test_add_defaults_the_name_to_the_notebook_and_refuses_a_taken_one(
    cli: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    nb = notebook(tmp_path / "daily.ipynb", "print(1)")
    assert cli("add", str(nb), "every day at 6:00", "--db", db_url).code == 0
    before = snapshot(db_url)
    again = cli("add", str(nb), "every 1h", "--db", db_url)
    assert again.code == 1
    assert again.err_lines == [
        "nbsched add: error: a job named 'daily' already exists; choose another --name, or "
        "`nbsched remove daily` first"
    ]
    bad = cli("add", str(nb), "every 1h", "--name", "other", "-p", "oops", "--db", db_url)
    assert bad.code == 2 and len(bad.err_lines) == 1
    assert snapshot(db_url) == before


# -- serve, with a notebook job ---------------------------------------------------------------


def test_serve_runs_a_notebook_job_added_on_the_command_line(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    marks = tmp_path / "marks.txt"
    nb = notebook(tmp_path / "mark.ipynb", f"open({str(marks)!r}, 'a').write(f'{{tag}}\\n')",
                  parameters="tag = 'default'")
    assert cli("add", str(nb), "every 2s", "--name", "mark", "-p", "tag=from-cli",
               "--db", url).code == 0
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nbsched", "serve", "--db", url],
            stdout=subprocess.DEVNULL, stderr=err, env=program_env(), cwd=tmp_path,
        )
    try:
        wait_for(lambda: _succeeded(url, "mark"), timeout=90,
                 what="a recorded successful run of the notebook job")
        assert "from-cli" in marks.read_text()
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                             for p in family), timeout=10, what="serve's kernels to end")
    store = SQLAlchemyJobStore(url)
    try:
        runs = store.get_runs("mark", limit=100)
    finally:
        store.close()
    done = [r for r in runs if r.status is RunStatus.succeeded]
    assert done and all(r.output_path and Path(r.output_path).exists() for r in done)
    assert "executed notebook: " in log.read_text()


def test_run_on_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    import fcntl
    import os
    import pty
    import struct
    import termios

    nb = notebook(tmp_path / "four.ipynb", *[f"print('cell {i}')" for i in range(4)])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbsched", "run", str(nb), "-o", str(tmp_path / "four-run.ipynb")],
        stdout=subprocess.DEVNULL, stderr=slave, env=program_env(),
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        # Until the program has exited and said everything (its kernel may hold the terminal
        # open a little longer: no waiting for the end of the file).
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # EIO: nobody has the terminal open any more
                    break
            elif proc.poll() is not None:
                break
        assert proc.wait(1) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = seen.decode(errors="replace")
    assert "four.ipynb: 100%" in text and "4/4" in text
    assert "cell 4/4 done" not in text  # the bar, not the plain lines


def _succeeded(url: str, name: str) -> bool:
    """A run of ``name`` is recorded ``succeeded`` (read with a store of our own)."""
    store = SQLAlchemyJobStore(url)
    try:
        return any(r.status is RunStatus.succeeded for r in store.get_runs(name, limit=100))
    finally:
        store.close()
