"""Cron expressions: checking, normalizing and classifying them (private).

The *evaluation* of an expression (which calendar times match) is cronsim's job; see
``cron.py``. This module only

* checks each field and explains a mistake in one line that names the field and its valid
  range (cronsim's own messages are just "Bad minute");
* expands ``@daily`` and friends and turns names into numbers, so that cronsim and
  cron-descriptor see one canonical form and equal schedules compare equal;
* decides whether the expression is a *fixed-time* job or an *every-minute/hour* job, which
  changes how DST transitions are handled (see ``cron.py``).

Parsed expressions are cached: a restart re-reads every job's expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cronsim import CronSim, CronSimError

from ..errors import TriggerParseError, did_you_mean

__all__ = ["CronExpr", "parse_cron", "ALIASES"]

#: crontab's nicknames (``@reboot`` has no meaning for a scheduler and is refused)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0

    def describe_range(self) -> str:
        text = f"{self.low}-{self.high}"
        if self.name == "weekday":
            return text + " (0 and 7 are Sunday) or sun-sat"
        if self.names:
            return text + f" or {self.names[0]}-{self.names[-1]}"
        return text


_SECOND = _Field("second", 0, 59)
_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), 1),
    _Field("weekday", 0, 7, tuple(_DAYS), 0),
)

_TERM = re.compile(r"^(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A checked cron expression.

    :param text: the expression as written (spaces collapsed), for display and state
    :param fields: the canonical 6 fields, seconds first, numbers instead of names
    :param has_seconds: whether the user wrote a seconds field
    :param wall_clock: ``True`` for fixed-time jobs, ``False`` when the minute or hour field
        starts with ``*`` (see the module docstring of ``cron.py``)
    """

    text: str
    fields: tuple[str, str, str, str, str, str]
    has_seconds: bool
    wall_clock: bool

    @property
    def canonical(self) -> str:
        """The 6-field form handed to cronsim."""
        return " ".join(self.fields)

    @property
    def for_description(self) -> str:
        """The form handed to cron-descriptor (5 fields unless seconds were written)."""
        return " ".join(self.fields if self.has_seconds else self.fields[1:])


def _bad(text: str, detail: str) -> TriggerParseError:
    return TriggerParseError(f"Bad cron expression {text!r}: {detail}")


def _value(token: str, field: _Field, raw: str, text: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token in field.names:
        number = field.names.index(token) + field.name_base
    else:
        hint = did_you_mean(token, field.names) if field.names else ""
        kinds = "numbers" + (f" or names like {field.names[1]!r}" if field.names else "")
        raise _bad(text, f"{field.name} field {raw!r} is not valid{hint}; use {kinds}")
    if not field.low <= number <= field.high:
        raise _bad(text, f"{field.name} field {raw!r} is out of range {field.describe_range()}")
    return number


def _canonical_field(raw: str, field: _Field, text: str) -> tuple[str, set[int]]:
    """Check one field; return it with names replaced by numbers, and the values it allows."""
    terms: list[str] = []
    values: set[int] = set()
    for term in raw.split(","):
        match = _TERM.match(term)
        if match is None:
            raise _bad(
                text,
                f"{field.name} field {raw!r} is not valid; use '*', a value, a range 'a-b', "
                "a step '*/n' or 'a-b/n', or a list 'a,b' (values "
                f"{field.describe_range()})",
            )
        base, step_text = match["base"], match["step"]
        if step_text is not None and int(step_text) == 0:
            raise _bad(text, f"{field.name} field {raw!r} has a step of 0; steps start at 1")
        if base == "*":
            low, high, out = field.low, field.high, "*"
        elif "-" in base:
            first, last = base.split("-")
            low, high = _value(first, field, raw, text), _value(last, field, raw, text)
            if field.name == "weekday" and high == 0 and low > 0:
                high = 7  # "fri-sun" means Friday through Sunday
            if high < low:
                raise _bad(
                    text,
                    f"{field.name} field {raw!r} has a range that ends before it starts; "
                    f"write ranges low-high within {field.describe_range()}",
                )
            # cronsim reads a one-value range with a step ("0-0/1") like "0/1", i.e. "0-59"
            out = f"{low}-{high}" if high > low else str(low)
            if high == low:
                step_text = None
        else:
            low = _value(base, field, raw, text)
            high = field.high if step_text else low
            out = str(low)
        step = 1
        if step_text is not None:
            step = int(step_text)
            out += f"/{step}"
        terms.append(out)
        values.update(range(low, high + 1, step))
    return ",".join(terms), values


@lru_cache(maxsize=1024)
def parse_cron(text: str) -> CronExpr:
    """Check and normalize a cron expression.

    :param text: 5 fields (minute hour day month weekday), 6 with seconds first, or an
        ``@alias``
    :raises TriggerParseError: naming the field at fault and its valid range
    """
    written = " ".join(text.split())
    lowered = written.lower()
    if lowered.startswith("@"):
        if lowered not in ALIASES:
            hint = did_you_mean(lowered, ALIASES) or ""
            raise _bad(
                written,
                f"unknown nickname{hint}; use @hourly, @daily, @weekly, @monthly or @yearly",
            )
        parts = ALIASES[lowered].split()
    else:
        parts = lowered.split()
    if len(parts) not in (5, 6):
        raise _bad(
            written,
            "expected 5 fields (minute hour day month weekday) or 6 with seconds first, "
            f"got {len(parts)}",
        )
    has_seconds = len(parts) == 6
    seconds = "0"
    if has_seconds:
        seconds, _ = _canonical_field(parts[0], _SECOND, written)
        parts = parts[1:]
    canon: list[str] = []
    allowed: list[set[int]] = []
    for raw, field in zip(parts, _FIELDS, strict=True):
        out, values = _canonical_field(raw, field, written)
        canon.append(out)
        allowed.append(values)
    minute, hour, day, month, weekday = canon
    # Vixie cron: when either day field starts with '*', a day must match both (so the other
    # one alone decides); otherwise either may match. cronsim follows the same rule.
    if weekday.startswith("*") and not day.startswith("*"):
        longest = max(_DAYS_IN_MONTH[m] for m in allowed[3])
        if min(allowed[2]) > longest:
            raise _bad(
                written,
                f"it never fires: day {min(allowed[2])} does not occur in the chosen months",
            )
    expr = CronExpr(
        text=written,
        fields=(seconds, minute, hour, day, month, weekday),
        has_seconds=has_seconds,
        wall_clock=not (minute.startswith("*") or hour.startswith("*")),
    )
    try:  # let cronsim object now, when the job is added, rather than when it fires
        CronSim(expr.canonical, datetime(2000, 1, 1))
    except CronSimError as exc:  # pragma: no cover  (the checks above come first)
        raise _bad(written, f"{exc} (cronsim)") from None
    return expr
