"""Notice writes to an SQLite file without polling it (Linux inotify).

A scheduler looks at a shared store about once a second for changes other processes made
(a job paused, removed or added from another kernel). Each look is cheap -- two ``stat``
calls -- but waking a sleeping thread is not: about 0.15 ms of CPU on the 2-core VMs these
figures come from (``benchmarks/bench_idle.py``), 30 times in 30 s, where APScheduler's idle
scheduler does not wake at all. inotify wakes us instead when the database or its WAL file is
written, by any process on this machine; with nothing written, a scheduler sleeps until its
next fire time.

Only on local file systems: a write made by another machine to a network file system (NFS,
SMB, ...) raises no inotify event there, so on those -- and wherever inotify is missing --
:func:`watch_files` returns ``None`` and the scheduler keeps polling.

The inotify calls come from `inotify_simple <https://pypi.org/project/inotify-simple/>`_;
what is here is the part that is ours: which file systems to trust, which names to listen
for, and one thread that hands changes on at most every ``min_gap`` seconds.

Where a scheduler does poll, :class:`MarkerCache` keeps each look at two ``stat`` calls while
the files are untouched, instead of a query.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FileWatch", "watch_files", "is_local_fs", "MarkerCache"]

log = logging.getLogger("nbsched")

#: file systems whose writes raise inotify events whoever makes them (all writers are on this
#: machine). Anything else -- nfs, cifs, smb3, 9p, fuse.*, ceph, ... -- is polled.
LOCAL_FS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "bcachefs", "zfs",
    "tmpfs", "ramfs", "overlay", "hfsplus", "apfs", "vfat", "exfat", "ntfs3",
})

# inotify event bits (linux/inotify.h)
_MODIFY, _CLOSE_WRITE, _MOVED_FROM, _MOVED_TO = 0x2, 0x8, 0x40, 0x80
_CREATE, _DELETE, _DELETE_SELF, _MOVE_SELF = 0x100, 0x200, 0x400, 0x800
_Q_OVERFLOW, _IGNORED = 0x4000, 0x8000
_GONE = _DELETE_SELF | _MOVE_SELF | _IGNORED  # the directory itself went away
_MASK = _MODIFY | _CLOSE_WRITE | _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE | _GONE

_OCTAL = re.compile(r"\\([0-7]{3})")


def is_local_fs(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Whether ``path`` lies on a file system of :data:`LOCAL_FS` (by the mount table)."""
    real = os.path.realpath(path)
    best, fstype = "", ""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields, _, rest = line.partition(" - ")
                parts, more = fields.split(), rest.split()
                if len(parts) < 5 or not more:
                    continue
                mount = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), parts[4])
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):  # the deepest, and the last mounted
                    best, fstype = mount, more[0]
    except OSError:
        return False
    return fstype in LOCAL_FS


class FileWatch:
    """Calls ``callback()`` from its ``nbsched-store-watch`` thread after one of the watched
    files (``names``, by the watch descriptor of their directory) was written, created,
    removed or renamed -- at once for the first change, then at most every
    ``min_gap`` seconds while changes keep coming (a busy writer commits many times a
    second). Also when the kernel's event queue overflowed. If a watched directory goes
    away, it calls ``callback()`` once more and stops.

    Use :func:`watch_files` to make one.
    """

    def __init__(
        self, inotify: Any, names: dict[int, set[str]], callback: Callable[[], None],
        min_gap: float,
    ) -> None:
        self._inotify = inotify
        self._names = names  # watch descriptor -> file names of interest in that directory
        self._callback = callback
        self._min_gap = min_gap
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="nbsched-store-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # poll, not select: a kernel may have more than FD_SETSIZE (1024) descriptors open
        either, stop = select.poll(), select.poll()
        either.register(self._inotify.fileno(), select.POLLIN)
        for poller in (either, stop):
            poller.register(self._stop_r, select.POLLIN)
        gap_ms = int(self._min_gap * 1000)
        try:
            while True:
                if any(fd == self._stop_r for fd, _ in either.poll()):
                    return
                changed, gone = self._read()
                if changed or gone:
                    self._call()
                if gone:
                    return
                # let a burst of writes pile up in the kernel's queue: one look for all
                if changed and stop.poll(gap_ms):
                    return
        except Exception:  # never die silently: the scheduler's own polling still runs
            log.exception("nbsched: watching the store's files failed; polling instead")
            self._call()

    def _read(self) -> tuple[bool, bool]:
        changed = gone = False
        for event in self._inotify.read(timeout=0):
            if event.mask & _Q_OVERFLOW:
                changed = True
            elif event.mask & _GONE:
                gone = True
            elif event.name in self._names.get(event.wd, ()):
                changed = True
        return changed, gone

    def _call(self) -> None:
        try:
            self._callback()
        except Exception:
            log.exception("nbsched: store change callback failed")

    def stop(self, timeout: float = 1.0) -> None:
        """End the thread (bounded) and release the inotify descriptor. Idempotent."""
        if self._stop_w < 0:
            return
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for fd in (self._stop_w, self._stop_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stop_w = self._stop_r = -1
        self._inotify.close()


def watch_files(
    paths: Iterable[str], callback: Callable[[], None], min_gap: float = 0.25
) -> FileWatch | None:
    """Watch ``paths`` (files that may not exist yet: their directories are watched) and call
    ``callback`` on changes; ``None`` where that cannot be done reliably (no inotify, a network
    file system, no watch left), so that the caller polls instead."""
    try:
        from inotify_simple import INotify
    except ImportError:  # not Linux
        return None
    by_dir: dict[str, set[str]] = {}
    for path in paths:
        folder, name = os.path.split(os.path.abspath(path))
        by_dir.setdefault(folder, set()).add(name)
    if not by_dir or not all(is_local_fs(folder) for folder in by_dir):
        return None
    try:
        inotify = INotify()
    except OSError as exc:  # the per-user instance limit
        log.info("nbsched: cannot watch the store's files (%s); polling instead", exc)
        return None
    try:
        names = {inotify.add_watch(folder, _MASK): names for folder, names in by_dir.items()}
    except OSError as exc:  # the per-user watch limit, a directory gone
        inotify.close()
        log.info("nbsched: cannot watch the store's files (%s); polling instead", exc)
        return None
    return FileWatch(inotify, names, callback, min_gap)


#: re-read the marker at least this often (seconds) even when the files look untouched, in
#: case a filesystem's coarse timestamps hid a write of the same size
_MARKER_REREAD = 30.0


class MarkerCache:
    """The store's change marker, read again only when the SQLite file or its WAL changed
    (``mtime_ns`` and size) since the last read, or ``_MARKER_REREAD`` seconds passed.

    :param paths: the database file and its WAL; empty (PostgreSQL, in-memory): always read
    """

    def __init__(self, paths: tuple[str, ...]) -> None:
        self._paths = paths
        self._files: tuple[tuple[int, int], ...] | None = None
        self._marker: int | None = None
        self._read_at = 0.0

    def get(self, read: Callable[[], int | None]) -> int | None:
        """The marker: the one read last while the files are untouched, else ``read()``."""
        files = self._state()
        now = time.monotonic()
        if files is not None and files == self._files and now - self._read_at < _MARKER_REREAD:
            return self._marker
        marker = read()
        # The state was taken *before* the read: a write racing with it changes the files
        # again after, so the next call reads once more; nothing is missed.
        self._files, self._marker, self._read_at = files, marker, now
        return marker

    def _state(self) -> tuple[tuple[int, int], ...] | None:
        """(mtime_ns, size) of each file, ``None`` when there are none to look at."""
        if not self._paths:
            return None
        state = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                state.append((0, -1))
            else:
                state.append((st.st_mtime_ns, st.st_size))
        return tuple(state)
