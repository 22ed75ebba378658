"""The one way tests wait: on a condition, with a bound, never a hopeful sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "", poll: float = 0.01
) -> None:
    """Return as soon as ``predicate()`` is true; raise ``AssertionError`` naming ``what``
    when it is still false after ``timeout`` seconds (checked every ``poll`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(poll)
