"""``nbsched`` on the command line (also ``python -m nbsched``).

::

    nbsched run NOTEBOOK [-p key=value ...] [-o OUTPUT] [--timeout S]
    nbsched add NOTEBOOK SCHEDULE [--name N] [-p key=value ...] [--tz ZONE] [--timeout S] [--db URL]
    nbsched list [--db URL] [--json]
    nbsched runs [NAME] [--limit N] [--db URL] [--json]
    nbsched logs NAME [--run ID] [--db URL]
    nbsched pause NAME | resume NAME | remove NAME [--db URL]
    nbsched serve [--db URL] [--give-up-after S]

Exit status: 0 on success; 1 for a missing notebook, an unknown job or run, a run that failed
or timed out, a store that cannot be used; 2 for bad arguments (one line on stderr, nothing in
the store changed); 128 + the signal number when ``run`` was interrupted (130 for Ctrl-C).

Jobs added here belong to no notebook (their owner is ``None``, like jobs a plain Python
program adds with ``Scheduler(db_url)``): ``nbsched serve`` serves exactly those, so a
notebook scheduled from a shell runs while no notebook is open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from . import display
from ._cli import run as run_cmd
from ._cli import serve as serve_cmd
from ._cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    find_job,
    find_run,
    job_json,
    opened_store,
    run_json,
    store_url,
)
from .errors import ConflictingJobError, InvalidArgumentError, NbschedError, TriggerParseError

__all__ = ["main", "build_parser"]

_DB_HELP = (
    "SQLAlchemy URL of the job store (default: $NBSCHED_DB_URL, else the SQLite file in the "
    "Jupyter data directory that kernels use)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (argparse's default prints the
    whole usage first) and the same exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number), got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {text!r}")
    return value


def _sub(
    subs: Any, name: str, summary: str, examples: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subs.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func, parser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nbsched`` and its subcommands."""
    parser = _Parser(
        prog="nbsched",
        description="Run and schedule Jupyter notebooks from the command line.",
        epilog=(
            "examples:\n"
            "  nbsched run report.ipynb -p day=2026-12-01\n"
            "  nbsched add report.ipynb 'every weekday at 09:30' --tz Europe/Paris\n"
            "  nbsched list\n"
            "  nbsched serve\n"
            "\n`nbsched COMMAND --help` tells more about each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"nbsched {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _sub(
        subs, "run", "Run a notebook once, now, and save the executed copy.",
        "  nbsched run report.ipynb\n"
        "  nbsched run report.ipynb -p day=2026-12-01 -p limit=10 -o out/report-dec.ipynb\n"
        "  nbsched run slow.ipynb --timeout 600",
        run_cmd.command,
    )
    p.add_argument("notebook", metavar="NOTEBOOK", help="path of the .ipynb file to run")
    _parameters(p)
    p.add_argument("-o", "--output", metavar="OUTPUT", help="where to save the executed notebook")
    p.add_argument("--timeout", type=_positive, metavar="S", help="stop the run after S seconds")

    p = _sub(
        subs, "add", "Schedule a notebook (it runs where `nbsched serve` or Jupyter serves "
        "the store).",
        "  nbsched add report.ipynb 'every day at 9:00'\n"
        "  nbsched add report.ipynb '*/15 * * * *' --name report-15m -p limit=10\n"
        "  nbsched add cleanup.ipynb 'every monday at 8:00' --tz Europe/Paris --timeout 300",
        _add,
    )
    p.add_argument("notebook", metavar="NOTEBOOK", help="path of the .ipynb file to schedule")
    p.add_argument(
        "schedule", metavar="SCHEDULE",
        help="'every 10m', 'every weekday at 09:30', a cron expression '*/5 * * * *', "
        "'at 2026-12-01 09:00', ...",
    )
    p.add_argument("--name", metavar="N", help="the job's name (default: the notebook's name)")
    _parameters(p)
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone of the schedule "
                   "(default: this machine's)")
    p.add_argument("--timeout", type=_positive, metavar="S", help="stop each run after S seconds")
    _db(p)

    p = _sub(
        subs, "list", "List every job in the store, with its next run and last status.",
        "  nbsched list\n  nbsched list --json\n  nbsched list --db sqlite:////srv/nbsched.db",
        _list,
    )
    _db(p)
    p.add_argument("--json", action="store_true", help="print JSON (the REST API's JOB objects)")

    p = _sub(
        subs, "runs", "Show recent runs, newest first.",
        "  nbsched runs\n  nbsched runs report --limit 5\n  nbsched runs report --json",
        _runs,
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="only the runs of this job")
    p.add_argument("--limit", type=_count, default=20, metavar="N",
                   help="show at most N runs (default: 20)")
    _db(p)
    p.add_argument("--json", action="store_true", help="print JSON (the REST API's RUN objects)")

    p = _sub(
        subs, "logs", "Show what a run printed (the latest run by default).",
        "  nbsched logs report\n  nbsched logs report --run 3f2a9c01d2-17",
        _logs,
    )
    p.add_argument("name", metavar="NAME", help="the job")
    p.add_argument("--run", metavar="ID", help="this run instead of the latest (see `nbsched runs`)")
    _db(p)

    for name, summary, func in (
        ("pause", "Stop a job from firing until it is resumed.", _pause),
        ("resume", "Let a paused job fire again, from its next fire time.", _resume),
        ("remove", "Delete a job and its run history.", _remove),
    ):
        p = _sub(subs, name, summary, f"  nbsched {name} report", func)
        p.add_argument("name", metavar="NAME", help="the job")
        _db(p)

    p = _sub(
        subs, "serve",
        "Serve the store's notebook jobs (and 'module:function' jobs made outside a kernel) "
        "in the foreground, logging to stderr, until SIGTERM or Ctrl-C.",
        "  nbsched serve\n"
        "  nbsched serve --db postgresql+psycopg://nbsched@db.internal/nbsched\n"
        "  nbsched serve --give-up-after 60     # exit 1 if the store fails for a minute\n"
        "  NBSCHED_DASK_ADDRESS=tcp://dask:8786 nbsched serve   # also runs 'dask' jobs",
        serve_cmd.command,
    )
    _db(p)
    p.add_argument(
        "--give-up-after", type=_positive, default=serve_cmd.GIVE_UP_AFTER, metavar="S",
        help="exit with status 1 once the store has failed for S seconds in a row, so that a "
        f"supervisor can restart us (default: {serve_cmd.GIVE_UP_AFTER:g})",
    )
    return parser


def _parameters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p", "--parameter", dest="parameters", action="append", default=[],
        metavar="key=value",
        help="a notebook parameter (papermill-style); the value is read as a Python literal "
        "when it is one (10, 1.5, True, [1, 2]), else as a string; repeat for more",
    )


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help=_DB_HELP)


# -- the subcommands that manage jobs ----------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    from .scheduler import Scheduler
    from .triggers import parse_trigger

    # Everything is checked before anything is written: bad arguments first (exit 2), then
    # the notebook (exit 1).
    parse_trigger(args.schedule, timezone=args.tz)
    parameters = run_cmd.parse_parameters(args.parameters)
    notebook = Path(args.notebook)
    if notebook.suffix != ".ipynb":
        raise CliError(f"{args.notebook!r} is not a notebook (a .ipynb file)", EXIT_USAGE)
    if not notebook.is_file():
        raise CliError(f"no notebook at {args.notebook!r}")
    name = args.name if args.name is not None else notebook.stem
    scheduler = Scheduler(store_url(args.db), timezone=args.tz, owner=None)
    try:
        job = scheduler.add_job(
            # absolute: `nbsched serve` and the Jupyter server run from other directories
            str(notebook.resolve()),
            args.schedule,
            name=name,
            parameters=parameters or None,
            timeout=args.timeout,
        )
    except ConflictingJobError:
        raise CliError(
            f"a job named {name!r} already exists; choose another --name, or "
            f"`nbsched remove {name}` first"
        ) from None
    finally:
        scheduler.store.close()
    print(display.JobDetail(job, [], time.time()))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        jobs = store.get_jobs()
        last = {job.name: next(iter(store.get_runs(job.name, limit=1)), None) for job in jobs}
    if args.json:
        print(json.dumps({"jobs": [job_json(job, last[job.name]) for job in jobs]}, indent=2))
        return EXIT_OK
    # A notebook job made outside any notebook has no owner: its "notebook" column shows
    # the notebook it runs rather than nothing.
    shown = [
        replace(job, owner=job.target) if job.owner is None and job.kind == "notebook" else job
        for job in jobs
    ]
    print(display.JobTable(shown, last, time.time(), show_owner=True))
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        if args.name is not None:
            find_job(store, args.name)
        runs = store.get_runs(args.name, limit=args.limit)
    if args.json:
        print(json.dumps({"runs": [run_json(run) for run in runs]}, indent=2))
    else:
        print(display.RunLog(runs, time.time(), show_output=False, show_ids=True))
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        job = find_job(store, args.name)
        run = find_run(store, job, args.run)
    if run is None:
        print(f"Job {job.name!r} has not run yet.")
        return EXIT_OK
    print(display.RunLog([run], time.time(), show_ids=True))
    if run.output_path:
        print(f"executed notebook: {run.output_path}")
    return EXIT_OK


def _pause(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        job = find_job(store, args.name)
        if not job.paused:
            store.update_job(replace(job, paused=True, next_run_time=None))
    print(f"Paused job {job.name!r}.")
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    now = time.time()
    with opened_store(args.db) as store:
        job = find_job(store, args.name)
        nxt = job.next_ts
        if job.paused or nxt is None:
            nxt = job.trigger.next_fire_ts(now)
            nrt = None if nxt is None else datetime.fromtimestamp(nxt, UTC)
            store.update_job(replace(job, paused=False, next_run_time=nrt))
    if nxt is None:
        print(f"Resumed job {job.name!r}; its schedule has no fire time left.")
    else:
        when = f"{display.fmt_relative(nxt, now)} ({display.fmt_abs(nxt, None)})"
        print(f"Resumed job {job.name!r}; next run {when}.")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    with opened_store(args.db) as store:
        find_job(store, args.name)
        store.remove_job(args.name)
    print(f"Removed job {args.name!r} and its run history.")
    return EXIT_OK


# -- the entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nbsched`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Errors are one line on stderr: ``nbsched COMMAND: error: ...``.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the subcommand, whose usage it is
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version and bad arguments
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # Run as the program (not called from Python): `serve` may then guard the process's
    # exit, which must not be done to a caller's interpreter.
    args.program = argv is None
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        return _fail(args.command, str(exc), exc.code)
    except (InvalidArgumentError, TriggerParseError) as exc:
        return _fail(args.command, str(exc), EXIT_USAGE)
    except NbschedError as exc:
        return _fail(args.command, str(exc), EXIT_FAILURE)
    except BrokenPipeError:  # `nbsched list | head`: the reader left; not our error
        # (and Python's own flush at exit must not complain about it either)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


def _fail(command: str, message: str, code: int) -> int:
    line = " ".join(message.split())  # one line, whatever the message held
    print(f"nbsched {command}: error: {line}", file=sys.stderr)
    return code
