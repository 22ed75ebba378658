"""PostgreSQL change notifications: every scheduler on one database hears of a job change at
once, and an idle one does no work at all.

The job-change counter of the meta table (``jobs_changed``, bumped by every job write of any
process) gets a trigger that calls ``pg_notify`` (:func:`install_notify`). PostgreSQL sends
the notification when the writing transaction commits, so a listener never hears of a change
it cannot read yet, and writers need no code of their own: any nbsched process on the
database, whatever its version, is heard.

:class:`PgWatch` is the listening side: one thread with one connection of its own (``LISTEN``
cannot share a pooled connection) that calls the scheduler's callback for each notification.
A notification can only be missed while that connection is down, so while it is, the callback
is called once a second -- the scheduler then looks at the store as often as it would poll --
and the thread reconnects with backoff.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL

__all__ = ["channel_name", "install_notify", "PgWatch"]

_log = logging.getLogger(__name__)

#: while the listening connection is down: how often the callback stands in for a notification
POLL_WHILE_DOWN = 1.0
#: longest pause between two reconnection attempts
RECONNECT_MAX = 30.0


def channel_name(prefix: str) -> str:
    """The notification channel of the store whose tables start with ``prefix``."""
    return f"{prefix}changes"


def install_notify(conn: Connection, prefix: str, meta_table: str, changes_key: str) -> None:
    """Create (or replace) the trigger that notifies ``channel_name(prefix)`` whenever the
    job-change counter moves. Idempotent; run where the tables are created."""
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


class PgWatch:
    """Calls ``callback()`` for every notification on ``channel`` (see the module doc)."""

    def __init__(self, url: URL, channel: str, callback: Callable[[], None]) -> None:
        # psycopg takes libpq's URI form: the SQLAlchemy driver suffix goes, the query
        # (options=-csearch_path=..., sslmode, ...) stays
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
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
        self._conn.execute(f"LISTEN {self._channel}")
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
            for _ in self._conn.notifies(timeout=0):  # what arrived; raises once it is closed
                self._callback()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        self._connected.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:
                _log.debug("closing the LISTEN connection: %s", exc)
