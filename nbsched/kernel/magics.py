"""``%schedule`` / ``%%schedule``: manage the jobs of the scheduler running in this kernel.

Parsing: ``shlex.split`` (POSIX, so quotes are removed and ``"*/5 * * * *"`` is one
argument) fed to small :class:`argparse.ArgumentParser` subclasses that raise IPython's
``UsageError`` instead of exiting. IPython's ``magic_arguments`` is not used: it keeps quote
characters and cannot express verbs (STYLE §7).

Every mistake becomes a **plain** ``UsageError`` (never a subclass: ipython#14024 prints a
full traceback for subclasses) with a one-line message, and "did you mean" for misspelt verbs,
options and job names. Verbs return displayable objects (``nbsched._display``) and never
print.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import shlex
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Integer

from .. import display as _display
from ..errors import JobLookupError, NbschedError, did_you_mean

if TYPE_CHECKING:
    from ..abc import Trigger
    from ..jobs import Job, Run
    from ..scheduler import Scheduler
    from .extension import _Loaded

__all__ = ["ScheduleMagics", "build_parsers", "HELP", "VERBS"]


# -- the parsers ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports problems as a one-line IPython ``UsageError`` instead of exiting
    the kernel."""

    def __init__(self, **kwargs: Any) -> None:  # forward everything (Python 3.14 adds color=)
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m and m.group(1).startswith("-"):
            message += did_you_mean(m.group(1), self._option_string_actions)
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(" ".join((message or f"{self.prog}: invalid arguments").split()))


def _add_when_options(p: _Parser) -> None:
    p.add_argument(
        "phrase",
        nargs="*",
        metavar="PHRASE",
        help='the schedule in words, quoted: "every weekday at 09:30", "every 5 minutes"',
    )
    when = p.add_argument_group("when (give exactly one)")
    when.add_argument("--every", metavar="DURATION", help="10s, 5m, 2h, 1d, 1h30m")
    when.add_argument("--cron", metavar="EXPR", help='crontab expression, quoted: "*/5 * * * *"')
    when.add_argument("--at", metavar="DATETIME", help='one run at an ISO time: "2026-12-01 09:00"')
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone, e.g. Europe/Paris")
    p.add_argument("--name", metavar="NAME", help="the job's name (its key in the store)")
    p.add_argument("--executor", choices=["thread", "process"], help="where runs happen")
    p.add_argument("--timeout", metavar="SECONDS", help="stop a run after this long: 30, 2m")
    p.add_argument(
        "--max-instances", metavar="N", help="runs of this job in flight at once (default 1)"
    )
    p.add_argument(
        "--misfire-grace", metavar="SECONDS", help="how late a run may start; later: missed"
    )
    p.add_argument(
        "--no-coalesce",
        action="store_true",
        help="after falling behind, run once per missed time (default: once in all)",
    )
    p.add_argument("--paused", action="store_true", help="add it paused (resume it later)")
    p.add_argument("--retries", metavar="N", help="retry a failed run N times (default 0)")
    p.add_argument("--retry-delay", metavar="SECONDS", help="wait between retries (default 0)")


def build_parsers() -> dict[str, _Parser]:
    """One parser per verb, plus ``"%%schedule"`` for the cell magic's line."""
    parsers: dict[str, _Parser] = {}

    def verb(name: str, description: str) -> _Parser:
        p = _Parser(prog=f"%schedule {name}", description=description)
        parsers[name] = p
        return p

    add = verb("add", "Schedule a function of this notebook or an importable function.")
    add.add_argument(
        "target",
        metavar="TARGET",
        help="a function in the namespace (fetch), 'package.module:function' or a notebook "
        "(report.ipynb, run whole in a kernel of its own)",
    )
    _add_when_options(add)
    add.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the function, or parameter of the notebook (repeatable)",
    )

    cell = _Parser(
        prog="%%schedule", description="Schedule the body of this cell; re-running updates it."
    )
    _add_when_options(cell)
    parsers["%%schedule"] = cell

    lst = verb("list", "The jobs of this notebook.")
    lst.add_argument("-a", "--all", action="store_true", help="every notebook's jobs")
    for name, what in (
        ("show", "Everything about one job, with its latest runs."),
        ("pause", "Stop firing a job (it keeps its schedule)."),
        ("resume", "Fire a paused job again."),
        ("remove", "Delete a job and its run history."),
        ("run", "Run a job now, wait for it, and show the run."),
        ("cancel", "Stop the run of a job that is in flight."),
    ):
        verb(name, what).add_argument("name", metavar="NAME", help="the job's name")
    logs = verb("logs", "What the latest runs printed (all jobs of this notebook if no NAME).")
    logs.add_argument("name", metavar="NAME", nargs="?", help="the job's name")
    logs.add_argument("-n", "--limit", metavar="N", default="5", help="how many runs (default 5)")
    verb("status", "The scheduler's state: running, healthy, store, notebook.")
    verb("panel", "The job panel (a table until the widget panel is installed).")
    verb("start", "Start the scheduler (when NbschedConfig.autostart is False).")
    hlp = verb("help", "Help on %schedule or on one of its commands.")
    hlp.add_argument("topic", metavar="COMMAND", nargs="?")
    return parsers


VERBS = "add list show pause resume remove run logs cancel status panel start help".split()

HELP = """\
%schedule -- run code on a schedule, in the background, from this notebook

Schedule the body of a cell (re-running the cell updates its job, never duplicates it):

    %%schedule --every 10s --name tick
    print("tick")

Schedule a function of this notebook, or an importable function:

    %schedule add fetch --every 5m
    %schedule add fetch "every weekday at 09:30" --tz Europe/Paris
    %schedule add mypkg.jobs:cleanup --cron "*/15 * * * *" --executor process
    %schedule add report --at "2026-12-01 09:00" -p region=emea -p days=7

When (exactly one):
    --every DURATION      10s, 5m, 2h, 1d, 1h30m
    --cron "EXPR"         crontab: "*/5 * * * *", "0 9 * * mon-fri", @daily
    --at DATETIME         one run: "2026-12-01 09:00" (ISO)
    "PHRASE"              "every 5 minutes", "daily at 09:00", "every monday at 8:00",
                          "in 10 minutes"
Options:
    --tz ZONE             IANA zone for cron/daily schedules (default: NbschedConfig.timezone)
    --name NAME           the job's name (default: the function's name; for a cell, the cell)
    --executor thread|process
                          thread (default) runs in this kernel and sees its variables;
                          process runs in a worker process that can be killed (timeouts)
    --timeout SECONDS     stop a run that takes longer (30, 2m); it is recorded timed_out
    --max-instances N     runs of this job allowed in flight at once (default 1)
    --misfire-grace SECONDS
                          a run that cannot start within this delay is recorded missed
    --no-coalesce         after falling behind, run once per missed time (default: once)
    --retries N           try a failed run again N times; --retry-delay SECONDS between
    --paused              add it paused; %schedule resume NAME starts it
    -p KEY=VALUE          keyword argument of the function
                          (VALUE is read as a Python literal when it is one: 3, 0.5, True)

Manage jobs:
    %schedule list [--all]     this notebook's jobs (--all: every notebook's)
    %schedule show NAME        everything about a job, with its latest runs
    %schedule pause NAME       stop firing it      %schedule resume NAME   fire it again
    %schedule run NAME         run it now and show the run
    %schedule logs [NAME] [-n N]
                               what the latest runs printed
    %schedule cancel NAME      stop its run in flight
    %schedule remove NAME      delete it and its history
    %schedule status           scheduler state, store, notebook
    %schedule panel            the job panel
    %schedule help COMMAND     options of one command (also: %schedule COMMAND --help)

Jobs belong to this notebook and persist in the store (NbschedConfig.db_url or
$NBSCHED_DB_URL). After a kernel restart, %load_ext nbsched restores them: cell jobs run at
once; a function job shows as "unbound" until the cell that defines the function runs again.
What a job prints goes to its run (see %schedule logs), never into the cell that is running.
"""


# -- value parsing ----------------------------------------------------------------------------

_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d)")


def _seconds(text: str, option: str) -> float:
    """``"30"``, ``"2.5"``, ``"30s"``, ``"2m"``, ``"1h30m"`` -> seconds (finite, ≥ 0)."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        parts = _DURATION.findall(raw)
        if not parts or _DURATION.sub("", raw).strip():
            raise UsageError(
                f"{option}: expected seconds or a duration like 30s, 2m, 1h30m; got {text!r}"
            ) from None
        value = sum(float(n) * _UNIT[u] for n, u in parts)
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{option}: expected a duration of 0 seconds or more, got {text!r}")
    return value


def _count(text: str, option: str, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"{option}: expected a whole number, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"{option}: expected a number ≥ {minimum}, got {value}")
    return value


def _param_value(text: str) -> Any:
    """A Python literal if ``text`` is one (and stores as JSON), else the text itself."""
    try:
        value = ast.literal_eval(text)
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return text
    return value


def _params(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"-p: expected KEY=VALUE with KEY a Python name, got {item!r}")
        out[key] = _param_value(value)
    return out


def _zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(name, zoneinfo.available_timezones())
        raise UsageError(
            f"--tz: unknown time zone {name!r}{hint}; use an IANA name like Europe/Paris"
        ) from None
    return name


def _check_name(name: str) -> str:
    if not name.strip() or name != name.strip() or name.startswith("-"):
        raise UsageError(
            f"--name: {name!r} is not a usable job name (non-empty, no surrounding spaces, "
            "not starting with '-')"
        )
    if any(not ch.isprintable() for ch in name):
        raise UsageError(f"--name: {name!r} contains control characters")
    if len(name) > 200:
        raise UsageError(f"--name: a job name has at most 200 characters, got {len(name)}")
    return name


# -- the magics -------------------------------------------------------------------------------


@magics_class
class ScheduleMagics(Magics):
    """``%schedule`` and ``%%schedule``: manage the jobs of the scheduler in this kernel."""

    table_limit = Integer(50, help="Most jobs shown by %schedule list (the rest are counted).").tag(
        config=True
    )

    _parsers = build_parsers()

    @no_var_expand  # "*/5" and {braces} stay literal
    @line_cell_magic
    def schedule(self, line: str, cell: str | None = None) -> object:
        try:
            argv = shlex.split(line, posix=True)
        except ValueError as exc:  # unbalanced quotes, a trailing backslash
            raise UsageError(f"%schedule: {exc} in {line.strip()!r}") from None
        if os.environ.get("NBSCHED_RUN") == "1" and (cell is not None or argv[:1] == ["add"]):
            # This notebook is itself running as a scheduled job (the notebook runner sets
            # NBSCHED_RUN=1 in its kernel): scheduling again from here would add a job per run.
            return _display.HelpText(
                "%schedule: skipped, no job added: this notebook is running as a scheduled "
                "job (NBSCHED_RUN=1)"
            )
        try:
            if cell is not None:
                return self._cell_job(argv, cell)
            return self._dispatch(argv)
        except NbschedError as exc:
            raise UsageError(" ".join(str(exc).split())) from exc

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, argv: list[str]) -> object:
        if not argv:
            return self._list(argparse.Namespace(all=False))
        verb, rest = argv[0], argv[1:]
        if verb in ("-h", "--help"):
            return _display.HelpText(HELP)
        if verb not in VERBS:
            if verb.startswith("-") or verb.lower().startswith("every"):
                raise UsageError(
                    f"%schedule needs a command first (add, list, ...), got {verb!r}; to "
                    "schedule the cell's body, use %%schedule (two %) on the first line"
                )
            hint = did_you_mean(verb, VERBS)
            raise UsageError(
                f"%schedule: unknown command {verb!r}{hint}; commands: {', '.join(VERBS)}"
            )
        if "-h" in rest or "--help" in rest:
            return self._help(verb)
        args = self._parsers[verb].parse_intermixed_args(rest)
        return _verb_handler(self, verb)(args)

    def _help(self, verb: str | None) -> _display.HelpText:
        if verb is None or verb == "help":
            return _display.HelpText(HELP)
        return _display.HelpText(self._parsers[verb].format_help())

    # -- state --------------------------------------------------------------------------------

    @property
    def _state(self) -> _Loaded:
        from .extension import loaded

        return loaded()

    @property
    def _sched(self) -> Scheduler:
        return self._state.scheduler

    def _now(self) -> float:
        clock = getattr(self._sched, "_clock", None)
        if clock is not None:
            return float(clock.time())
        import time

        return time.time()

    def _tz(self) -> Any:
        return getattr(self._sched, "timezone", None)

    def _own(self, name: str) -> Job:
        """This notebook's job ``name``; a helpful error when it is another notebook's."""
        sched = self._sched
        try:
            return sched.get_job(name)
        except JobLookupError:
            other = sched.store.get_job(name)
            if other is not None and other.owner != self._state.owner:
                raise UsageError(
                    f"Job {name!r} belongs to another notebook ({other.owner}); only the "
                    "kernel of that notebook can change it"
                ) from None
            raise

    # -- adding jobs --------------------------------------------------------------------------

    def _options(self, args: argparse.Namespace) -> dict[str, Any]:
        opts: dict[str, Any] = {"coalesce": not args.no_coalesce, "paused": args.paused}
        if args.executor:
            opts["executor"] = args.executor
        if args.timeout is not None:
            opts["timeout"] = _seconds(args.timeout, "--timeout")
            if opts["timeout"] <= 0:
                raise UsageError("--timeout: must be more than 0 seconds")
        if args.max_instances is not None:
            opts["max_instances"] = _count(args.max_instances, "--max-instances", 1)
        if args.misfire_grace is not None:
            opts["misfire_grace_time"] = _seconds(args.misfire_grace, "--misfire-grace")
        if args.retries is not None:
            opts["retries"] = _count(args.retries, "--retries", 0)
        if args.retry_delay is not None:
            if args.retries is None:
                raise UsageError("--retry-delay needs --retries N")
            opts["retry_delay"] = _seconds(args.retry_delay, "--retry-delay")
        return opts

    def _trigger(self, args: argparse.Namespace) -> Trigger:
        from ..triggers import parse_trigger

        phrase = " ".join(args.phrase).strip()
        given = [
            (flag, value)
            for flag, value in (
                ("--every", args.every),
                ("--cron", args.cron),
                ("--at", args.at),
                ("a phrase", phrase),
            )
            if value
        ]
        if len(given) != 1:
            got = f" (got {' and '.join(f for f, _ in given)})" if given else ""
            raise UsageError(
                'give exactly one schedule: --every DURATION, --cron "EXPR", --at DATETIME '
                f'or a quoted phrase like "every weekday at 09:30"{got}'
            )
        flag, value = given[0]
        tz = _zone(args.tz) if args.tz else (self._tz() or None)
        text = value.strip()
        if flag == "--every" and not text.lower().startswith("every"):
            text = f"every {text}"
        elif flag == "--cron" and not text.lower().startswith("cron "):
            text = f"cron {text}"
        elif flag == "--at" and not text.lower().startswith("at "):
            text = f"at {text}"
        try:
            trigger = parse_trigger(text, timezone=tz)
        except NbschedError as exc:
            label = "the phrase" if flag == "a phrase" else flag
            raise UsageError(f"{label}: {' '.join(str(exc).split())}") from None
        expected = {"--every": "interval", "--cron": "cron", "--at": "date"}.get(flag)
        if expected is not None and getattr(trigger, "type_name", expected) != expected:
            raise UsageError(
                f"{flag}: {value!r} reads as a {trigger.type_name} schedule "
                f"({trigger.describe()}), not a {expected} one"
            )
        return trigger

    def _result(self, job: Job, verb: str) -> _display.JobTable:
        fresh = self._sched.get_job(job.name)
        return _display.JobTable(
            [fresh], {}, self._now(), self._tz(), caption=f"{verb} job {job.name!r}"
        )

    def _cell_job(self, argv: list[str], cell: str) -> object:
        if argv and argv[0] in ("-h", "--help", "help"):
            return _display.HelpText(self._parsers["%%schedule"].format_help() + "\n" + HELP)
        if argv and argv[0] in VERBS:
            raise UsageError(
                f"%%schedule schedules the cell's body and takes only schedule options; "
                f"use the line magic for commands: %schedule {argv[0]} ..."
            )
        if not cell.strip():
            raise UsageError("%%schedule: the cell is empty, so there is nothing to schedule")
        args = self._parsers["%%schedule"].parse_intermixed_args(argv)
        if args.executor == "process":
            raise UsageError(
                "%%schedule: cell jobs run in this kernel's namespace, so only in threads; "
                "move the code into a function of a module to use --executor process"
            )
        state = self._state
        source = cell if cell.endswith("\n") else cell + "\n"
        name = _check_name(args.name) if args.name else None
        try:
            compile(source, "<%%schedule>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            hint = ""
            if any(ln.lstrip()[:1] in ("%", "!") for ln in source.splitlines()):
                hint = "; cell jobs are plain Python (no %magics or !commands)"
            raise UsageError(
                f"%%schedule: the cell has a syntax error on line {exc.lineno}: {exc.msg}{hint}"
            ) from None
        opts = self._options(args)
        trigger = self._trigger(args)
        if name is None:
            from .extension import cell_job_name

            name = cell_job_name(state.owner, self._cell_id(), source)
        from ..jobs import CellTarget

        existed = self._exists(name)
        job = self._sched.add_job(
            CellTarget(source), trigger, name=name, replace_existing=True, **opts
        )
        return self._result(job, "Updated" if existed else "Added")

    def _cell_id(self) -> str | None:
        """The front-end's id of the cell being run (JupyterLab, Notebook 7, VS Code send it
        as ``metadata.cellId`` of the execute request)."""
        cell_id = self._state.cell_id
        if cell_id:
            return cell_id
        kernel = getattr(self.shell, "kernel", None)
        try:
            parent = kernel.get_parent("shell") if kernel is not None else None
        except Exception:
            parent = None
        meta = parent.get("metadata") if isinstance(parent, dict) else None
        value = meta.get("cellId") if isinstance(meta, dict) else None
        return value if isinstance(value, str) and value else None

    def _exists(self, name: str) -> bool:
        try:
            self._sched.get_job(name)
        except JobLookupError:
            return False
        return True

    def _add(self, args: argparse.Namespace) -> object:
        opts = self._options(args)
        params = _params(args.params)
        target, default_name, kind = self._target(args.target)
        name = _check_name(args.name) if args.name else default_name
        if kind == "notebook":
            if "executor" in opts:
                raise UsageError(
                    "--executor: a notebook job always runs in a kernel of its own; drop it"
                )
            if params:
                opts["parameters"] = params
        elif params:
            opts["kwargs"] = params
        trigger = self._trigger(args)
        existed = self._exists(name)
        job = self._sched.add_job(target, trigger, name=name, replace_existing=True, **opts)
        return self._result(job, "Updated" if existed else "Added")

    def _target(self, text: str) -> tuple[str, str, str]:
        """(target for ``add_job``, default job name, kind) for ``add TARGET``."""
        text = text.strip()
        if text.lower().endswith(".ipynb"):
            path = Path(text).expanduser()
            if not path.is_absolute():
                path = Path.cwd() / path
            if not path.is_file():
                raise UsageError(f"No notebook at {str(path)!r}")
            return str(path.resolve()), path.stem, "notebook"
        if ":" in text:
            qualname = text.partition(":")[2]
            return text, qualname.rsplit(".", 1)[-1] or text, "callable"
        parts = text.split(".")
        if not all(p.isidentifier() for p in parts):
            raise UsageError(
                f"add: {text!r} is not a function name, 'package.module:function' or a .ipynb path"
            )
        ns = self.shell.user_ns if self.shell is not None else {}
        if parts[0] not in ns:
            names = [k for k, v in ns.items() if callable(v) and not k.startswith("_")]
            hint = did_you_mean(parts[0], names)
            raise UsageError(
                f"add: nothing named {parts[0]!r} in this notebook{hint}; define the function "
                "first, or give 'package.module:function'"
            )
        obj: Any = ns[parts[0]]
        for part in parts[1:]:
            if not hasattr(obj, part):
                raise UsageError(f"add: {'.'.join(parts[:-1])!r} has no attribute {part!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise UsageError(f"add: {text!r} is a {type(obj).__name__}, not a function")
        ref = _importable_ref(obj)
        if ref is not None:
            return ref, parts[-1], "callable"
        if len(parts) > 1:
            raise UsageError(
                f"add: {text!r} cannot be found again after a restart; schedule a top-level "
                "function of the notebook or of a module"
            )
        return f"__main__:{text}", text, "callable"

    # -- the other verbs ----------------------------------------------------------------------

    def _last_runs(self, jobs: Sequence[Job], all_owners: bool) -> dict[str, Run | None]:
        sched = self._sched
        mine = {j.name for j in sched.get_jobs()}
        out: dict[str, Run | None] = {}
        for job in jobs:
            if job.name in mine:
                runs = sched.get_runs(job.name, limit=1)
            elif all_owners:
                from ..abc import ALL_OWNERS

                runs = sched.store.get_runs(job.name, owner=ALL_OWNERS, limit=1)
            else:
                runs = []
            out[job.name] = runs[0] if runs else None
        return out

    def _list(self, args: argparse.Namespace) -> _display.JobTable:
        jobs = self._sched.get_jobs(all_owners=bool(args.all))
        limit = max(1, int(self.table_limit))
        shown, more = jobs[:limit], max(0, len(jobs) - limit)
        caption = "Jobs of every notebook" if args.all else ""
        return _display.JobTable(
            shown,
            self._last_runs(shown, bool(args.all)),
            self._now(),
            self._tz(),
            show_owner=bool(args.all),
            caption=caption,
            more=more,
        )

    def _show(self, args: argparse.Namespace) -> _display.JobDetail:
        sched = self._sched
        try:
            job = sched.get_job(args.name)
            runs = sched.get_runs(args.name, limit=5)
        except JobLookupError:
            other = sched.store.get_job(args.name)
            if other is None:
                raise
            from ..abc import ALL_OWNERS

            job, runs = other, sched.store.get_runs(args.name, owner=ALL_OWNERS, limit=5)
        return _display.JobDetail(job, runs, self._now(), self._tz())

    def _pause(self, args: argparse.Namespace) -> _display.JobTable:
        self._own(args.name)
        return self._result(self._sched.pause_job(args.name), "Paused")

    def _resume(self, args: argparse.Namespace) -> _display.JobTable:
        self._own(args.name)
        return self._result(self._sched.resume_job(args.name), "Resumed")

    def _remove(self, args: argparse.Namespace) -> _display.HelpText:
        self._own(args.name)
        self._sched.remove_job(args.name)
        return _display.HelpText(f"Removed job {args.name!r} and its run history.")

    def _run(self, args: argparse.Namespace) -> _display.RunLog:
        job = self._own(args.name)
        if job.unbound:
            ref = job.target.partition(":")[2] or job.target
            raise UsageError(
                f"Job {job.name!r} is unbound: {ref!r} is not defined in this kernel yet; "
                "run the cell that defines it first"
            )
        run = self._sched.run_job(args.name)
        return _display.RunLog([run], self._now(), self._tz(), caption=f"Ran {args.name!r} now")

    def _cancel(self, args: argparse.Namespace) -> _display.HelpText | _display.RunLog:
        self._own(args.name)
        run = self._sched.cancel_run(args.name)
        if run is None:
            return _display.HelpText(f"Job {args.name!r} has no run in flight.")
        return _display.RunLog([run], self._now(), self._tz(), caption="Cancelled")

    def _logs(self, args: argparse.Namespace) -> _display.RunLog:
        limit = _count(args.limit, "--limit", 1)
        if args.name is not None:
            self._own(args.name)
        runs = self._sched.get_runs(args.name, limit=limit)
        caption = f"Latest runs of {args.name!r}" if args.name else "Latest runs"
        return _display.RunLog(runs, self._now(), self._tz(), caption=caption)

    def _status(self, args: argparse.Namespace) -> _display.StatusView:
        from .. import __version__
        from . import output as _output

        info = dict(self._sched.status())
        info["nbsched"] = __version__
        info["job output"] = _output.mode()
        return _display.StatusView(info, self._now(), self._tz())

    def _panel(self, args: argparse.Namespace) -> object:
        try:
            from .panel import SchedulerPanel
        except ImportError:
            table = self._list(argparse.Namespace(all=False))
            return _display.JobTable(
                table.jobs,
                table.last_runs,
                table.now,
                table.tz,
                caption="The interactive panel is not installed yet; here is %schedule list",
                more=table.more,
            )
        return SchedulerPanel(self._sched)

    def _start(self, args: argparse.Namespace) -> _display.StatusView:
        from . import output as _output

        self._sched.start()
        _output.install(self._state.shell)  # the proxies appear on start
        return self._status(args)

    def _help_verb(self, args: argparse.Namespace) -> _display.HelpText:
        topic = args.topic
        if topic is not None and topic not in VERBS:
            raise UsageError(
                f"%schedule help: unknown command {topic!r}{did_you_mean(topic, VERBS)}"
            )
        return self._help(topic)

    schedule.__doc__ = HELP


# ``getattr(self, "_help")`` is the help *formatter*; the verb handler needs its own name.
def _verb_handler(magics: ScheduleMagics, verb: str) -> Callable[[argparse.Namespace], object]:
    handler: Callable[[argparse.Namespace], object] = (
        magics._help_verb if verb == "help" else getattr(magics, f"_{verb}")
    )
    return handler


def _importable_ref(obj: Any) -> str | None:
    """``"module:qualname"`` if importing it gives back ``obj`` (so it binds after a restart
    without re-running a cell), else ``None``."""
    module = getattr(obj, "__module__", None)
    if not module or module == "__main__":
        return None
    from ..targets import callable_to_ref, ref_to_callable

    try:
        ref = callable_to_ref(obj)
        return ref if ref_to_callable(ref) is obj else None
    except Exception:
        return None
