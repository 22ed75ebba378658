"""Per-run capture of ``sys.stdout`` / ``sys.stderr``, for runs in threads of this process.

A job's prints must land in its own ``Run.output`` -- never in whatever notebook cell happens
to be running (APScheduler's thread jobs print into the most recent cell). Python-level writes
go through ``sys.stdout``; we replace it (and stderr) once with a proxy that looks up the
calling thread's :class:`Capture`. Threads without one write through to the original stream
untouched, so the notebook's own output is unaffected. Writes at the file-descriptor level
(C extensions, ``os.system``) cannot be told apart per thread; the process executor captures
those for its own runs.

**Threads a run starts** write into the run too. While the proxies are installed,
``threading.Thread.start`` hands the starting thread's capture to the new thread (its ``run``
is wrapped for that one start), so threads started by threads the run started inherit it as
well, and so does a thread's uncaught-exception traceback. A task submitted to a
``concurrent.futures.ThreadPoolExecutor`` is written to the capture of the thread that
*submitted* it, whichever pool thread runs it and whoever started that thread: a pool made in
a job and kept in a global serves later runs and the notebook each with their own output.
(Pools that hand tasks to long-lived threads of their own, like ``multiprocessing.pool.
ThreadPool``, keep the capture of the thread that created them.)

**Cheap when not shared**: a run's capture starts as a plain list in its thread (a burst
starts ten thousand runs in 20 ms: an object with a lock each cost a third more). It becomes a
:class:`Capture` -- the same list inside, a lock around it, a closed state -- the moment it is
shared: a thread or pool task started by the run, or a nested :func:`begin`.

**After the run ends** (:func:`end`), its capture is closed: what its threads still write is
dropped and counted (:attr:`Capture.dropped`). It cannot go to the run, whose output is
already recorded, and every other place would be wrong: in a kernel, the kernel's streams and
even its file descriptors 1 and 2 end up in whichever cell is running. So a run's output is
what the job and its threads wrote until the job function returned; a thread that must be
heard after that has to be joined by the job.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = [
    "Capture", "install", "uninstall", "begin", "end", "buffer", "is_proxy", "LIVE_LIMIT", "tail",
    "text_of",
]

#: at most this many characters of a running run's output are shown live (the end of it),
#: as the process executor keeps the last megabyte of its runs' output
LIVE_LIMIT = 1 << 20



class _Local(threading.local):
    # (a class default: reading a thread-local attribute that is not set raises and catches
    # an AttributeError, 0.4 us, on every run of a new worker thread)
    capture: Capture | list[str] | None = None


_local = _Local()
_lock = threading.Lock()  # install() / uninstall()
# Every capture's: what it guards is a list append or swap. One lock for all keeps a run's
# set-up to a small object (a burst starts 10,000 runs in 30 ms; a lock each was a tenth).
_parts_lock = threading.Lock()
_installs = 0


class Capture:
    """The output of one run, written by the run's thread and the threads it started."""

    __slots__ = ("_parts", "_open", "owner", "outer", "dropped")

    def __init__(
        self,
        outer: Capture | list[str] | None = None,
        owner: int | None = None,
        parts: list[str] | None = None,
    ) -> None:
        self._parts: list[str] = [] if parts is None else parts
        self._open = True
        #: the thread that called :func:`begin`
        self.owner = threading.get_ident() if owner is None else owner
        #: the capture this thread had begun before (restored by :func:`end`)
        self.outer = outer
        #: characters written after the run ended (dropped)
        self.dropped = 0

    def append(self, text: str) -> None:
        """Record ``text`` (drop it if the run has ended)."""
        with _parts_lock:
            if self._open:
                self._parts.append(text)
            else:
                self.dropped += len(text)

    def close(self) -> str:
        """End the capture; returns everything recorded."""
        with _parts_lock:
            self._open = False
            parts, self._parts = self._parts, []
        return "".join(parts) if parts else ""

    def text(self, limit: int = LIVE_LIMIT) -> str:
        """What was recorded so far (its last ``limit`` characters), while the run goes on.
        The parts are joined in place, so a view that reads every second joins each write
        once, not once per read."""
        with _parts_lock:
            parts = self._parts
            if len(parts) > 1:
                parts[:] = ["".join(parts)]
            text = parts[0] if parts else ""
        return tail(text, limit)

    @property
    def closed(self) -> bool:
        """True once the run has ended (:func:`end`)."""
        return not self._open


def tail(text: str, limit: int = LIVE_LIMIT) -> str:
    """The last ``limit`` characters of ``text``, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters of output omitted ...]\n{text[-limit:]}"


def _current() -> Capture | list[str] | None:
    return _local.capture


def _shared() -> Capture | None:
    """The calling thread's capture, to hand to another thread: a plain list becomes a
    :class:`Capture` around it first (the thread's own writes then go through it too)."""
    current = _local.capture
    if type(current) is list:
        current = _local.capture = Capture(None, threading.get_ident(), current)
    return current  # type: ignore[return-value]


def text_of(buffer: Capture | list[str], limit: int = LIVE_LIMIT) -> str:
    """What :func:`begin`'s ``buffer`` holds so far (its last ``limit`` characters), from any
    thread while the run goes on. (A plain list is only appended to: joining it under the
    GIL sees a consistent list.)"""
    if isinstance(buffer, Capture):
        return buffer.text(limit)
    return tail("".join(buffer), limit)


class _ThreadRoutedStream:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes from a capturing thread go to its
    capture, everything else to the stream that was there before."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def write(self, text: str) -> int:
        capture = _current()
        if capture is None:
            return self._wrapped.write(text)
        capture.append(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current() is None:
            self._wrapped.flush()

    def isatty(self) -> bool:
        return _current() is None and self._wrapped.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ... of the real stream
        return getattr(self._wrapped, name)


# -- carrying a capture into threads -----------------------------------------------------------

_ThreadStart = Callable[[threading.Thread], None]
_original_start: _ThreadStart | None = None
_original_submit: Callable[..., Future[Any]] | None = None


def _start(thread: threading.Thread) -> None:
    """``threading.Thread.start`` while installed: the new thread gets the caller's capture."""
    capture = _shared()
    # (None only if someone kept a reference to us past uninstall(): the original is back)
    start = _original_start or threading.Thread.start
    if capture is None:
        start(thread)
        return
    run = thread.run

    def run_captured() -> None:
        _local.capture = capture  # kept to the end: the excepthook's traceback goes there too
        try:
            run()
        finally:
            vars(thread).pop("run", None)  # (no reference cycle thread -> wrapper -> thread)

    thread.run = run_captured  # type: ignore[method-assign]
    try:
        start(thread)
    except BaseException:
        vars(thread).pop("run", None)  # not started (started twice, too many threads)
        raise


def _submit(
    pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    """``ThreadPoolExecutor.submit`` while installed: the task runs in the submitter's
    capture, or in none (into the notebook) if the submitter has none."""
    submit = _original_submit
    if submit is None:  # (as in _start)
        from concurrent.futures import ThreadPoolExecutor

        submit = ThreadPoolExecutor.submit
    return submit(pool, _in_capture(_shared(), fn), *args, **kwargs)


def _in_capture(capture: Capture | None, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        outer = _current()
        _local.capture = capture
        try:
            return fn(*args, **kwargs)
        finally:
            _local.capture = outer

    return call


def _hook_threads() -> None:
    # Imported here, not at the top: this module is imported in every worker process (and in
    # the forkserver, before each worker), which never installs it and need not pay for
    # concurrent.futures (and the logging package it brings).
    from concurrent.futures import ThreadPoolExecutor as pool_class

    global _original_start, _original_submit
    if _original_start is None:
        _original_start = threading.Thread.start
        threading.Thread.start = _start  # type: ignore[method-assign,assignment]
    if _original_submit is None:
        _original_submit = pool_class.submit
        pool_class.submit = _submit  # type: ignore[method-assign,assignment]


def _unhook_threads() -> None:
    """Put the originals back, unless someone wrapped ours meanwhile: then ours stays inside
    theirs (with no capture in any thread it passes everything through), and the next
    install() finds it still in place."""
    from concurrent.futures import ThreadPoolExecutor as pool_class

    global _original_start, _original_submit
    if _original_start is not None and vars(threading.Thread).get("start") is _start:
        threading.Thread.start = _original_start  # type: ignore[method-assign,assignment]
        _original_start = None
    if _original_submit is not None and vars(pool_class).get("submit") is _submit:
        pool_class.submit = _original_submit  # type: ignore[method-assign]
        _original_submit = None


# -- API -------------------------------------------------------------------------------------


def install() -> None:
    """Put the routing proxies on ``sys.stdout``/``sys.stderr`` and hook thread starts and
    thread-pool submits (reference counted)."""
    global _installs
    with _lock:
        _installs += 1
        _wrap_current()
        _hook_threads()


def _wrap_current() -> None:
    for attr in ("stdout", "stderr"):
        stream = getattr(sys, attr)
        if stream is not None and not isinstance(stream, _ThreadRoutedStream):
            setattr(sys, attr, _ThreadRoutedStream(stream))


def uninstall() -> None:
    """Undo one :func:`install`; the last one restores the original streams, unless someone
    replaced them after us (then theirs stays), and the thread hooks."""
    global _installs
    with _lock:
        _installs = max(0, _installs - 1)
        if _installs:
            return
        for attr in ("stdout", "stderr"):
            stream = getattr(sys, attr)
            if isinstance(stream, _ThreadRoutedStream):
                setattr(sys, attr, stream._wrapped)
        _unhook_threads()


def begin() -> Capture | list[str]:
    """Start capturing this thread's output (and its new threads') into a fresh capture;
    returns its buffer, for :func:`text_of` (the run's :class:`Capture` is what
    :func:`buffer` gives while it runs)."""
    if _installs and (  # (type checks, not isinstance: this runs for every run of a burst)
        type(sys.stdout) is not _ThreadRoutedStream or type(sys.stderr) is not _ThreadRoutedStream
    ):
        # Someone replaced sys.stdout after install() (contextlib.redirect_stdout, pytest's
        # capsys, IPython's capture): wrap theirs too. Other threads' writes still pass
        # through to it, and whoever replaced it restores their saved stream as usual.
        _wrap_current()
    current = _local.capture
    if current is None:  # the common case (see the module doc)
        parts: list[str] = []
        _local.capture = parts
        return parts
    me = threading.get_ident()
    # Nested in a capture this thread began: restored by end(). One inherited from the thread
    # that started this one is not: a thread that runs runs of its own (an executor's worker,
    # started from inside a job) writes to the real streams between them.
    mine = type(current) is list or current.owner == me  # type: ignore[union-attr]
    capture = _local.capture = Capture(current if mine else None, me)
    return capture


def end() -> str:
    """Stop capturing this thread's output and return what it and its threads wrote. From
    now on, what those threads write is dropped."""
    capture = _local.capture
    if capture is None:
        return ""
    if type(capture) is list:
        _local.capture = None
        return "".join(capture) if capture else ""
    _local.capture = capture.outer  # type: ignore[union-attr]
    return capture.close()  # type: ignore[union-attr]


def buffer() -> Capture | list[str] | None:
    """The calling thread's capture (``append`` to it to capture), ``None`` if this thread is
    not capturing. A thread that outlived its run has a closed one: what it appends is
    dropped, and it must not go anywhere else either."""
    return _current()


def is_proxy(stream: object) -> bool:
    """True for the routing proxies :func:`install` puts on ``sys.stdout``/``sys.stderr``."""
    return isinstance(stream, _ThreadRoutedStream)
