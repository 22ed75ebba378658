"""How far ahead of its fire time the loop hands a run to an executor that starts it on time
itself (``Executor.accepts_early``).

At a fire time the workers should only have to start bodies: the loop's work for a fire --
deciding it, recording it, and on a shared store claiming it -- is done before. That work
grows with the number of fires due together: dispatching a burst of ten thousand takes ~0.05
s, and claiming them in an SQLite file ~0.2 s more, longer than the base lead of 0.1 s. So
the lead is worked out twice:

* *before* a wave (:meth:`Lead.ahead`): the loop counts the fires due around the next one and
  wakes early enough to dispatch all of them at the cost per fire of earlier waves (a first
  guess until a wave large enough to measure has been seen);
* *after* a wave (:meth:`Lead.end_wave`): at least twice as long as that wave took, shrinking
  by a tenth a wave back to the base.

Either way it is at most :data:`LEAD_MAX`. A lead of 0 stays 0 (every step explicit, as the
fake-clock tests want it).
"""

from __future__ import annotations

__all__ = ["DEFAULT_LEAD", "LEAD_MAX", "Lead"]

#: the base lead (seconds)
DEFAULT_LEAD = 0.1
#: the longest lead, whatever the burst (seconds)
LEAD_MAX = 1.0
#: first guesses of the loop's time per fire (seconds), until a wave measures it: dispatch
#: alone, and dispatch with a claim in a shared store (measured here: ~5 and ~10 us, on two
#: cores). On the high side, but not far: a wave handed over much earlier than it needs
#: keeps its runs waiting in the executor, and the first of them started later at its fire
#: time in an SQLite burst (2.4 against 1.8 ms with a guess of 30 us)
GUESS_PER_FIRE = 10e-6
GUESS_PER_CLAIMED_FIRE = 12e-6
#: the smallest wave whose duration says something about the cost per fire (a small one is
#: mostly the fixed cost of a pass)
_MEASURED_WAVE = 256


class Lead:
    """The loop's lead (:attr:`value`), with what it learns from the waves it dispatches.

    :param base: the lead with nothing due in bulk (``0``: never hand over early)
    :param claims: whether fires are claimed in a shared store (the first guess of the cost)
    """

    __slots__ = (
        "base", "value", "per_fire", "window_end", "_fires", "_enough", "_wave_start",
        "_wave_fires", "_counted",
    )

    def __init__(self, base: float, *, claims: bool) -> None:
        self.base = self.value = base
        self.per_fire = GUESS_PER_CLAIMED_FIRE if claims else GUESS_PER_FIRE
        self._wave_start: float | None = None
        self._wave_fires = 0
        # (first fire time, heap size, lead) of the last count: the loop asks before every
        # sleep, and the heap rarely changes in between
        self._counted: tuple[float, int, float] | None = None
        #: the end of the window the loop's sleep was worked out for (-inf: none); fires
        #: added to it may call for a longer lead (see pushed(); a fire time past it needs no
        #: call, which the loop checks inline: it pushes every fire's next fire time)
        self.window_end = float("-inf")
        self._fires = 0  # fires at most in that window, kept up to date by pushed()
        self._enough = 0.0  # ... past this many, the loop is to work the lead out again

    def ahead(self, heap: list[tuple[float, str]]) -> float:
        """The lead for the heap's first fire time: long enough to dispatch every fire due
        within it before it comes. ``heap`` is the loop's heap of ``(ts, name)``, not empty."""
        value = self.value
        if not value:
            return value
        first = heap[0][0]
        if len(heap) * self.per_fire * 2 <= value:
            self._watch(first + value, len(heap), value)
            return value  # even all of them would be dispatched in time
        counted = self._counted
        if counted is not None and counted[:2] == (first, len(heap)) and counted[2] >= value:
            return counted[2]
        cap = int(LEAD_MAX / (2 * self.per_fire)) + 1
        for _ in range(2):  # a longer lead takes in more fires: count once more
            due = _count_due(heap, first + value, cap)
            need = 2 * self.per_fire * due
            if need <= value:
                break
            value = min(LEAD_MAX, need)
        self.value = value
        self._counted = (first, len(heap), value)
        self._watch(first + value, due, value)
        return value

    def _watch(self, end: float, fires: int, value: float) -> None:
        self.window_end, self._fires = end, fires
        # a quarter more lead than this one is wanted past this many fires
        self._enough = 1.25 * value / (2 * self.per_fire) if value < LEAD_MAX else float("inf")

    def pushed(self) -> bool:
        """A fire time within :attr:`window_end` joined the heap: whether the loop should
        wake and work the lead out again (enough fires joined the window of its last count
        to call for a quarter more lead; so a burst of n fires added while the loop sleeps
        wakes it about log(n) times, not n; and not at all if the loop wakes LEAD_MAX before
        them anyway, as it does for a fire time far off)."""
        self._fires += 1
        return self._fires > self._enough

    def dispatched(self, now: float, fires: int) -> None:
        """A pass dispatched ``fires`` fires (at ``now``, its start): part of a wave."""
        if self._wave_start is None:
            self._wave_start = now
        self._wave_fires += fires

    def end_wave(self, now: float) -> None:
        """A pass dispatched nothing: the wave, if one was under way, ended at ``now``."""
        start, fires = self._wave_start, self._wave_fires
        self._wave_start, self._wave_fires = None, 0
        if start is None or not self.base:
            return
        took = now - start
        if fires >= _MEASURED_WAVE:
            self.per_fire = took / fires
        self.value = min(LEAD_MAX, max(self.base, 2 * took, 0.9 * self.value))


def _count_due(heap: list[tuple[float, str]], limit: float, cap: int) -> int:
    """How many items of the binary heap ``heap`` are due by ``limit`` (at most ``cap``):
    a walk that stops at every item past it, since all of its children are later still, so
    it costs the count rather than the heap's size. Stale items count too (on the safe
    side: a little more lead)."""
    size = len(heap)
    count = 0
    stack = [0]
    pop, push = stack.pop, stack.append
    while stack:
        i = pop()
        if i < size and heap[i][0] <= limit:
            count += 1
            if count >= cap:
                break
            push(2 * i + 1)
            push(2 * i + 2)
    return count
