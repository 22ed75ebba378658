"""``%schedule`` / ``%%schedule``: manage the jobs of the scheduler running in this kernel.

The magic splits its line with ``shlex`` and dispatches to one method per verb (``_add``,
``_list``, ...); the parsers, the help text and the mapping of flags to ``add_job``
arguments live in :mod:`nbsched.kernel.parsing`. Verbs return displayable objects
(``nbsched.display``) and never print. An ``NbschedError`` from the scheduler becomes a
plain one-line ``UsageError`` (ipython#14024: subclasses print a full traceback), with "did
you mean" for misspelt verbs and job names.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Integer

from .. import display as _display
from .._version import __version__
from ..abc import ALL_OWNERS
from ..errors import JobLookupError, NbschedError, did_you_mean
from ..jobs import CellTarget
from . import output as _output
from .cells import cell_job_name, resolve_target
from .parsing import (
    HELP,
    VERBS,
    build_parsers,
    build_trigger,
    job_name,
    job_options,
    parse_count,
    parse_params,
)
from .state import Loaded, loaded

if TYPE_CHECKING:
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

    @no_var_expand  # "*/5" and {braces} stay literal
    @line_cell_magic
    def schedule(self, line: str, cell: str | None = None) -> object:
        try:
            argv = shlex.split(line, posix=True)
        except ValueError as exc:  # unbalanced quotes, a trailing backslash
            raise UsageError(f"%schedule: {exc} in {line.strip()!r}") from None
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
            return self._help_text(verb)
        args = self._parsers[verb].parse_intermixed_args(rest)
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
        clock = getattr(self._sched, "_clock", None)
        return float(clock.time()) if clock is not None else time.time()

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
        existed = self._exists(name)
        job = self._sched.add_job(target, trigger, name=name, replace_existing=True, **opts)
        return self._result(job, "Updated" if existed else "Added")

    # -- the other verbs ----------------------------------------------------------------------

    def _last_runs(self, jobs: Sequence[Job], all_owners: bool) -> dict[str, Run | None]:
        sched = self._sched
        mine = {j.name for j in sched.get_jobs()}
        out: dict[str, Run | None] = {}
        for job in jobs:
            if job.name in mine:
                runs = sched.get_runs(job.name, limit=1)
            elif all_owners:
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
        limit = parse_count(args.limit, "--limit", 1)
        if args.name is not None:
            self._own(args.name)
        runs = self._sched.get_runs(args.name, limit=limit)
        caption = f"Latest runs of {args.name!r}" if args.name else "Latest runs"
        return _display.RunLog(runs, self._now(), self._tz(), caption=caption)

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
