"""Triggers: *when* jobs fire.

* :class:`IntervalTrigger` -- every N seconds of elapsed time, from a start (no drift);
* :class:`CronTrigger` -- crontab expressions in an IANA time zone, with cron's DST rules;
* :class:`DateTrigger` -- once, at a date or a delay after the job is added;
* :class:`OrTrigger` -- the union of several triggers;
* :func:`parse_trigger` -- ``"every 10s"``, ``"*/5 * * * *"``, ``"every weekday at 9:30"``,
  ``"at 2026-12-01 09:00"``, ``"in 10 minutes"`` -> one of the above.

This package is part of the core: it imports only the standard library, cronsim,
cron-descriptor and tzlocal.
"""

from __future__ import annotations

from .combining import OrTrigger as OrTrigger
from .cron import CronTrigger as CronTrigger
from .date import DateTrigger as DateTrigger
from .interval import IntervalTrigger as IntervalTrigger
from .parse import parse_trigger as parse_trigger

__all__ = ["IntervalTrigger", "CronTrigger", "DateTrigger", "OrTrigger", "parse_trigger"]
