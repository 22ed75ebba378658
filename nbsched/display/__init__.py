"""Tables and text shared by the magics, the panel and the command line.

``views``: the objects ``%schedule`` returns (:class:`JobTable`, :class:`JobDetail`,
:class:`RunLog`, :class:`StatusView`, :class:`HelpText`), each with an HTML and a plain-text
form; ``tables``: the plain-text and HTML table layout they share; ``format``: times,
durations and tracebacks as short text; ``changes``: what an update of a job changed;
``live``: runs in flight with their output so far. Only public core modules are imported here.
"""

from __future__ import annotations

from .changes import job_changes as job_changes
from .format import fmt_abs as fmt_abs
from .format import fmt_duration as fmt_duration
from .format import fmt_relative as fmt_relative
from .format import format_duration as format_duration
from .format import tidy_error as tidy_error
from .live import with_output_so_far as with_output_so_far
from .views import HelpText as HelpText
from .views import JobDetail as JobDetail
from .views import JobRow as JobRow
from .views import JobTable as JobTable
from .views import RunLog as RunLog
from .views import StatusView as StatusView

__all__ = [
    "JobTable",
    "JobRow",
    "JobDetail",
    "RunLog",
    "StatusView",
    "HelpText",
    "format_duration",
    "fmt_relative",
    "fmt_duration",
    "fmt_abs",
    "tidy_error",
    "job_changes",
    "with_output_so_far",
]
