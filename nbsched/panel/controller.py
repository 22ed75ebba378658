"""The panel's moving parts: scheduler events in, refreshes and button actions out.

:class:`PanelController` listens to every scheduler event, but an event only records what it
says (:class:`~.runbook.RunBook`) and, if nothing was pending, wakes the refresher. The
refresher is one ``nbsched-panel`` thread: it renders at most once per ``min_interval`` after
a change and once per ``tick`` anyway (countdowns move), so 1,000 runs a second cost the
kernel a few dict updates per run and the front end one update per visible row a second. Updates come
from that thread, not from the kernel's shell thread, so the panel keeps moving while a long
cell runs (publishing on IOPub from another thread is safe: ipykernel#149).

Clicks arrive on the shell thread, and only while the kernel is idle (ipywidgets#1349: comm
messages queue behind a running cell). Quick actions (pause, resume, remove) call the
scheduler directly; ``Run now`` and ``Cancel`` wait for a run to end, so they run on their
own short-lived thread and report into the status line, leaving the kernel free.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .. import _exits
from ..display import JobTable, fmt_duration
from ..errors import NbschedError
from ..events import Event, SchedulerStopped
from ..jobs import Run, RunStatus
from .runbook import RunBook
from .state import PanelState, Throttle, snapshot
from .view import PanelView

if TYPE_CHECKING:
    from ..abc import Clock
    from ..scheduler import Scheduler

__all__ = ["PanelController", "SchedulerPanel"]

log = logging.getLogger("nbsched.panel")

#: how many stored runs to read once, at the start, for the jobs' last results
_SEED_RUNS = 500


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, NbschedError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class PanelController:
    """Keeps a :class:`PanelView` up to date with a scheduler and carries out its clicks.

    :param scheduler: the scheduler shown (held weakly)
    :param view: the widgets
    :param clock: the scheduler's time source, for countdowns (default: the system time)
    :param throttle: when to refresh (default: once a second, sooner never)
    :param max_rows: jobs shown in the table at most
    :param start: start the refresher thread (tests drive :meth:`poll` themselves)
    """

    def __init__(
        self,
        scheduler: Scheduler,
        view: PanelView,
        *,
        clock: Clock | None = None,
        throttle: Throttle | None = None,
        max_rows: int = 20,
        start: bool = True,
    ) -> None:
        self._sched = weakref.ref(scheduler)
        self._tz = scheduler.timezone
        self._clock = clock
        self.view = view
        self.throttle = throttle or Throttle(1.0, 1.0)
        self.max_rows = max_rows
        self.book = RunBook()
        self.query = ""
        self.state_filter = "all"
        self.selected: str | None = None
        #: the last state rendered
        self.state: PanelState | None = None
        #: how many times the view was rendered
        self.renders = 0
        self._cond = threading.Condition()
        self._render_lock = threading.RLock()
        self._stopped = False
        self._closed = False
        self._workers: set[threading.Thread] = set()
        self._note: tuple[str, bool] | None = None  # a background action's outcome, to show
        # Listen before reading the history: a run that ends in between is then not lost.
        self._unlisten = scheduler.add_listener(self._on_event)
        self.book.seed(scheduler.get_runs(limit=_SEED_RUNS))
        # Schedulers with ``last_runs(names)`` answer "each job's newest run" in one query,
        # which the history above cannot for jobs that last ran long ago.
        last_runs = getattr(scheduler, "last_runs", None)
        if callable(last_runs):
            self.book.seed_last(last_runs([job.name for job in scheduler.get_jobs()]))
        self._unexit = _exits.on_exit(self.stop)
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._loop, name="nbsched-panel", daemon=True)
            self._thread.start()

    # -- time -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        # Runs on whatever thread emitted the event (worker threads, the loop): keep it cheap.
        self.book.on_event(event)
        if isinstance(event, SchedulerStopped):
            self.stop()  # the kernel is going away (unload, shutdown): no more refreshes
            return
        if not self.throttle.dirty:
            self._wake()

    def _wake(self) -> None:
        with self._cond:
            self.throttle.mark()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self.throttle.wait_time(time.monotonic())
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
            self.poll(time.monotonic())

    def poll(self, now: float) -> bool:
        """Refresh if the throttle says one is due at ``now`` (monotonic seconds for the
        thread; any clock for tests). Returns whether it refreshed."""
        if self._stopped or self.throttle.wait_time(now) > 0:
            return False
        # Marked done before the snapshot: an event during the snapshot marks it dirty again.
        self.throttle.done(now)
        self.refresh()
        return True

    def refresh(self) -> None:
        """Take a snapshot and render it now (errors go to the status line)."""
        sched = self._sched()
        if sched is None:
            self.stop()
            return
        with self._render_lock:
            if self._closed:
                return
            note, self._note = self._note, None
            if note is not None:
                self.view.set_status(*note)
            try:
                state = snapshot(
                    sched, self._now(), self.book, query=self.query, state=self.state_filter,
                    selected=self.selected, max_rows=self.max_rows,
                )
                self.view.render(state, self._tz)
            except Exception as exc:  # the panel must never take the refresher down
                log.debug("nbsched panel refresh failed", exc_info=True)
                self.view.set_status(f"refresh failed: {_one_line(exc)}", error=True)
                return
            self.state = state
            self.renders += 1

    # -- what the view reports --------------------------------------------------------------

    def set_filter(self, query: str, state: str) -> None:
        """Show only jobs whose name contains ``query`` and (unless ``"all"``) in ``state``."""
        self.query, self.state_filter = query, state
        self.refresh()

    def select(self, run_id: str | None) -> None:
        """Show the output and error of run ``run_id``."""
        self.selected = run_id
        self.book.select(run_id)
        self.refresh()

    def act(self, action: str, name: str) -> None:
        """Carry out a row button's action on job ``name``; the outcome (or the error, in one
        line) goes to the status line."""
        sched = self._sched()
        if sched is None:
            self.view.set_status("the scheduler is gone", error=True)
            return
        try:
            if action == "pause":
                sched.pause_job(name)
                message = f"Paused {name}."
            elif action == "resume":
                job = sched.resume_job(name)
                message = f"Resumed {name}."
                if job.next_run_time is None:
                    message += " It has no fire time left."
            elif action == "remove":
                sched.remove_job(name)
                message = f"Removed {name} and its run history."
            elif action == "run":
                self._in_background(f"run {name}", lambda: _ran(sched.run_job(name)))
                message = f"Running {name} now…"
            elif action == "cancel":
                self._in_background(f"cancel {name}", lambda: _cancelled(name, sched))
                message = f"Cancelling {name}…"
            else:
                raise ValueError(f"unknown panel action {action!r}")
        except Exception as exc:
            self.view.set_status(_one_line(exc), error=True)
        else:
            self.view.set_status(message)
        self.refresh()  # the click's effect at once, not at the next tick

    def _in_background(self, what: str, work: Callable[[], tuple[str, bool]]) -> None:
        def run() -> None:
            try:
                message, error = work()
            except Exception as exc:
                message, error = f"{what}: {_one_line(exc)}", True
            finally:
                self._workers.discard(threading.current_thread())
            # Shown by the refresher, not sent from here: ipykernel wakes its IOPub thread
            # through a per-thread pipe with linger 0, closed once the thread is dead, so a
            # message sent just before a short-lived thread ends can sit unsent until some
            # other thread publishes (seen in JupyterLab: the outcome did not show).
            self._note = (message, error)
            self._wake()

        thread = threading.Thread(target=run, name="nbsched-panel-action", daemon=True)
        self._workers.add(thread)
        thread.start()

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop refreshing and listening (the widgets stay, frozen). Safe from any thread."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._cond.notify_all()
        self._unlisten()
        self._unexit()

    @property
    def stopped(self) -> bool:
        """No more refreshes will happen."""
        return self._stopped

    def close(self, timeout: float = 2.0) -> None:
        """Stop, wait for the refresher (and briefly for actions in flight), close the
        widgets."""
        self.stop()
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        for thread in [self._thread, *list(self._workers)]:
            if thread is not None and thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._render_lock:
            if not self._closed:
                self._closed = True
                self.view.close()

    def static_table(self) -> JobTable:
        """The jobs as a plain table (what a saved notebook shows)."""
        sched = self._sched()
        if sched is None:
            return JobTable([], {}, self._now(), caption="nbsched panel (scheduler gone)")
        jobs = sched.get_jobs()
        shown = jobs[: self.max_rows]
        last = self.book.last_runs()
        return JobTable(
            shown, {j.name: last.get(j.name) for j in shown}, self._now(), self._tz,
            caption="nbsched jobs", more=len(jobs) - len(shown),
        )


def _ran(run: Run) -> tuple[str, bool]:
    took = fmt_duration(run.duration)
    text = f"Ran {run.job_name}: {run.status.value}" + (f" in {took}." if took else ".")
    return text, run.status is not RunStatus.succeeded


def _cancelled(name: str, sched: Scheduler) -> tuple[str, bool]:
    run = sched.cancel_run(name)
    if run is None:
        return f"{name} has no run in flight.", False
    return f"Cancelled a run of {name}.", False


class SchedulerPanel:
    """The live panel of one scheduler: upcoming runs, jobs with their controls, history,
    a timeline. Display it (last expression of a cell); displaying it again shows the same
    live widgets. Its display bundle also carries ``text/html`` and ``text/plain`` job tables,
    so a saved notebook still shows the jobs.

    Use :meth:`of` to get the scheduler's open panel rather than a second one.

    :param scheduler: the scheduler to show
    :param clock: the scheduler's time source (tests pass the same ``FakeClock``)
    :param min_interval: seconds between refreshes after changes, at least (a click's
        effect shows at once)
    :param max_rows: jobs shown in the table at most (the search finds the others)
    :param start: start the refresher thread
    """

    _open: ClassVar[weakref.WeakKeyDictionary[Any, SchedulerPanel]] = weakref.WeakKeyDictionary()
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        clock: Clock | None = None,
        min_interval: float = 1.0,
        max_rows: int = 20,
        start: bool = True,
    ) -> None:
        self.view = PanelView(
            on_action=lambda action, name: self.controller.act(action, name),
            on_filter=lambda query, state: self.controller.set_filter(query, state),
            on_select=lambda run_id: self.controller.select(run_id),
            on_close=lambda: self.close(),
            on_refresh=lambda: self.controller.refresh(),
        )
        self.controller = PanelController(
            scheduler, self.view, clock=clock,
            throttle=Throttle(min_interval, max(1.0, min_interval)),
            max_rows=max_rows, start=start,
        )
        self.controller.refresh()

    @classmethod
    def of(cls, scheduler: Scheduler, **kwargs: Any) -> SchedulerPanel:
        """The scheduler's open panel, or a new one."""
        with cls._open_lock:
            panel = cls._open.get(scheduler)
            if panel is None or panel.controller.stopped:
                panel = cls._open[scheduler] = cls(scheduler, **kwargs)
            return panel

    @property
    def widget(self) -> Any:
        """The root widget (CSS class ``nbsched-panel``)."""
        return self.view.root

    def close(self) -> None:
        """Stop the updates and close the widgets."""
        self.controller.close()
        with self._open_lock:
            for key, panel in list(self._open.items()):
                if panel is self:
                    del self._open[key]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        table = self.controller.static_table()
        data: dict[str, Any] = {"text/plain": repr(table), "text/html": table._repr_html_()}
        widget_bundle = getattr(self.view.root, "_repr_mimebundle_", None)
        if callable(widget_bundle) and not self.controller.stopped:
            view = widget_bundle().get("application/vnd.jupyter.widget-view+json")
            if view is not None:
                data["application/vnd.jupyter.widget-view+json"] = view
        return data

    def __repr__(self) -> str:
        state = "stopped" if self.controller.stopped else "live"
        return f"<SchedulerPanel {state} renders={self.controller.renders}>"
