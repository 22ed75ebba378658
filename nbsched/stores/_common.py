"""What both stores share (private): argument checks, and the rule of fire-time claims."""

from __future__ import annotations

from ..errors import InvalidArgumentError

__all__ = ["check_retention", "check_limit", "decide", "CRASHED_WHY"]


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


#: the error of runs left ``running`` by a scheduler that is gone
CRASHED_WHY = "The process running it ended before the run finished"


def decide(
    ts: float,
    next_ts: float | None,
    paused: bool,
    holder: str | None,
    until: float | None,
    fire: float | None,
    owner_id: str,
    now: float,
) -> tuple[bool, float | None, str | None]:
    """Whether ``owner_id`` may claim fire time ``ts`` of a job whose stored state is given:
    ``(won, what a loser gets back, the expired holder taken over or None)``.

    It wins when no other scheduler's claim is live and either the stored next run time is
    ``ts`` (nobody advanced it) or it holds the claim of an earlier fire itself (its own
    next-run-time write is still on its way: nobody else can claim meanwhile). A loser gets
    the stored next run time (``None``: paused, or no more fires)."""
    live = holder is not None and until is not None and until > now
    if paused or next_ts is None:
        return False, None, None
    if live and holder != owner_id:
        return False, next_ts, None
    mine = live and holder == owner_id and fire is not None and ts > fire
    if next_ts == ts or mine:
        gone = holder if holder is not None and not live and holder != owner_id else None
        return True, None, gone
    return False, next_ts, None
