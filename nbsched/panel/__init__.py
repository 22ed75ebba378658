"""The widget panel: ``%schedule panel`` and ``nbsched.panel()``.

* :mod:`.state`: what the panel shows, as plain data (no ipywidgets; unit-tested as is);
* :mod:`.runbook`: what the scheduler's events said about runs (no store query per refresh);
* :mod:`.timeline`: the runs-per-job plot, as SVG text;
* :mod:`.view`: the ipywidgets tree, built once and re-valued;
* :mod:`.controller`: scheduler events in, refreshes and button actions out.

ipywidgets is imported only when a panel is made. Without it, :func:`show` returns the
static job table instead (the same ``text/html`` + ``text/plain`` a saved notebook shows).

Known limit: clicks reach the kernel only while it is idle (ipywidgets#1349); the display
itself keeps updating while a cell runs.
"""

from __future__ import annotations

import sys
import time
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..display import JobTable
    from ..scheduler import Scheduler
    from .controller import SchedulerPanel

__all__ = ["show", "static_table", "SchedulerPanel"]


def show(scheduler: Scheduler | None = None, **kwargs: Any) -> SchedulerPanel | JobTable:
    """The live panel of ``scheduler`` (default: this kernel's); the same panel each time
    while it is open. A static :class:`~nbsched.display.JobTable` when ipywidgets is not
    installed.

    :param kwargs: passed to :class:`SchedulerPanel` when a new one is made
    :raises SchedulerNotRunningError: no scheduler given and ``%load_ext nbsched`` did not
        run in this kernel
    """
    if scheduler is None:
        scheduler = _this_kernels_scheduler()
    try:
        from .controller import SchedulerPanel
    except ImportError:  # ipywidgets missing: the table is what a saved notebook shows anyway
        return static_table(scheduler, caption="nbsched jobs (install ipywidgets for the panel)")
    return SchedulerPanel.of(scheduler, **kwargs)


def _this_kernels_scheduler() -> Scheduler:
    """The scheduler ``%load_ext nbsched`` made in this kernel. The kernel layer shows the
    panel (``%schedule panel``), so the panel does not import it back: once the extension is
    loaded its state module is in ``sys.modules``, and until then there is no scheduler."""
    state = sys.modules.get("nbsched.kernel.state")
    if state is None:
        from ..errors import SchedulerNotRunningError

        raise SchedulerNotRunningError(
            "No scheduler in this kernel yet: run %load_ext nbsched first, or pass one "
            "(nbsched.panel(scheduler))"
        )
    scheduler: Scheduler = state.current()
    return scheduler


def static_table(scheduler: Scheduler, caption: str = "", limit: int = 50) -> JobTable:
    """The scheduler's jobs with their last runs, as a plain HTML/text table."""
    from ..display import JobTable

    jobs = scheduler.get_jobs()
    shown = jobs[:limit]
    last = {}
    for job in shown:
        runs = scheduler.get_runs(job.name, limit=1)
        last[job.name] = runs[0] if runs else None
    return JobTable(
        shown, last, time.time(), scheduler.timezone, caption=caption,
        more=len(jobs) - len(shown),
    )


def __getattr__(name: str) -> Any:
    if name == "SchedulerPanel":
        from .controller import SchedulerPanel

        return SchedulerPanel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``nbsched.panel()`` is a function in the public API, and ``nbsched.panel`` is also
    this package: importing a submodule sets the parent's attribute to the module, which
    would replace any function of that name. Making the module callable serves both."""

    def __call__(self, scheduler: Scheduler | None = None, **kwargs: Any) -> Any:
        return show(scheduler, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
