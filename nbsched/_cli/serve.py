"""``nbsched serve``: serve a store's jobs headless, in the foreground, for a supervisor.

What it serves: the jobs that belong to no notebook (owner ``None``): notebook jobs added
with ``nbsched add``, and ``"module:function"`` jobs a plain program added with
``Scheduler(db_url)``. A notebook's own cell and function jobs stay with its kernel. Jobs
with ``executor="dask"`` run on the Dask cluster ``$NBSCHED_DASK_ADDRESS`` names.

Its settings are the server extension's: the ``NbschedConfig`` section of the Jupyter
server's config files (``jupyter_server_config.json`` / ``.py`` on the Jupyter config path),
so one file sets ``lease_seconds``, ``retention``, ``output_dir``, ``dask_address``... for
both; the environment variables win as everywhere else. The store is ``--db``'s.

How it ends -- never by hanging, so that systemd, a container runtime or supervisord can
restart it (the lesson of Airflow #32706, whose scheduler hung at exit forever after its
database went away, and so was never restarted):

* SIGTERM, SIGINT (Ctrl-C) or SIGHUP: runs in flight are cancelled and recorded, and the
  process exits 0 within :data:`SHUTDOWN_BUDGET` seconds;
* the store fails (``Scheduler.status()`` is not healthy) for longer than
  ``--give-up-after`` seconds in a row, or cannot be opened for that long: exit 1 with a
  one-line reason. The engine retries meanwhile, so a database restart goes unnoticed;
* the SQLite file of the store is removed or replaced: exit 1 at once. The process would
  otherwise go on writing to a file nobody can open any more;
* when run as a program, a guard thread ends the process with the same status if the
  interpreter's own exit (atexit handlers, thread joins) takes longer than
  :data:`EXIT_GUARD` seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .._version import __version__
from ..abc import Executor
from ..display import fmt_duration
from ..errors import NbschedError, StoreError
from ..events import Event, RunFinished, RunStarted, SchedulerFault, SchedulerRecovered
from ..jobs import RunStatus
from ..kernel.config import ENV_DASK_ADDRESS, NbschedConfig
from ..scheduler import Scheduler
from ..stores.sqlalchemy import SQLAlchemyJobStore
from .common import EXIT_FAILURE, EXIT_OK, CliError, store_url

__all__ = ["command", "ENV_DASK_ADDRESS", "GIVE_UP_AFTER", "SHUTDOWN_BUDGET", "EXIT_GUARD"]

log = logging.getLogger("nbsched.serve")

#: default of ``--give-up-after``: seconds the store may fail in a row before we exit
GIVE_UP_AFTER = 300.0
#: seconds the scheduler gets to cancel its runs and write their records at shutdown
SHUTDOWN_BUDGET = 5.0
#: seconds after the shutdown began by which the process must be gone
EXIT_GUARD = SHUTDOWN_BUDGET + 10.0
#: ... when giving up on a store that fails
_GIVING_UP_BUDGET = 1.0
#: how often the scheduler's health is looked at (seconds)
_CHECK_EVERY = 0.5
#: libpq settings for PostgreSQL stores, unless the URL sets them: a database host gone from
#: the network must make connection attempts (``connect_timeout``, seconds) and queries on
#: open connections (TCP keepalives: about a minute) fail, or the scheduler would wait on
#: them without ever reporting a fault -- and we would never give up
_PG_SETTINGS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def command(args: argparse.Namespace) -> int:
    """Serve until a signal (exit 0) or a store that cannot go on (exit 1)."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = _with_timeouts(store_url(args.db))
    config = _config()
    executors = _executors(config)
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        stop.set()

    scheduler = Scheduler(
        url, owner=None, executors=executors, timezone=config.timezone or None,
        max_workers=config.max_workers, retention=config.retention,
        lease_seconds=config.lease_seconds,
    )
    previous = _handle_signals(on_signal)
    reason: str | None = None
    try:
        reason = _serve(scheduler, args.give_up_after, stop, on_signal)
    except NbschedError as exc:  # e.g. a store made by a newer nbsched
        reason = str(exc)
    except Exception as exc:  # a bug: the traceback to the log, one line to the supervisor
        log.exception("nbsched serve failed")
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        if getattr(args, "program", False):
            _guard_exit(EXIT_FAILURE if reason else EXIT_OK)
        # Giving up on a failing store: waiting to write the last records there is futile.
        scheduler.shutdown(wait=False, timeout=_GIVING_UP_BUDGET if reason else SHUTDOWN_BUDGET)
        scheduler.store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if reason is not None:
        raise CliError(reason)
    if signals:
        log.info("stopped by %s", signal.Signals(signals[0]).name)
    return EXIT_OK


def _serve(
    scheduler: Scheduler,
    give_up_after: float,
    stop: threading.Event,
    on_signal: Callable[[int, FrameType | None], None],
) -> str | None:
    """Open the store, start the scheduler and watch it until ``stop``; returns why we give
    up, or ``None``."""
    reason = _open(scheduler.store, give_up_after, stop)
    if reason is not None or stop.is_set():
        return reason
    # The file as it is once open: the one to watch (and the one the scheduler uses).
    path = _sqlite_file(scheduler.store)
    identity = None if path is None else _identity(path)
    scheduler.add_listener(_log_event, (RunStarted, RunFinished, SchedulerFault, SchedulerRecovered))
    scheduler.start()
    # Again: the scheduler's exit hooks took SIGTERM and SIGHUP over when it started, to shut
    # it down within their small budget and chain to our handler. The shutdown at our end has
    # more time to cancel runs and write their records. (Had a signal come in between, their
    # hook would have shut it down and then called ours.)
    _handle_signals(on_signal)
    log.info("nbsched %s serving the jobs of no notebook in %s", __version__,
             _shown(scheduler.store))
    return _watch(scheduler, give_up_after, stop, path, identity)


def _config() -> NbschedConfig:
    """``NbschedConfig`` as the server extension sees it: the ``jupyter_server_config``
    files of the Jupyter config path (a later folder of the path is overridden by an
    earlier one, as Jupyter does).

    :raises CliError: a config file that cannot be read, or a bad value in it
    """
    from jupyter_core.paths import jupyter_config_path
    from traitlets import TraitError
    from traitlets.config.loader import (
        Config,
        ConfigFileNotFound,
        JSONFileConfigLoader,
        PyFileConfigLoader,
    )

    merged = Config()
    for folder in reversed(jupyter_config_path()):
        for loader in (JSONFileConfigLoader, PyFileConfigLoader):
            name = "jupyter_server_config." + ("json" if loader is JSONFileConfigLoader else "py")
            try:
                merged.merge(loader(name, path=folder).load_config())
            except ConfigFileNotFound:
                continue
            except Exception as exc:  # a syntax error, bad JSON
                raise CliError(f"Cannot read {os.path.join(folder, name)}: {exc}") from None
    try:
        return NbschedConfig(config=merged)
    except TraitError as exc:
        raise CliError(f"Bad NbschedConfig setting: {exc}") from None


def _executors(config: NbschedConfig) -> dict[str, Executor]:
    """The executors the kernels' settings add (the notebook executor; ``"dask"`` when
    :data:`ENV_DASK_ADDRESS` names a Dask scheduler), as in kernels and the server.

    :raises CliError: the address is set but the Dask executor cannot be loaded
    """
    try:
        return config.executors()
    except NbschedError as exc:
        raise CliError(str(exc)) from exc


def _handle_signals(handler: Callable[[int, FrameType | None], None]) -> dict[int, Any]:
    """Send SIGTERM, SIGINT and SIGHUP to ``handler``; returns the handlers they had."""
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    return {sig: signal.signal(sig, handler) for sig in signals}


def _with_timeouts(url: str) -> str:
    """``url`` with the PostgreSQL connection settings of :data:`_PG_SETTINGS` it does not
    set itself (other databases: unchanged)."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # the store reports it, as for any other command
        return url
    if parsed.get_backend_name() != "postgresql":
        return url
    missing = {k: v for k, v in _PG_SETTINGS.items() if k not in parsed.query}
    return parsed.update_query_dict(missing).render_as_string(hide_password=False)


def _shown(store: object) -> str:
    return store.describe() if isinstance(store, SQLAlchemyJobStore) else repr(store)


def _open(store: object, give_up_after: float, stop: threading.Event) -> str | None:
    """Open the store, trying again with backoff for up to ``give_up_after`` seconds.
    Returns why we give up, or ``None``."""
    assert isinstance(store, SQLAlchemyJobStore)
    deadline = time.monotonic() + give_up_after
    delay = 0.5
    while True:
        try:
            store.open()
            return None
        except StoreError as exc:
            if time.monotonic() + delay > deadline:
                return f"giving up: the store could not be opened for {give_up_after:g} s: {exc}"
            log.warning("cannot open the store (%s); trying again in %g s", exc, delay)
        if stop.wait(delay):
            return None
        delay = min(delay * 2, 30.0)


def _sqlite_file(store: object) -> str | None:
    """The database file of an SQLite store, ``None`` for other stores."""
    if not isinstance(store, SQLAlchemyJobStore):
        return None
    url = store.engine.url
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return os.path.realpath(db)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _watch(
    scheduler: Scheduler,
    give_up_after: float,
    stop: threading.Event,
    path: str | None,
    identity: tuple[int, int] | None,
) -> str | None:
    """Look at the scheduler's health until ``stop``; returns why we give up, or ``None``.

    :param path: the SQLite file of the store (``None`` for other stores)
    :param identity: that file's (device, inode) when the store was opened
    """
    failing_since: float | None = None
    while not stop.wait(_CHECK_EVERY):
        if path is not None and _identity(path) != identity:
            return f"the store's database file {path} was removed or replaced"
        status = scheduler.status()
        now = time.monotonic()
        if status["healthy"]:
            if failing_since is not None:
                log.info("the store works again")
            failing_since = None
        elif failing_since is None:
            failing_since = now
            log.warning(
                "the scheduler is failing (%s); giving up if it lasts %g s",
                status["error"], give_up_after,
            )
        elif now - failing_since > give_up_after:
            return (
                f"giving up: the scheduler has been failing for more than {give_up_after:g} s: "
                f"{status['error']}"
            )
    return None


def _log_event(event: Event) -> None:
    if isinstance(event, RunStarted):
        log.info("run %s of %r started", event.run_id, event.job_name)
    elif isinstance(event, RunFinished):
        run = event.run
        line = f"run {run.id} of {run.job_name!r} {run.status.value}"
        if run.duration is not None:
            line += f" in {fmt_duration(run.duration)}"
        if run.error and run.status is not RunStatus.succeeded:
            last = run.error.strip().splitlines()[-1:] or [""]
            line += f": {last[0]}"
        if run.output_path:
            line += f"; executed notebook: {run.output_path}"
        log.info("%s", line)
    elif isinstance(event, SchedulerFault):
        log.warning("fault: %s", event.error)
    elif isinstance(event, SchedulerRecovered):
        log.info("recovered")


def _guard_exit(code: int) -> None:
    """Make sure the process ends within :data:`EXIT_GUARD` seconds with ``code``, whatever
    hangs on the way out (a daemon thread keeps running through atexit handlers and the
    joins of other threads, which is where exits hang)."""

    def guard() -> None:
        log.error("exiting took longer than %g s; ending the process", EXIT_GUARD)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(EXIT_GUARD, guard)
    timer.name = "nbsched-serve-exit-guard"
    timer.daemon = True
    timer.start()
