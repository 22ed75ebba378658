"""Value types: :class:`Job` (what + when), :class:`Run` (one execution) and :class:`RunStatus`.

Values with no behaviour beyond presentation; the scheduler and the stores create them. Times
inside them are kept as POSIX timestamps (floats) because a busy scheduler creates thousands of
runs a second and holds every job in memory; the public ``datetime`` attributes are computed on
access.
"""

from __future__ import annotations

import enum
import hashlib
import weakref
from collections.abc import Mapping
from dataclasses import Field, FrozenInstanceError, dataclass, field
from datetime import UTC, datetime, tzinfo
from operator import attrgetter
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from .abc import Trigger

__all__ = [
    "CellTarget",
    "Job",
    "JobOptions",
    "Run",
    "RunStatus",
    "TargetKind",
    "check_name",
    "default_job_name",
]

TargetKind = Literal["callable", "cell", "notebook"]

#: the longest job name (it is a key in every store, and shown in tables)
MAX_NAME_LENGTH = 200


# (written once: every add_job checks a name)
_NAME_RULE = (
    f"a job name is 1 to {MAX_NAME_LENGTH} printable characters, without spaces at "
    "either end, not starting with '-'"
)


def check_name(name: object) -> str:
    """The one rule for job names, wherever a name comes from (the API, ``--name``, the
    command line, REST): a string of 1 to 200 printable characters, without spaces at either
    end, not starting with ``-`` (it would read as an option on the command line and in
    ``%schedule``).

    :returns: ``name``
    :raises InvalidArgumentError: a name that breaks the rule, with the rule in the message
    """
    rule = _NAME_RULE
    if not isinstance(name, str):
        raise InvalidArgumentError(f"Job name {name!r} is not a string; {rule}")
    stripped = name.strip()
    if not stripped:
        raise InvalidArgumentError(f"Job name {name!r} is empty; {rule}")
    if name != stripped:
        raise InvalidArgumentError(f"Job name {name!r} has spaces at an end; {rule}")
    if name.startswith("-"):
        raise InvalidArgumentError(f"Job name {name!r} starts with '-'; {rule}")
    if not name.isprintable():
        raise InvalidArgumentError(f"Job name {name!r} has control characters; {rule}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"Job name {name[:20]!r}... is {len(name)} characters long; {rule}"
        )
    return name


@dataclass(frozen=True, slots=True)
class CellTarget:
    """Python source to run in the notebook's namespace (what ``%%schedule`` schedules).

    :param source: the code; it is compiled when the job is added
    """

    source: str


class RunStatus(enum.StrEnum):
    """How a run ended (or ``running`` while it is in flight)."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    #: the fire time passed more than ``misfire_grace_time`` ago, so the body never ran
    missed = "missed"
    #: not started because ``max_instances`` runs of the job were still in flight
    skipped = "skipped"
    #: stopped on purpose (cancel, scheduler shutdown)
    cancelled = "cancelled"
    #: the process running it died
    crashed = "crashed"

    @property
    def finished(self) -> bool:
        """True for every status except ``running``."""
        return self is not RunStatus.running


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


@dataclass(frozen=True, kw_only=True)
class _JobFields:
    """The fields of :class:`Job`, declared once: ``Job.__dataclass_fields__`` is this
    class's, so ``dataclasses.fields``, ``replace`` and ``asdict`` work on jobs as on any
    dataclass. See :class:`Job` for what they mean."""

    name: str
    kind: TargetKind = "callable"
    target: str
    trigger: Trigger
    executor: str = "thread"
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_instances: int = 1
    coalesce: bool = True
    misfire_grace_time: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    paused: bool = False
    next_run_time: datetime | None = None
    parameters: Mapping[str, Any] | None = None
    owner: str | None = None
    created_at: datetime | None = None
    unbound: bool = False


_OPTION_NAMES = (
    "kind", "executor", "args", "kwargs", "timeout", "max_instances", "coalesce",
    "misfire_grace_time", "retries", "retry_delay", "paused", "parameters", "owner", "unbound",
)


class JobOptions:
    """The options part of a :class:`Job` (everything but its name, target, trigger and
    times), shared between jobs that have the same options: a notebook that adds 10k jobs
    with the defaults holds one of these, not 10k (see :meth:`get`)."""

    __slots__ = (*_OPTION_NAMES, "next_tz", "created_tz", "__weakref__")

    kind: TargetKind
    executor: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    timeout: float | None
    max_instances: int
    coalesce: bool
    misfire_grace_time: float | None
    retries: int
    retry_delay: float
    paused: bool
    parameters: Mapping[str, Any] | None
    owner: str | None
    unbound: bool
    #: zones the job's datetimes are shown in (they are kept as POSIX seconds)
    next_tz: tzinfo | None
    created_tz: tzinfo | None

    _shared: weakref.WeakValueDictionary[tuple[Any, ...], JobOptions] = (
        weakref.WeakValueDictionary()
    )

    @classmethod
    def get(cls, values: tuple[Any, ...]) -> JobOptions:
        """The options object holding ``values`` (in ``__slots__`` order), shared when the
        values allow it. Only options without arguments are shared: ``args=(1,)`` and
        ``args=(1.0,)`` compare equal but must not be swapped for each other."""
        args, kwargs = values[2], values[3]
        if (
            args or kwargs or values[11] is not None  # parameters
            or type(args) is not tuple or type(kwargs) is not dict  # e.g. UnreadableArgs
        ):
            return cls._new(values)
        # (args and kwargs are empty: shared objects), and the types of the numbers:
        # timeout=1 and timeout=1.0 are equal but should read back as given
        key = (values[:2], values[4:11], values[12:], *map(type, values[4:10]))
        try:
            found = cls._shared.get(key)
        except TypeError:  # an unhashable value (a user-defined tzinfo, say)
            return cls._new(values)
        if found is None:
            found = cls._shared[key] = cls._new(values)
        return found

    @classmethod
    def _new(cls, values: tuple[Any, ...]) -> JobOptions:
        options = object.__new__(cls)
        for name, value in zip(cls.__slots__, values, strict=False):
            object.__setattr__(options, name, value)
        return options

    def replace(self, **changes: Any) -> JobOptions:
        """These options with some changed (shared again where possible)."""
        values = [getattr(self, name) for name in self.__slots__[:-1]]
        for name, value in changes.items():
            values[self.__slots__.index(name)] = value
        return self.get(tuple(values))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _option_property(name: str) -> property:
    getter = attrgetter(f"_o.{name}")
    return property(getter, doc=f"See :class:`Job` (``{name}``).")


class Job:
    """A job: what to run (``target``) and when (``trigger``), plus run options.

    A frozen value, used like a dataclass (``dataclasses.replace(job, paused=True)``,
    ``dataclasses.fields(Job)``). It is kept compact because a scheduler holds every job in
    memory: the options are one object shared by jobs with the same options, and the two
    times are POSIX seconds, turned into datetimes when read.

    :param name: unique key of the job in its store
    :param kind: ``"callable"`` (``target`` is ``"module:qualname"``, or ``"__main__:name"``
        for a function defined in a notebook), ``"cell"`` (``target`` is Python source run in
        the notebook's namespace) or ``"notebook"`` (``target`` is a path to an ``.ipynb``)
    :param target: see ``kind``
    :param trigger: when the job fires
    :param executor: ``"thread"``, ``"process"`` or ``"notebook"``
    :param args: positional arguments for a callable target
    :param kwargs: keyword arguments for a callable target
    :param timeout: seconds a run may take before it is stopped and recorded ``timed_out``
    :param max_instances: how many runs of this job may be in flight at once
    :param coalesce: run once (not once per missed fire time) after the scheduler fell behind
    :param misfire_grace_time: seconds a run may start late; later runs are recorded
        ``missed``. ``None`` means no limit
    :param retries: how many times a failed run is tried again
    :param retry_delay: seconds between a failure and its retry
    :param paused: a paused job keeps its schedule but does not fire
    :param next_run_time: the next fire time, ``None`` when paused or finished
    :param parameters: papermill-style parameters of a notebook job
    :param owner: the notebook (or program) the job belongs to; a scheduler runs only the
        jobs of its own owner
    :param created_at: when the job was first added
    :param unbound: the target cannot be resolved right now (a notebook function that has not
        been defined again since the kernel restarted); the job is kept and binds itself later
    """

    __slots__ = ("name", "target", "trigger", "_o", "_next_ts", "_created_ts")
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]] = _JobFields.__dataclass_fields__
    __dataclass_params__ = _JobFields.__dataclass_params__  # type: ignore[attr-defined]
    __match_args__ = ("name", "kind", "target", "trigger")

    name: str
    target: str
    trigger: Trigger
    _o: JobOptions
    _next_ts: float | None
    _created_ts: float | None

    def __init__(
        self,
        *,
        name: str,
        kind: TargetKind = "callable",
        target: str,
        trigger: Trigger,
        executor: str = "thread",
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_instances: int = 1,
        coalesce: bool = True,
        misfire_grace_time: float | None = None,
        retries: int = 0,
        retry_delay: float = 0.0,
        paused: bool = False,
        next_run_time: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
        owner: str | None = None,
        created_at: datetime | None = None,
        unbound: bool = False,
    ) -> None:
        options = JobOptions.get((
            kind, executor, args, _NO_KWARGS if kwargs is None else kwargs, timeout, max_instances,
            coalesce, misfire_grace_time, retries, retry_delay, paused, parameters, owner,
            unbound, _tz(next_run_time), _tz(created_at),
        ))
        _init(self, name, target, trigger, options, _ts(next_run_time), _ts(created_at))

    @classmethod
    def build(
        cls, name: str, target: str, trigger: Trigger, options: JobOptions,
        next_ts: float | None, created_ts: float | None,
    ) -> Job:
        """A job from its parts, times as POSIX seconds (what stores and the scheduler use)."""
        job = object.__new__(cls)
        _init(job, name, target, trigger, options, next_ts, created_ts)
        return job

    @property
    def options(self) -> JobOptions:
        """The options object (shared with jobs that have the same options)."""
        return self._o

    kind = _option_property("kind")
    executor = _option_property("executor")
    args = _option_property("args")
    kwargs = _option_property("kwargs")
    timeout = _option_property("timeout")
    max_instances = _option_property("max_instances")
    coalesce = _option_property("coalesce")
    misfire_grace_time = _option_property("misfire_grace_time")
    retries = _option_property("retries")
    retry_delay = _option_property("retry_delay")
    paused = _option_property("paused")
    parameters = _option_property("parameters")
    owner = _option_property("owner")
    unbound = _option_property("unbound")

    @property
    def next_run_time(self) -> datetime | None:
        """The next fire time, ``None`` when paused or finished."""
        ts = self._next_ts
        return None if ts is None else datetime.fromtimestamp(ts, self._o.next_tz or UTC)

    @property
    def next_ts(self) -> float | None:
        """:attr:`next_run_time` as POSIX seconds."""
        return self._next_ts

    @property
    def created_at(self) -> datetime | None:
        """When the job was first added."""
        ts = self._created_ts
        return None if ts is None else datetime.fromtimestamp(ts, self._o.created_tz or UTC)

    @property
    def created_ts(self) -> float | None:
        """:attr:`created_at` as POSIX seconds."""
        return self._created_ts

    @property
    def schedule(self) -> str:
        """The schedule in words, e.g. ``"At 09:30, Monday through Friday"``."""
        return self.trigger.describe()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in _FIELD_NAMES)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # (kwargs is a dict, as with the dataclass)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (dict(zip(_FIELD_NAMES, self._values(), strict=True)),))

    def __copy__(self) -> Job:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Job:
        import copy

        return _rebuild(copy.deepcopy(dict(zip(_FIELD_NAMES, self._values(), strict=True)), memo))

    def __repr__(self) -> str:
        nrt = self.next_run_time
        extra = " paused" if self.paused else ""
        extra += " unbound" if self.unbound else ""
        return (
            f"<Job {self.name!r} {self.kind}={_short(self.target)!r} "
            f"schedule={self.schedule!r} next={nrt.isoformat() if nrt else None}{extra}>"
        )


_FIELD_NAMES = tuple(_JobFields.__dataclass_fields__)
#: the kwargs of every job without any (jobs are values: never mutated)
_NO_KWARGS: Mapping[str, Any] = {}
_setattr = object.__setattr__


def _init(
    job: Job, name: str, target: str, trigger: Trigger, options: JobOptions,
    next_ts: float | None, created_ts: float | None,
) -> None:
    _setattr(job, "name", name)
    _setattr(job, "target", target)
    _setattr(job, "trigger", trigger)
    _setattr(job, "_o", options)
    _setattr(job, "_next_ts", next_ts)
    _setattr(job, "_created_ts", created_ts)


def _rebuild(fields: dict[str, Any]) -> Job:
    return Job(**fields)


def _tz(value: datetime | None) -> tzinfo | None:
    return None if value is None else value.tzinfo


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One execution of a job.

    :param id: unique id of the run
    :param job_name: the job it belongs to
    :param status: how it ended, or ``running``
    :param scheduled_ts: the fire time it was run for (POSIX seconds)
    :param started_ts: when the body started, ``None`` if it never did
    :param finished_ts: when it finished, ``None`` while running
    :param output: everything the run printed (stdout and stderr, interleaved)
    :param error: the traceback (or a one-line reason) when it did not succeed
    :param attempt: 0 for the first try, 1.. for retries
    :param owner: owner of the job
    :param output_path: for notebook runs, the executed notebook
    """

    id: str
    job_name: str
    status: RunStatus
    scheduled_ts: float
    started_ts: float | None = None
    finished_ts: float | None = None
    output: str = ""
    error: str | None = None
    attempt: int = 0
    owner: str | None = None
    output_path: str | None = None

    @property
    def scheduled_for(self) -> datetime:
        """The fire time this run was for (aware, UTC)."""
        return _utc(self.scheduled_ts)  # type: ignore[return-value]

    @property
    def started_at(self) -> datetime | None:
        """When the body started (aware, UTC), ``None`` if it never did."""
        return _utc(self.started_ts)

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended (aware, UTC), ``None`` while running."""
        return _utc(self.finished_ts)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, ``None`` if not both known."""
        if self.started_ts is None or self.finished_ts is None:
            return None
        return self.finished_ts - self.started_ts

    @property
    def lateness(self) -> float | None:
        """Seconds between the fire time and the start of the body."""
        return None if self.started_ts is None else self.started_ts - self.scheduled_ts

    def __repr__(self) -> str:
        return (
            f"<Run {self.job_name!r} {self.status.value} "
            f"scheduled_for={self.scheduled_for.isoformat()} id={self.id}>"
        )


# -- default job names: the one rule for Scheduler.add_job and %%schedule -------------------


def default_job_name(
    kind: str, ref: str, *, owner: str | None = None, cell_id: str | None = None
) -> str:
    """The name a job gets when none is given.

    * a function (``"module:qualname"``): its last name part (``"pkg.mod:Cls.run"`` -> ``run``);
      a lambda or other ``<...>`` name gets ``job-<hash of the reference>``;
    * a notebook (a path ending in ``.ipynb``): the file's stem;
    * a cell: ``cell-<hash>`` of the owner and of the front-end's cell id when there is one,
      else of the source without surrounding blank space, so that running the same cell
      again names the same job. The owner is part of the hash so that two notebooks (or a
      copied notebook, whose cells keep their ids) never share a name in a shared store.

    :param kind: ``"callable"``, ``"cell"`` or ``"notebook"``
    :param ref: the stored target: a reference, a notebook path or the cell's source
    :param owner: the notebook (or program) the job belongs to
    :param cell_id: the front-end's id of the cell (cells only)
    """
    if kind == "cell":
        key = f"id:{cell_id}" if cell_id else f"src:{ref.strip()}"
        return "cell-" + _digest(f"{owner or ''}\0{key}")
    if kind == "notebook":
        return PurePath(ref).stem or "job-" + _digest(ref)
    name = ref.partition(":")[2].rsplit(".", 1)[-1]
    return name if name and not name.startswith("<") else "job-" + _digest(ref)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]
