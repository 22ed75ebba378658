"""Fires shared with other schedulers of the same store: which of them this one claims, and
what becomes of those it does not win.

Before it fires them, a dispatch pass claims its due fires in the store in one call
(``JobStore.claim_fires``). A fire another scheduler claimed first, or that the store shows
already past, is not fired here: the loop follows the store's next run time instead, or tries
that same fire again a little later (:attr:`FireClaims.retry`: its holder may die, and its
claim then runs out and is taken over here, late, under the misfire policy). The claim is
released by the next-run-time write that records the fire.

Sharing the work: with the first claim winning, the scheduler whose lead is longest (it grows
with the waves it dispatches) would win nearly every fire. So each fire has a first choice
among the live schedulers (:meth:`FireClaims.preferred`, rendezvous hashing: every scheduler
computes the same choice, and the fires spread evenly); the others claim it only
:data:`DEFER` after its fire time, if it is still free then (its first choice died, or is
slow). Who is alive comes from the store's beats (see ``sync.py``).
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Mapping, Sequence

from ..abc import JobStore
from .entry import Entry

__all__ = ["DEFER", "FireClaims"]

#: how long after its fire time a scheduler that is not a fire's first choice waits before
#: claiming it (seconds)
DEFER = 0.05


class FireClaims:
    """The claims of one scheduler (all of it under the loop's lock).

    :param store: the shared store
    :param scheduler_id: this scheduler's id in the store
    :param lease: how long a claim holds if it is not released (seconds)
    """

    def __init__(self, store: JobStore, scheduler_id: str, lease: float) -> None:
        self.store = store
        self.scheduler_id = scheduler_id
        self.lease = lease
        #: a fire another scheduler holds is tried again after this long (seconds): by then
        #: the store shows it recorded (and the next one to claim), or its holder is gone
        #: and its claim runs out; short enough that this follows a job firing every second
        self.retry = min(0.5, lease / 3)
        self._id_crc = zlib.crc32(scheduler_id.encode())
        #: the other live schedulers (crc32 of their ids)
        self.peers: tuple[int, ...] = ()
        # fires left to another scheduler, or held by one, tried again later:
        # (retry_at, ts, name)
        self._later: list[tuple[float, float, str]] = []

    def set_peers(self, peers: Sequence[str]) -> None:
        """The other schedulers alive on the store (from its beats)."""
        self.peers = tuple(zlib.crc32(p.encode()) for p in peers)

    def preferred(self, name: str, ts: float) -> bool:
        """Whether this scheduler is the first choice for fire ``ts`` of ``name`` among the
        live ones."""
        key = f"{name}@{ts!r}".encode()
        mine = zlib.crc32(key, self._id_crc)
        return all(mine > zlib.crc32(key, peer) for peer in self.peers)

    def leave_to_peer(self, name: str, ts: float, now: float) -> bool:
        """Whether fire ``ts`` of ``name`` is left, for now, to the live scheduler that is its
        first choice (it comes back :data:`DEFER` after its fire time, see :meth:`due`)."""
        if self.peers and now < ts + DEFER and not self.preferred(name, ts):
            heapq.heappush(self._later, (ts + DEFER, ts, name))
            return True
        return False

    def due(self, now: float, entries: Mapping[str, Entry], heap: list[tuple[float, str]]) -> None:
        """Put the fires whose retry time came back in the loop's ``heap``, unless their job
        moved on meanwhile."""
        later = self._later
        while later and later[0][0] <= now:
            _, ts, name = heapq.heappop(later)
            entry = entries.get(name)
            if entry is not None and entry.next_ts == ts:
                heapq.heappush(heap, (ts, name))

    def next_retry(self) -> float | None:
        """When :meth:`due` has something to give back."""
        return self._later[0][0] if self._later else None

    def claim(
        self,
        batch: dict[str, float],
        now: float,
        entries: Mapping[str, Entry],
        heap: list[tuple[float, str]],
    ) -> dict[str, float | None]:
        """Claim the fires of ``batch`` (job name: fire time) in the store, in one store
        call, and return those lost: the caller fires the others. Those lost follow the
        store: into ``heap`` at the time it shows, or tried again later; a store fault puts
        them all back in ``heap`` before it propagates."""
        try:
            lost = self.store.claim_fires(batch, self.scheduler_id, now, self.lease)
        except BaseException:
            for name, ts in batch.items():  # not fired: they stay due, for the pass that retries
                heapq.heappush(heap, (ts, name))
            raise
        retry_at = now + self.retry
        for name, stored in lost.items():
            ts = batch[name]
            entry = entries[name]
            if stored is None:
                # paused, removed or finished by another scheduler: the store look that
                # follows its change brings the rest
                entry.next_ts = None
            elif stored == ts:
                heapq.heappush(self._later, (retry_at, ts, name))
            else:
                # recorded by another scheduler (later), or an earlier fire no one holds
                # any more (earlier): that one is due here, late, under the misfire policy
                entry.next_ts = stored
                heapq.heappush(heap, (stored, name))
        return lost
