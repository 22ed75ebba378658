"""nbsched: schedule cells, functions and notebooks from inside a Jupyter kernel.

``%load_ext nbsched`` gives the kernel a background scheduler and the ``%schedule`` magics;
``from nbsched import Scheduler`` is the same engine for plain Python programs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .errors import ConflictingJobError as ConflictingJobError
from .errors import InvalidArgumentError as InvalidArgumentError
from .errors import JobLookupError as JobLookupError
from .errors import NbschedError as NbschedError
from .errors import NotPicklableError as NotPicklableError
from .errors import SchedulerNotRunningError as SchedulerNotRunningError
from .errors import StateVersionError as StateVersionError
from .errors import StoreError as StoreError
from .errors import TargetLookupError as TargetLookupError
from .errors import TriggerParseError as TriggerParseError

if TYPE_CHECKING:
    from .events import Event as Event
    from .events import JobAdded as JobAdded
    from .events import JobBound as JobBound
    from .events import JobPaused as JobPaused
    from .events import JobRemoved as JobRemoved
    from .events import JobResumed as JobResumed
    from .events import JobUpdated as JobUpdated
    from .events import RunFinished as RunFinished
    from .events import RunProgress as RunProgress
    from .events import RunStarted as RunStarted
    from .events import SchedulerFault as SchedulerFault
    from .events import SchedulerRecovered as SchedulerRecovered
    from .events import SchedulerStarted as SchedulerStarted
    from .events import SchedulerStopped as SchedulerStopped
    from .jobs import CellTarget as CellTarget
    from .jobs import Job as Job
    from .jobs import Run as Run
    from .jobs import RunStatus as RunStatus
    from .panel.controller import SchedulerPanel as SchedulerPanel
    from .scheduler import Scheduler as Scheduler
    from .triggers import CronTrigger as CronTrigger
    from .triggers import DateTrigger as DateTrigger
    from .triggers import IntervalTrigger as IntervalTrigger
    from .triggers import OrTrigger as OrTrigger
    from .triggers import parse_trigger as parse_trigger

# Everything but the errors is imported on first use: worker processes import the package
# (the forkserver preloads nbsched.executors._worker), and they need none of the engine.
_LAZY = {
    **dict.fromkeys(
        ["Event", "JobAdded", "JobBound", "JobPaused", "JobRemoved", "JobResumed",
         "JobUpdated", "RunFinished", "RunProgress", "RunStarted", "SchedulerFault", "SchedulerRecovered",
         "SchedulerStarted", "SchedulerStopped"],
        "events",
    ),
    **dict.fromkeys(["CellTarget", "Job", "Run", "RunStatus"], "jobs"),
    "Scheduler": "scheduler",
    "SchedulerPanel": "panel.controller",  # (imports ipywidgets)
    **dict.fromkeys(
        ["CronTrigger", "DateTrigger", "IntervalTrigger", "OrTrigger", "parse_trigger"],
        "triggers",
    ),
}


def __getattr__(name: str) -> Any:
    if name == "panel":  # nbsched.panel(): the package is callable (see nbsched/panel)
        import importlib

        return importlib.import_module(".panel", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbsched' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "panel"})


# A library logs; the application decides where logs go. Without a handler, Python's
# "last resort" handler would print nbsched's warnings to stderr -- into whatever notebook
# cell is running, which is exactly what nbsched promises never to do.
logging.getLogger("nbsched").addHandler(logging.NullHandler())

__all__ = [
    "Scheduler",
    "Job",
    "Run",
    "RunStatus",
    "CellTarget",
    "IntervalTrigger",
    "CronTrigger",
    "DateTrigger",
    "OrTrigger",
    "parse_trigger",
    "Event",
    "JobAdded",
    "JobUpdated",
    "JobRemoved",
    "JobPaused",
    "JobResumed",
    "JobBound",
    "RunStarted",
    "RunFinished",
    "RunProgress",
    "SchedulerStarted",
    "SchedulerStopped",
    "SchedulerFault",
    "SchedulerRecovered",
    "NbschedError",
    "InvalidArgumentError",
    "TriggerParseError",
    "JobLookupError",
    "ConflictingJobError",
    "NotPicklableError",
    "TargetLookupError",
    "StateVersionError",
    "SchedulerNotRunningError",
    "StoreError",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
    "panel",
    "SchedulerPanel",
]


# The kernel layer is imported only when IPython asks for it, so that ``import nbsched``
# (programs, worker processes) never imports IPython or traitlets.
def load_ipython_extension(ip: Any) -> None:
    """``%load_ext nbsched``: start this kernel's scheduler and register ``%schedule``."""
    from .kernel import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext nbsched``: stop this kernel's scheduler cleanly."""
    from .kernel import unload

    unload(ip)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension is (``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "nbsched"}]
