"""Importable job targets for the server's tests (``tests.server.jobfuncs:hello``)."""

from __future__ import annotations

import threading

#: set by a test to let :func:`wait_here` finish
release = threading.Event()


def hello() -> str:
    print("hello from the server's scheduler")
    return "hi"


def wait_here() -> None:
    print("waiting")
    release.wait(30)


def boom() -> None:
    raise RuntimeError("boom on purpose")
