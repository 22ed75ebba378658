"""PostgreSQL change notifications: every scheduler on one database hears of a job change at
once, and an idle one does no work at all.

Two channels per table prefix, both fed by triggers (:func:`install_notify`):

* :func:`channel_name` -- jobs: the job-change counter of the meta table (``jobs_changed``,
  bumped by every job write of any process) notifies it. Schedulers listen here only.
* :func:`runs_channel_name` -- runs: a statement-level trigger on the runs table notifies it
  after any statement that writes run records. Only those who show runs listen (the server's
  live stream): a scheduler woken by every run of every scheduler on the database would pay a
  wake per fire anywhere. One statement is one notification whatever its row count, and the
  payload is constant, so PostgreSQL folds a transaction's notifications into one: a batch of
  a thousand runs (upsert and prune) is heard once.

PostgreSQL sends a notification when the writing transaction commits, so a listener never
hears of a change it cannot read yet, and writers need no code of their own: any nbsched
process on the database, whatever its version, is heard.

:class:`PgWatch` is the listening side: one thread with one connection of its own (``LISTEN``
cannot share a pooled connection) that calls the callback once for whatever notifications
arrived together. A notification can only be missed while that connection is down, so while
it is, the callback is called once a second -- the listener then looks at the store as often
as it would poll -- and the thread reconnects with backoff.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL

__all__ = ["channel_name", "runs_channel_name", "install_notify", "PgWatch"]

_log = logging.getLogger(__name__)

#: while the listening connection is down: how often the callback stands in for a notification
POLL_WHILE_DOWN = 1.0
#: longest pause between two reconnection attempts
RECONNECT_MAX = 30.0


def channel_name(prefix: str) -> str:
    """The job-change channel of the store whose tables start with ``prefix``."""
    return f"{prefix}changes"


def runs_channel_name(prefix: str) -> str:
    """The run-record channel of the store whose tables start with ``prefix``."""
    return f"{prefix}runs"


def install_notify(
    conn: Connection, prefix: str, meta_table: str, changes_key: str, runs_table: str
) -> None:
    """Create (or replace) the triggers that notify ``channel_name(prefix)`` whenever the
    job-change counter moves and ``runs_channel_name(prefix)`` after each statement that
    writes run records. Idempotent (a database made before either trigger gets it on its
    next open); run where the tables are created."""
    channel = channel_name(prefix)
    function = f"{prefix}notify_changes"
    # Identifiers come from the table prefix, which the store checks is a plain identifier;
    # the key is a literal of ours.
    conn.exec_driver_sql(
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{channel}', NEW.value::text);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    conn.exec_driver_sql(
        f"""
        CREATE OR REPLACE TRIGGER {prefix}meta_changed
        AFTER UPDATE ON {meta_table}
        FOR EACH ROW WHEN (NEW.key = '{changes_key}')
        EXECUTE FUNCTION {function}()
        """
    )
    runs_function = f"{prefix}notify_runs"
    # A constant payload: PostgreSQL delivers a transaction's equal notifications once.
    conn.exec_driver_sql(
        f"""
        CREATE OR REPLACE FUNCTION {runs_function}() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{runs_channel_name(prefix)}', '');
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    # Per statement, not per row: a batch costs one call whatever its size. (Deletes too:
    # the prune of a batch is in its transaction, a removed job's runs go with the job.)
    conn.exec_driver_sql(
        f"""
        CREATE OR REPLACE TRIGGER {prefix}runs_written
        AFTER INSERT OR UPDATE OR DELETE ON {runs_table}
        FOR EACH STATEMENT
        EXECUTE FUNCTION {runs_function}()
        """
    )


class PgWatch:
    """Calls ``callback()`` for the notifications on ``channels`` (see the module doc): once
    for those that arrive together."""

    def __init__(self, url: URL, channels: Sequence[str], callback: Callable[[], None]) -> None:
        # psycopg takes libpq's URI form: the SQLAlchemy driver suffix goes, the query
        # (options=-csearch_path=..., sslmode, ...) stays
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channels = tuple(channels)
        self._callback = callback
        self._stop = threading.Event()
        self._conn: Any = None
        self._connected = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # stop() wakes the waiting thread through it
        self._thread = threading.Thread(target=self._run, name="nbsched-store-watch", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        """True while notifications can arrive (tests wait on it)."""
        return self._connected.is_set()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if threading.current_thread() is self._thread:
            return
        self._thread.join(5.0)
        if not self._thread.is_alive():  # only then is nobody polling the pipe any more
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        delay = POLL_WHILE_DOWN
        while not self._stop.is_set():
            try:
                self._listen()
                delay = POLL_WHILE_DOWN
            except Exception as exc:  # lost or refused connection: say so, stand in, retry
                if self._stop.is_set():
                    break
                self._connected.clear()
                _log.warning("Listening for store changes failed (%s); polling until back", exc)
            finally:
                self._close()
            # Until connected again, a change can go unheard: the callback makes the
            # scheduler look, once a second, while we wait to reconnect.
            waited = 0.0
            while waited < delay and not self._stop.is_set():
                self._callback()
                self._stop.wait(POLL_WHILE_DOWN)
                waited += POLL_WHILE_DOWN
            delay = min(delay * 2, RECONNECT_MAX)

    def _listen(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        for channel in self._channels:
            self._conn.execute(f"LISTEN {channel}")
        self._connected.set()
        # Changes made while we were not listening were not notified: look once now.
        self._callback()
        # Sleep until the server sends something or stop() writes to the wake pipe: no
        # timeout, so an idle scheduler's thread never wakes. poll(), not select(): a kernel
        # may hold more than 1024 file descriptors.
        poller = select.poll()
        poller.register(self._conn.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            poller.poll()
            if self._stop.is_set():
                break
            # what arrived (raises once the connection is closed): one look covers it all
            if sum(1 for _ in self._conn.notifies(timeout=0)):
                self._callback()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        self._connected.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:
                _log.debug("closing the LISTEN connection: %s", exc)
