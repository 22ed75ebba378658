"""Argument checks both stores share (private)."""

from __future__ import annotations

from ..errors import InvalidArgumentError

__all__ = ["check_retention", "check_limit"]


def check_retention(retention: int) -> int:
    """Validate the ``retention`` argument of a store."""
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
        raise InvalidArgumentError(
            f"retention must be a positive number of runs per job, got {retention!r}"
        )
    return retention


def check_limit(limit: int) -> int:
    """Validate the ``limit`` argument of ``get_runs``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgumentError(f"limit must be a number >= 0, got {limit!r}")
    return limit
