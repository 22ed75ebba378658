"""Per-thread capture of ``sys.stdout`` / ``sys.stderr``.

A job's prints must land in its own ``Run.output`` -- never in whatever notebook cell happens
to be running (APScheduler's thread jobs print into the most recent cell). Python-level writes
go through ``sys.stdout``; we replace it (and stderr) once with a proxy that looks up a
per-thread buffer. Threads without a buffer write through to the original stream untouched,
so the notebook's own output is unaffected. Writes at the file-descriptor level (C
extensions, ``os.system``) cannot be told apart per thread; the process executor captures
those for its own runs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

__all__ = ["install", "uninstall", "begin", "end", "buffer", "is_proxy"]

_local = threading.local()
_lock = threading.Lock()
_installs = 0


class _ThreadRoutedStream:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes from a capturing thread go to its
    buffer, everything else to the stream that was there before."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def write(self, text: str) -> int:
        buf = getattr(_local, "buf", None)
        if buf is None:
            return self._wrapped.write(text)
        buf.append(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if getattr(_local, "buf", None) is None:
            self._wrapped.flush()

    def isatty(self) -> bool:
        return getattr(_local, "buf", None) is None and self._wrapped.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ... of the real stream
        return getattr(self._wrapped, name)


def install() -> None:
    """Put the routing proxies on ``sys.stdout``/``sys.stderr`` (reference counted)."""
    global _installs
    with _lock:
        _installs += 1
        _wrap_current()


def _wrap_current() -> None:
    for attr in ("stdout", "stderr"):
        stream = getattr(sys, attr)
        if stream is not None and not isinstance(stream, _ThreadRoutedStream):
            setattr(sys, attr, _ThreadRoutedStream(stream))


def uninstall() -> None:
    """Undo one :func:`install`; the last one restores the original streams, unless someone
    replaced them after us (then theirs stays)."""
    global _installs
    with _lock:
        _installs = max(0, _installs - 1)
        if _installs:
            return
        for attr in ("stdout", "stderr"):
            stream = getattr(sys, attr)
            if isinstance(stream, _ThreadRoutedStream):
                setattr(sys, attr, stream._wrapped)


def begin() -> None:
    """Start capturing this thread's output (into a fresh buffer)."""
    if _installs and not (
        isinstance(sys.stdout, _ThreadRoutedStream) and isinstance(sys.stderr, _ThreadRoutedStream)
    ):
        # Someone replaced sys.stdout after install() (contextlib.redirect_stdout, pytest's
        # capsys, IPython's capture): wrap theirs too. Other threads' writes still pass
        # through to it, and whoever replaced it restores their saved stream as usual.
        _wrap_current()
    _local.buf = []


def end() -> str:
    """Stop capturing this thread's output and return what it wrote."""
    buf = getattr(_local, "buf", None)
    _local.buf = None
    return "".join(buf) if buf else ""


def buffer() -> list[str] | None:
    """The calling thread's capture buffer (append to it to capture), ``None`` if this
    thread is not capturing."""
    return getattr(_local, "buf", None)


def is_proxy(stream: object) -> bool:
    """True for the routing proxies :func:`install` puts on ``sys.stdout``/``sys.stderr``."""
    return isinstance(stream, _ThreadRoutedStream)
