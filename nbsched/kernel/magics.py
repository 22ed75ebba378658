"""``%schedule`` / ``%%schedule``: manage the jobs of the scheduler running in this kernel.

The magic splits its line with ``shlex`` and dispatches to one method per verb (``_add``,
``_list``, ...); the parsers, the help text and the mapping of flags to ``add_job``
arguments live in :mod:`nbsched.kernel.parsing`. Verbs return displayable objects
(``nbsched.display``) and never print; each ``%schedule`` line of a cell shows its answer
(IPython would show only the last line's). Another notebook's jobs can be read, paused,
resumed, removed or adopted (``owners``); only a kernel of its notebook runs one. An
``NbschedError`` from the scheduler becomes a plain one-line ``UsageError`` (ipython#14024:
subclasses print a full traceback), with "did you mean" for misspelt verbs and job names.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.display import display
from traitlets import Integer

from .. import display as _display
from .._version import __version__
from ..errors import JobLookupError, NbschedError, did_you_mean
from ..jobs import CellTarget, RunStatus
from . import output as _output
from . import owners, runlogs
from .cells import cell_job_name, resolve_target
from .parsing import (
    HELP,
    VERBS,
    build_parsers,
    build_trigger,
    job_name,
    job_options,
    join_dash_values,
    parse_count,
    parse_params,
)
from .state import Loaded, loaded

if TYPE_CHECKING:
    from ..abc import Trigger
    from ..jobs import Job, Run
    from ..scheduler import Scheduler

__all__ = ["ScheduleMagics", "HELP", "VERBS"]


@magics_class
class ScheduleMagics(Magics):
    """``%schedule`` and ``%%schedule``: manage the jobs of the scheduler in this kernel."""

    table_limit = Integer(50, help="Most jobs shown by %schedule list (the rest are counted).").tag(
        config=True
    )

    _parsers = build_parsers()
    _argv: list[str] = []  # the line being run, split (for errors that quote an option)

    @no_var_expand  # "*/5" and {braces} stay literal
    @line_cell_magic
    def schedule(self, line: str, cell: str | None = None) -> object:
        try:
            # comments=True: a trailing "# comment" ends the line, as in Python (not in quotes)
            argv = shlex.split(line, comments=True, posix=True)
        except ValueError as exc:  # unbalanced quotes, a trailing backslash
            raise UsageError(f"%schedule: {exc} in {line.strip()!r}") from None
        self._argv = argv
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
            return self._answer(self._dispatch(argv))
        except NbschedError as exc:
            raise UsageError(" ".join(str(exc).split())) from exc

    def _answer(self, result: object) -> object:
        """``result`` for the displayhook when this is the cell's last line; otherwise shown
        now, since IPython displays only the value of a cell's last line and every
        ``%schedule`` line of a cell should say what it did."""
        state = self._state
        source = state.cell_source
        if not source:
            return result
        lines = [ln.strip() for ln in source.splitlines()]
        magic_lines = sum(1 for ln in lines if ln.startswith("%schedule"))
        code = [ln for ln in lines if ln and not ln.startswith("#")]
        last_is_magic = bool(code) and code[-1].startswith("%schedule")
        state.cell_calls += 1
        if state.cell_calls < magic_lines or (
            state.cell_calls == magic_lines and not last_is_magic
        ):
            display(result)  # type: ignore[no-untyped-call]
            return None
        return result

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, argv: list[str]) -> object:
        if not argv:
            return self._list(self._parsers["list"].parse_args([]))
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
            return self._help_text(verb)
        if verb == "add" and not rest:
            raise UsageError(
                "%schedule add needs what to run and when: %schedule add FUNC --every 5m "
                '(or --cron "EXPR", --at DATETIME, or a quoted phrase like "daily at 09:00")'
            )
        parser = self._parsers[verb]
        args = parser.parse_intermixed_args(join_dash_values(rest, parser))
        handler: Callable[[argparse.Namespace], object] = getattr(self, f"_{verb}")
        return handler(args)

    def _help_text(self, verb: str | None) -> _display.HelpText:
        if verb is None or verb == "help":
            return _display.HelpText(HELP)
        return _display.HelpText(self._parsers[verb].format_help())

    # -- state --------------------------------------------------------------------------------

    @property
    def _state(self) -> Loaded:
        return loaded()

    @property
    def _sched(self) -> Scheduler:
        return self._state.scheduler

    def _now(self) -> float:
        # the scheduler's clock, so that a fake clock in tests shows fake "in 4 s" times
        return float(self._sched.clock.time())

    def _tz(self) -> Any:
        return getattr(self._sched, "timezone", None)

    def _own(self, name: str, verb: str) -> Job:
        """This notebook's job ``name``; a helpful error when it is another notebook's (only a
        kernel of a job's notebook runs it)."""
        found = owners.find(self._sched, name)
        if found.foreign:
            raise UsageError(
                f"Job {name!r} is a job of {owners.owner_label(found.job)}: only a kernel of "
                f"that notebook can {verb} it; %schedule adopt {name} makes it this notebook's"
            )
        return found.job

    def _typed(self, *spellings: str) -> str:
        """Which spelling of an option the user typed (``-n`` or ``--limit``), for errors."""
        for token in self._argv:
            for spelling in spellings:
                if token == spelling or token.startswith(spelling + "="):
                    return spelling
                if not spelling.startswith("--") and token.startswith(spelling):
                    return spelling  # -n5
        return spellings[-1]

    # -- adding jobs --------------------------------------------------------------------------

    def _result(self, job: Job, verb: str, caption: str = "") -> _display.JobTable:
        fresh = self._sched.get_job(job.name)
        return _display.JobTable(
            [fresh], {}, self._now(), self._tz(), caption=caption or f"{verb} job {job.name!r}"
        )

    def _put(
        self, target: Any, trigger: Trigger, name: str, opts: dict[str, Any], replace: bool
    ) -> _display.JobTable:
        """Add or update this notebook's job ``name``. A job made by another cell (the front
        end's cell id tells) is replaced only with ``--replace``; an update says what
        changed."""
        state = self._state
        old = self._existing(name)
        if old is None:
            other = self._sched.store.get_job(name)
            if other is not None:
                raise UsageError(
                    f"A job named {name!r} is a job of {owners.owner_label(other)}; give "
                    f"--name to add another job, or take it over with %schedule adopt {name}"
                )
        maker = state.made_by.get(name)
        cell_id = self._cell_id()
        other_cell = old is not None and None not in (maker, cell_id) and maker != cell_id
        if other_cell and not replace:
            assert old is not None
            raise UsageError(
                f"A job named {name!r} ({old.schedule}) was made by another cell; give "
                f"--name to add another job, or --replace to replace it"
            )
        job = self._sched.add_job(target, trigger, name=name, replace_existing=True, **opts)
        if cell_id is not None:
            state.made_by[name] = cell_id
        if old is None:
            return self._result(job, "Added")
        changes = _display.job_changes(old, self._sched.get_job(name))
        verb = "Replaced" if other_cell else "Updated"
        if not changes:
            return self._result(job, verb, f"Job {name!r} is unchanged")
        return self._result(job, verb, f"{verb} job {name!r}: " + "; ".join(changes))

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
        parser = self._parsers["%%schedule"]
        args = parser.parse_intermixed_args(join_dash_values(argv, parser))
        if args.executor == "process":
            raise UsageError(
                "%%schedule: cell jobs run in this kernel's namespace, so only in threads; "
                "move the code into a function of a module to use --executor process"
            )
        state = self._state
        source = cell if cell.endswith("\n") else cell + "\n"
        name = job_name(args)
        try:
            compile(source, "<%%schedule>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            hint = ""
            if any(ln.lstrip()[:1] in ("%", "!") for ln in source.splitlines()):
                hint = "; cell jobs are plain Python (no %magics or !commands)"
            raise UsageError(
                f"%%schedule: the cell has a syntax error on line {exc.lineno}: {exc.msg}{hint}"
            ) from None
        opts = job_options(args)
        trigger = build_trigger(args, self._tz())
        if name is None:
            name = cell_job_name(state.owner, self._cell_id(), source)
        return self._put(CellTarget(source), trigger, name, opts, args.replace)

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

    def _existing(self, name: str) -> Job | None:
        try:
            return self._sched.get_job(name)
        except JobLookupError:
            return None

    def _add(self, args: argparse.Namespace) -> object:
        opts = job_options(args)
        params = parse_params(args.params)
        ns = self.shell.user_ns if self.shell is not None else {}
        target, default_name, kind = resolve_target(args.target, ns)
        name = job_name(args) or default_name
        if kind == "notebook":
            if "executor" in opts:
                raise UsageError(
                    "--executor: a notebook job always runs in a kernel of its own; drop it"
                )
            if params:
                opts["parameters"] = params
        elif params:
            opts["kwargs"] = params
        trigger = build_trigger(args, self._tz())
        return self._put(target, trigger, name, opts, args.replace)

    # -- the other verbs ----------------------------------------------------------------------

    def _last_runs(self, jobs: Sequence[Job]) -> dict[str, Run | None]:
        return dict(self._sched.last_runs([j.name for j in jobs]))

    def _list(self, args: argparse.Namespace) -> _display.JobTable:
        jobs = self._sched.get_jobs(all_owners=bool(args.all))
        patterns = [p for p in (args.pattern, args.name) if p]
        jobs = [j for j in jobs if all(fnmatch.fnmatchcase(j.name, p) for p in patterns)]
        last = self._last_runs(jobs)
        if args.state:
            jobs = [j for j in jobs if _in_state(j, last.get(j.name), args.state)]
        limit = max(1, int(self.table_limit))
        shown, more = jobs[:limit], max(0, len(jobs) - limit)
        caption = "Jobs of every notebook" if args.all else ""
        return _display.JobTable(
            shown,
            last,
            self._now(),
            self._tz(),
            show_owner=bool(args.all),
            caption=caption,
            more=more,
        )

    def _show(self, args: argparse.Namespace) -> _display.JobDetail:
        job = owners.find(self._sched, args.name).job
        return _display.JobDetail(job, runlogs.runs_of(self._sched, job, 5), self._now(), self._tz())

    def _foreign_caption(self, verb: str, job: Job) -> str:
        return (
            f"{verb} {job.name!r} (a job of {owners.owner_label(job)}; its kernel picks the "
            "change up through the store)"
        )

    def _pause(self, args: argparse.Namespace) -> _display.JobTable:
        found = owners.find(self._sched, args.name)
        if not found.foreign:
            return self._result(self._sched.pause_job(args.name), "Paused")
        job = owners.pause(self._sched, found.job)
        return self._foreign_table(job, self._foreign_caption("Paused", job))

    def _resume(self, args: argparse.Namespace) -> _display.JobTable:
        found = owners.find(self._sched, args.name)
        if not found.foreign:
            return self._result(self._sched.resume_job(args.name), "Resumed")
        job = owners.resume(self._sched, found.job, self._now())
        return self._foreign_table(job, self._foreign_caption("Resumed", job))

    def _foreign_table(self, job: Job, caption: str) -> _display.JobTable:
        return _display.JobTable(
            [job], {}, self._now(), self._tz(), show_owner=True, caption=caption
        )

    def _remove(self, args: argparse.Namespace) -> _display.HelpText:
        found = owners.find(self._sched, args.name)
        if not found.foreign:
            self._sched.remove_job(args.name)
            return _display.HelpText(f"Removed job {args.name!r} and its run history.")
        owners.remove(self._sched, found.job)
        return _display.HelpText(
            self._foreign_caption("Removed", found.job) + "; its run history is deleted."
        )

    def _adopt(self, args: argparse.Namespace) -> _display.JobTable:
        found = owners.find(self._sched, args.name)
        if not found.foreign:
            return self._result(found.job, "", f"Job {args.name!r} is this notebook's already")
        job = owners.adopt(self._sched, found.job)
        note = " (unbound: run the cell that defines its function)" if job.unbound else ""
        return self._result(
            job, "", f"Adopted job {args.name!r} from {owners.owner_label(found.job)}{note}"
        )

    def _run(self, args: argparse.Namespace) -> _display.RunLog:
        job = self._own(args.name, "run")
        if job.unbound:
            ref = job.target.partition(":")[2] or job.target
            raise UsageError(
                f"Job {job.name!r} is unbound: {ref!r} is not defined in this kernel yet; "
                "run the cell that defines it first"
            )
        run = self._sched.run_job(args.name)
        return _display.RunLog([run], self._now(), self._tz(), caption=f"Ran {args.name!r} now")

    def _cancel(self, args: argparse.Namespace) -> _display.HelpText | _display.RunLog:
        self._own(args.name, "cancel a run of")
        run = self._sched.cancel_run(args.name)
        if run is None:
            return _display.HelpText(f"Job {args.name!r} has no run in flight.")
        return _display.RunLog([run], self._now(), self._tz(), caption="Cancelled")

    def _logs(self, args: argparse.Namespace) -> _display.RunLog:
        limit = parse_count(args.limit, self._typed("-n", "--limit"), 1)
        return runlogs.logs(self._sched, args.name, limit, self._now(), self._tz())

    def _status(self, args: argparse.Namespace) -> _display.StatusView:
        info = dict(self._sched.status())
        info["nbsched"] = __version__
        info["job output"] = _output.mode()
        return _display.StatusView(info, self._now(), self._tz())

    def _panel(self, args: argparse.Namespace) -> object:
        # imported here: the panel needs ipywidgets, which only this verb does (the job
        # table stands in where it is missing)
        from ..panel import show

        return show(self._sched)

    def _start(self, args: argparse.Namespace) -> _display.StatusView:
        self._sched.start()
        _output.install(self._state.shell)  # the proxies appear on start
        return self._status(args)

    def _help(self, args: argparse.Namespace) -> _display.HelpText:
        topic = args.topic
        if topic is not None and topic not in VERBS:
            raise UsageError(
                f"%schedule help: unknown command {topic!r}{did_you_mean(topic, VERBS)}"
            )
        return self._help_text(topic)

    schedule.__doc__ = HELP


_FAILED = (RunStatus.failed, RunStatus.timed_out, RunStatus.crashed)


def _in_state(job: Job, last: Run | None, state: str) -> bool:
    """Whether ``job`` (whose newest run is ``last``) is in ``state`` (``list --state``)."""
    if state == "failing":
        return last is not None and last.status in _FAILED
    if state == "running":
        return last is not None and last.status is RunStatus.running
    if state == "unbound":
        return bool(job.unbound)
    if state == "paused":
        return bool(job.paused and not job.unbound)
    if state == "finished":
        return not job.paused and not job.unbound and job.next_run_time is None
    return not job.paused and not job.unbound and job.next_run_time is not None
