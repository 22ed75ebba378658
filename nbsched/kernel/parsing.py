"""The ``%schedule`` command line: parsers, help text, and flags turned into ``add_job``
arguments.

Parsing: ``shlex.split`` (POSIX, so quotes are removed and ``"*/5 * * * *"`` is one
argument; done by the magic) fed to small :class:`argparse.ArgumentParser` subclasses that
raise IPython's ``UsageError`` instead of exiting. IPython's ``magic_arguments`` is not
used: it keeps quote characters and cannot express verbs.

Every mistake is a **plain** ``UsageError`` (ipython#14024 prints a full traceback for
subclasses) with a one-line message, with "did you mean" for misspelt options and zones.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any, NoReturn

from IPython.core.error import UsageError

from ..abc import Trigger
from ..errors import NbschedError, did_you_mean
from ..jobs import check_name
from ..triggers import parse_trigger
from ..triggers.durations import parse_duration
from ..triggers.zones import check_zone, zone_name

__all__ = [
    "HELP",
    "STATES",
    "VERBS",
    "build_parsers",
    "build_trigger",
    "job_name",
    "job_options",
    "join_dash_values",
    "parse_count",
    "parse_params",
]


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
        default=[],  # optional: without a default argparse calls a "*" positional required
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
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace a job of the same name that another cell made",
    )


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
    lst.add_argument(
        "pattern", metavar="PATTERN", nargs="?", help="only names matching this glob: 'etl*'"
    )
    lst.add_argument("-a", "--all", action="store_true", help="every notebook's jobs")
    lst.add_argument(
        "--state", choices=STATES, help="only jobs in this state (running: a run in flight)"
    )
    lst.add_argument("--name", metavar="PATTERN", help="only names matching this glob")
    for name, what in (
        ("show", "Everything about one job, with its latest runs."),
        ("pause", "Stop firing a job (it keeps its schedule)."),
        ("resume", "Fire a paused job again."),
        ("remove", "Delete a job and its run history."),
        ("run", "Run a job now, wait for it, and show the run."),
        ("cancel", "Stop the run of a job that is in flight."),
    ):
        verb(name, what).add_argument("name", metavar="NAME", help="the job's name")
    verb("adopt", "Make another notebook's job this notebook's (after a rename).").add_argument(
        "name", metavar="NAME", help="the job's name"
    )
    logs = verb("logs", "What the latest runs printed (all jobs of this notebook if no NAME).")
    logs.add_argument("name", metavar="NAME", nargs="?", help="the job's name")
    logs.add_argument("-n", "--limit", metavar="N", default="5", help="how many runs (default 5)")
    verb("status", "The scheduler's state: running, healthy, store, notebook.")
    verb("panel", "The live job panel (widgets; a table where ipywidgets is missing).")
    verb("start", "Start the scheduler (when NbschedConfig.autostart is False).")
    hlp = verb("help", "Help on %schedule or on one of its commands.")
    hlp.add_argument("topic", metavar="COMMAND", nargs="?")
    return parsers


VERBS = "add list show pause resume remove adopt run logs cancel status panel start help".split()

#: what ``%schedule list --state`` filters on
STATES = ("active", "paused", "unbound", "failing", "running", "finished")

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
    --replace             replace a job of that name that another cell made
    -p KEY=VALUE          keyword argument of the function, or parameter of the notebook
                          (VALUE is read as a Python literal when it is one: 3, 0.5, True)

Manage jobs:
    %schedule list [PATTERN] [--all] [--state S]
                               this notebook's jobs (--all: every notebook's); PATTERN: a
                               glob on names; S: active, paused, unbound, failing,
                               running or finished
    %schedule show NAME        everything about a job, with its latest runs
    %schedule pause NAME       stop firing it      %schedule resume NAME   fire it again
    %schedule run NAME         run it now and show the run
    %schedule logs [NAME] [-n N]
                               what the latest runs printed
    %schedule cancel NAME      stop its run in flight
    %schedule remove NAME      delete it and its history
    %schedule adopt NAME       make another notebook's job this one's (a renamed notebook)
    %schedule status           scheduler state, store, notebook
    %schedule panel            the job panel
    %schedule help COMMAND     options of one command (also: %schedule COMMAND --help)

Jobs belong to this notebook and persist in the store (NbschedConfig.db_url or
$NBSCHED_DB_URL). After a kernel restart, %load_ext nbsched restores them: cell jobs run at
once; a function job shows as "unbound" until the cell that defines the function runs again.
Any kernel can show, pause, resume or remove another notebook's job; only a kernel of its
notebook runs it. A line may end with a # comment.
What a job prints goes to its run (see %schedule logs), never into the cell that is running.
"""


# -- value parsing ----------------------------------------------------------------------------


def _seconds(text: str, option: str) -> float:
    """``"30"``, ``"2.5"``, ``"30s"``, ``"2 mins"``, ``"1h30m"`` -> seconds (≥ 0), in the
    grammar of :func:`nbsched.triggers.durations.parse_duration`."""
    try:
        return parse_duration(text)
    except NbschedError as exc:
        raise UsageError(f"{option}: {exc}") from None


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
        return zone_name(check_zone(name))  # the one zone check (nbsched.triggers.zones)
    except NbschedError as exc:
        raise UsageError(f"--tz: {exc}") from None


def _check_name(name: str) -> str:
    try:
        return check_name(name)  # the one job-name rule (nbsched.jobs)
    except NbschedError as exc:
        raise UsageError(f"--name: {exc}") from None


# -- flags to add_job arguments ---------------------------------------------------------------


def parse_count(text: str, option: str, minimum: int) -> int:
    """A whole number ≥ ``minimum`` given to ``option``.

    :raises UsageError: anything else
    """
    return _count(text, option, minimum)


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` options as keyword arguments (values read as Python literals when
    they are one).

    :raises UsageError: an item is not ``KEY=VALUE`` with ``KEY`` a Python name
    """
    return _params(items)


def job_name(args: argparse.Namespace) -> str | None:
    """The ``--name`` given, checked; ``None`` when there is none.

    :raises UsageError: not a usable job name
    """
    return None if args.name is None else _check_name(args.name)


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``add_job`` keyword arguments of the options in ``args`` (timeouts, retries, ...).

    :raises UsageError: a bad value
    """
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


#: flag -> (how its text may already start, what to put in front otherwise)
_PREFIX = {"--every": ("every", "every "), "--cron": ("cron ", "cron "), "--at": ("at ", "at ")}
_EXPECTED = {"--every": "interval", "--cron": "cron", "--at": "date"}


def build_trigger(args: argparse.Namespace, default_tz: tzinfo | str | None) -> Trigger:
    """The trigger of ``--every``, ``--cron``, ``--at`` or the quoted phrase (exactly one),
    in ``--tz`` or else ``default_tz``.

    :raises UsageError: none or several given, or one that does not parse
    """
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
    if flag == "--every" and value.strip().startswith("-"):
        raise UsageError(
            f"--every: {value.strip()!r} is negative; give the time between runs, e.g. 5s, 10m"
        )
    tz = _zone(args.tz) if args.tz else (default_tz or None)
    text = value.strip()
    if flag in _PREFIX:
        starts, prefix = _PREFIX[flag]
        text = text if text.lower().startswith(starts) else prefix + text
    try:
        trigger = parse_trigger(text, timezone=tz)
    except NbschedError as exc:
        label = "the phrase" if flag == "a phrase" else flag
        raise UsageError(f"{label}: {' '.join(str(exc).split())}") from None
    expected = _EXPECTED.get(flag)
    if expected is not None and getattr(trigger, "type_name", expected) != expected:
        raise UsageError(
            f"{flag}: {value!r} reads as a {trigger.type_name} schedule "
            f"({trigger.describe()}), not a {expected} one"
        )
    return trigger


def join_dash_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--every -5s`` as ``--every=-5s``: argparse reads a value that starts with ``-`` as
    an option and says only "expected one argument"; joined, the value reaches the check
    that can say what is wrong with it."""
    options = parser._option_string_actions
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        action = options.get(token)
        takes_value = action is not None and action.nargs is None and action.const is None
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if takes_value and nxt is not None and nxt.startswith("-") and nxt not in options:
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out
