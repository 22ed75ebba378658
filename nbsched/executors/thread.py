"""Run jobs on a bounded pool of daemon threads inside this process.

Why not ``concurrent.futures.ThreadPoolExecutor``: its workers are joined at interpreter exit
(``threading._register_atexit``), so a program with a long job still running cannot exit --
exactly the hang nbsched promises never to cause. These workers are daemon threads, output
is captured per run (``_capture``), and a run over its timeout can be *abandoned*: it is
reported ``timed_out`` at once and its thread is replaced, since Python threads cannot be
killed.

The work queue is our own, for two reasons that only show with bursts (a thousand runs due
at the same instant; ``benchmarks/bench_lateness.py``):

* **No run waits for a particular thread.** Runs handed over before their fire time
  (``RunRequest.not_before``) stay in the queue, and one worker, the *keeper*, sleeps until
  the first of them is due. When it is, whichever worker holds the GIL takes the next due run.
  Had every worker taken a run of its own and slept until the fire time, the workers that
  woke while another held the GIL would each have started theirs one switch interval
  (``sys.getswitchinterval()``, 5 ms) late.
* **Bodies first.** When a run ends while another is already due, the worker starts that
  one before it reports the one that ended (``_unreported``): the ``Run`` record, listeners
  and the writer follow in order, once a worker finds nothing due and no other worker is
  about to start a body (``_starting``). The queue is taken from without a lock while runs
  are due (``_next``): workers queueing for a lock hand the GIL to one another through the
  OS at every run. A report waits :data:`REPORT_WITHIN` at most: past that, workers report
  it as runs end, and the reporter thread (``_report_late``) does when every worker is in
  a long body.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError
from ..jobs import Job, RunStatus
from . import capture as _capture

__all__ = ["ThreadJobExecutor"]

_STOP = "stop"  # from _take(): the executor shut down, the worker exits
_SHUT_DOWN = "the scheduler shut down before it started"

#: a run that ended, waiting to be reported: (request, status, output, error, finished_ts)
_Ended = tuple[RunRequest, RunStatus, str, "str | None", float]

#: longest a run's report (RunFinished, its record) waits for the bodies of other due runs
REPORT_WITHIN = 0.1
#: default of ``max_abandoned``: most extra threads started to replace abandoned ones
MAX_ABANDONED = 32
#: most early requests moved to the ready queue at once: at a burst's fire time the first
#: body starts after this many moves, not after all of them (10,000 took 1 ms); a worker
#: that finds the ready queue empty moves the next ones
RELEASE_AT_ONCE = 256


class ThreadJobExecutor(Executor):
    """A bounded pool of daemon threads.

    :param max_workers: most runs in flight at once (abandoned runs do not count)
    :param name: the executor name jobs refer to (``"thread"``; under another name, a second
        pool, which jobs choose with ``executor=``)
    :param max_abandoned: most threads kept beyond ``max_workers`` to replace threads whose
        runs were abandoned: past it, abandoned runs are not replaced, and the pool never
        holds more than ``max_workers + max_abandoned`` threads
    """

    name = "thread"
    accepts_early = True

    # Slots, because the workers read these attributes for every run of a burst. An instance
    # dict with more than 30 keys stops sharing its keys with the class (CPython), and every
    # `self._...` in the worker loop then takes a slower path: with the 30 this class had, a
    # run cost 5 % more instructions. (The base class still gives a __dict__, for `name` and
    # what the scheduler sets, such as `emit`.)
    __slots__ = (
        "max_workers", "max_abandoned", "_lock", "_threads", "_capacity", "_abandoned",
        "_n_abandoned", "_serial", "_inflight", "_captures", "_qlock", "_has_work", "_gate",
        "_ready", "_early", "_keeper", "_idle", "_waking", "_unreported", "_starting",
        "_reporter", "_report_due", "_look_at", "_reporter_wake", "_accepting", "_clock",
        "_on_started", "_on_finished",
    )

    def __init__(
        self, max_workers: int = 8, *, name: str = "thread", max_abandoned: int = MAX_ABANDONED
    ) -> None:
        if max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be at least 1, got {max_workers}")
        if max_abandoned < 0:
            raise InvalidArgumentError(f"max_abandoned must be ≥ 0, got {max_abandoned}")
        self.name = name  # type: ignore[misc]
        self.max_workers = max_workers
        self.max_abandoned = max_abandoned
        self._lock = threading.Lock()  # threads, capacity, abandoned runs
        self._threads: set[threading.Thread] = set()
        # one more thread for every abandoned run still running, up to max_abandoned more
        self._capacity = max_workers
        self._abandoned: dict[str, set[str]] = {}  # job name -> abandoned runs still running
        self._n_abandoned = 0
        self._serial = 0
        self._inflight: dict[str, RunRequest] = {}  # started, not yet ended
        # run id -> its body's capture buffer (see capture.begin)
        self._captures: dict[str, _capture.Capture | list[str]] = {}
        # The queue (see the module doc), all under _qlock:
        self._qlock = threading.Lock()
        self._has_work = threading.Condition(self._qlock)  # idle workers wait here
        self._gate = threading.Condition(self._qlock)  # the keeper waits here
        self._ready: deque[RunRequest] = deque()  # due when submitted
        self._early: deque[tuple[float, RunRequest]] = deque()  # (not_before, request), sorted
        self._keeper = False
        self._idle = 0  # workers waiting on _has_work
        self._waking = 0  # of those, notified and not yet awake
        self._unreported: deque[_Ended] = deque()  # in the order they ended
        self._starting: set[threading.Thread] = set()  # workers between a take and a body
        # The reporter: a thread that sends reports left waiting when no worker does.
        self._reporter: threading.Thread | None = None  # started when first needed
        self._report_due = threading.Condition(threading.Lock())
        self._look_at: float | None = None  # asked to look at the reports by then
        self._reporter_wake: float | None = None  # it sleeps until then (None: until told)
        self._accepting = False
        self._clock: Clock | None = None
        self._on_started: StartCallback = lambda req: None
        self._on_finished: FinishCallback = lambda *a: None

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock = clock
        self._on_started = on_started
        self._on_finished = on_finished
        self._accepting = True

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:
        """Anything callable runs in a thread."""

    # ------------------------------------------------------------------ the queue

    def submit(self, request: RunRequest) -> None:
        if not self._accepting:
            self._finish(request, RunStatus.cancelled, "", "the executor is shut down")
            return
        with self._qlock:
            not_before = request.not_before
            if not_before is None:
                self._ready.append(request)
                if self._idle > self._waking:
                    self._wake_one()
                elif self._keeper:  # nobody idle: the keeper can take it meanwhile
                    self._gate.notify()
            else:
                early = self._early
                if not early or not_before >= early[-1][0]:
                    early.append((not_before, request))
                else:  # out of fire-time order (rare): keep the queue sorted
                    i = len(early)
                    while i and early[i - 1][0] > not_before:
                        i -= 1
                    early.insert(i, (not_before, request))
                if early[0][1] is request:  # the first one now: (re)arm the gate
                    if self._keeper:
                        self._gate.notify()
                    elif self._idle > self._waking:
                        self._wake_one()
            # Start another worker only when no idle one will pick this request up.
            spawn = self._idle < len(self._ready) + len(self._early)
        if spawn and len(self._threads) < self._capacity:
            self._spawn()
        if not_before is not None:
            # A burst may come at not_before: arm the reporter now, not in the middle of it.
            self._arm_reporter(not_before + REPORT_WITHIN)

    def backlog(self) -> int:
        return len(self._ready) + len(self._early)

    def _wake_one(self) -> None:
        """(qlock held) Wake one idle worker."""
        self._waking += 1
        self._has_work.notify()

    def _release_due(self) -> None:
        """(qlock held) Move early requests whose fire time has come to the ready queue
        (:data:`RELEASE_AT_ONCE` at most)."""
        early = self._early
        assert self._clock is not None
        if early:
            now = self._clock.time()
            ready = self._ready
            for _ in range(RELEASE_AT_ONCE):
                if not early or early[0][0] > now:
                    return
                ready.append(early.popleft()[1])

    def _hand_on(self) -> None:
        """(qlock held, a request just taken) More to do now, or a gate left unkept: one
        more worker (a chain, not a herd)."""
        if self._idle > self._waking and (self._ready or (self._early and not self._keeper)):
            self._wake_one()

    def _next(self) -> RunRequest | None:
        """The next due request, ``None`` if nothing is due.

        Lock-free while the ready queue has requests (``deque.popleft`` is atomic): during a
        burst every worker goes through here once per run, and workers that queued for a
        lock each time handed the GIL to one another by way of the OS, doubling the cost of
        a run."""
        ready = self._ready
        try:
            item = ready.popleft()
        except IndexError:
            if not self._early:
                return None
            with self._qlock:
                self._release_due()
                try:
                    item = ready.popleft()
                except IndexError:
                    return None
                self._hand_on()
                return item
        if ready and self._idle > self._waking:
            with self._qlock:
                self._hand_on()
        return item

    def _take(self) -> RunRequest | str:
        """The next due request, waiting for one (or :data:`_STOP`)."""
        clock = self._clock
        assert clock is not None
        with self._qlock:
            while True:
                if not self._accepting:
                    return _STOP
                self._release_due()
                try:
                    item = self._ready.popleft()
                except IndexError:
                    pass
                else:
                    self._hand_on()
                    return item
                if self._early and not self._keeper:
                    self._keeper = True
                    try:
                        clock.wait(self._gate, self._early[0][0])
                    finally:
                        self._keeper = False
                else:
                    self._idle += 1
                    try:
                        self._has_work.wait()
                    finally:
                        self._idle -= 1
                        if self._waking:
                            self._waking -= 1

    def _take_after(self, ended: _Ended) -> RunRequest | None:
        """After a run ended: the next due request, ``None`` if nothing is due. ``ended`` is
        reported after the bodies of the runs due (bodies first), at most
        :data:`REPORT_WITHIN` after it ended; at once if nothing is due or waits."""
        item = self._next() if self._accepting else None
        unreported = self._unreported
        if item is None and not unreported:
            self._on_finished(*ended)  # (the common case: nothing waits)
            return None
        unreported.append(ended)  # (with nothing due, _work reports them before it waits)
        try:
            oldest = unreported[0]
        except IndexError:  # another worker reported it meanwhile
            return item
        if oldest is ended:
            self._arm_reporter(ended[4] + REPORT_WITHIN)
        elif oldest[4] <= ended[4] - REPORT_WITHIN:  # (checked here: this runs for every run)
            self._report_overdue(ended[4])
        return item

    def _report_overdue(self, now: float) -> None:
        """Report the runs that ended :data:`REPORT_WITHIN` ago or longer."""
        unreported, limit = self._unreported, now - REPORT_WITHIN
        while True:
            try:
                if unreported[0][4] > limit:
                    return
                ended = unreported.popleft()  # (atomic: another worker may report too)
            except IndexError:
                return
            self._on_finished(*ended)

    def _report_unreported(self, everything: bool = False) -> None:
        """Report the runs that ended during a burst, in the order they ended: all of them,
        or until runs are due again (bodies first; what is left waits no longer than
        :data:`REPORT_WITHIN` all the same)."""
        unreported, ready = self._unreported, self._ready
        while everything or not ready:
            try:
                ended = unreported.popleft()  # (atomic: another worker may report too)
            except IndexError:
                return
            self._on_finished(*ended)

    def _arm_reporter(self, at: float) -> None:
        """Make sure the reporter looks at the reports left waiting by ``at`` (clock time),
        even if every worker is busy then. Lock-free when it already will: this runs for
        every early request and at the first report left waiting."""
        look, wake = self._look_at, self._reporter_wake
        if (look is not None and look <= at) or (wake is not None and wake <= at):
            return
        with self._report_due:
            if self._look_at is None or at < self._look_at:
                self._look_at = at
            if self._reporter is None:
                self._reporter = threading.Thread(
                    target=self._report_late, name=f"nbsched-{self.name}-reporter", daemon=True
                )
                self._reporter.start()
            self._report_due.notify()

    def _report_late(self) -> None:
        clock = self._clock
        assert clock is not None
        with self._report_due:
            while self._accepting:
                now = clock.time()
                look = self._look_at
                if look is not None and look <= now:
                    self._look_at = look = None  # (before looking: see _arm_reporter)
                wake = look
                try:
                    due: float | None = self._unreported[0][4] + REPORT_WITHIN
                except IndexError:
                    due = None
                if due is not None:
                    if now >= due:
                        self._report_due.release()  # (listeners must not run under our lock)
                        try:
                            self._report_overdue(now)
                        finally:
                            self._report_due.acquire()
                        continue
                    wake = due if wake is None else min(wake, due)
                self._reporter_wake = wake
                clock.wait(self._report_due, wake)
                self._reporter_wake = None

    def _unqueue(self, run_id: str) -> RunRequest | None:
        """Take a request that has not started out of the queue."""
        with self._qlock:
            for pair in self._early:
                if pair[1].run_id == run_id:
                    self._early.remove(pair)
                    return pair[1]
            # (workers pop the ready queue without the lock: look at a copy, and a request
            # gone by the time it is removed has been taken by one)
            for item in list(self._ready):
                if item.run_id == run_id:
                    try:
                        self._ready.remove(item)
                    except ValueError:
                        return None
                    return item
        return None

    # ------------------------------------------------------------------ workers

    def _spawn(self) -> None:
        with self._lock:  # (shutdown() snapshots the threads under the same lock)
            if not self._accepting or len(self._threads) >= self._capacity:
                return
            self._serial += 1
            thread = threading.Thread(
                target=self._work, name=f"nbsched-{self.name}-{self._serial}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        clock = self._clock
        assert clock is not None
        inflight = self._inflight
        starting = self._starting
        request: RunRequest | str | None = None  # the next one, when already taken
        try:
            while True:
                if request is None:
                    request = self._next() if self._accepting else _STOP
                    while request is None:
                        # Nothing is due: catch up on reports, unless another worker is about
                        # to start a body (it reports after it; we would only hold it up).
                        if self._unreported and not starting:
                            self._report_unreported()
                            request = self._next() if self._accepting else _STOP
                        else:
                            request = self._take()
                if isinstance(request, str):  # _STOP
                    return
                starting.add(me)  # (set.add and .discard are atomic)
                run_id = request.run_id
                inflight[run_id] = request  # (from here on, cancel() can report it)
                request.started_ts = clock.time()
                reason = self._on_started(request)
                starting.discard(me)
                if reason is not None:  # its job was paused or removed since
                    if inflight.pop(run_id, None) is not None:
                        self._on_finished(request, RunStatus.cancelled, "", reason, clock.time())
                    elif self._returned(me, request):  # cancel() reported it first
                        return
                    request = None
                    continue
                captures = self._captures
                captures[run_id] = _capture.begin()
                error = None
                try:
                    assert request.func is not None
                    request.func(*request.args, **request.kwargs)
                    status = RunStatus.succeeded
                except BaseException:  # a job's SystemExit/KeyboardInterrupt ends the run only
                    status = RunStatus.failed
                    error = traceback.format_exc()
                output = _capture.end()
                del captures[run_id]
                # Whoever pops the request first reports it: this thread, or cancel().
                if inflight.pop(run_id, None) is None:
                    if self._returned(me, request):
                        return
                    request = None
                    continue
                request = self._take_after((request, status, output, error, clock.time()))
        finally:
            starting.discard(me)
            self._report_unreported(everything=True)
            with self._lock:
                self._threads.discard(me)

    def _abandon(self, request: RunRequest) -> None:
        """(``_lock`` held) ``request`` goes on in its thread, reported: count it, and let
        the pool start a replacement (up to ``max_abandoned`` of them)."""
        self._abandoned.setdefault(request.job_name, set()).add(request.run_id)
        self._n_abandoned += 1
        self._capacity = self.max_workers + min(self._n_abandoned, self.max_abandoned)

    def _returned(self, me: threading.Thread, request: RunRequest) -> bool:
        """An abandoned run finally returned: forget it, and say whether this thread is one
        too many now (it then exits)."""
        with self._lock:
            runs = self._abandoned.get(request.job_name)
            if runs is not None and request.run_id in runs:
                runs.discard(request.run_id)
                if not runs:
                    del self._abandoned[request.job_name]
                self._n_abandoned -= 1
                self._capacity = self.max_workers + min(self._n_abandoned, self.max_abandoned)
            return len(self._threads) > self._capacity

    def abandoned(self, job_name: str | None = None) -> int:
        if job_name is None:
            return self._n_abandoned
        runs = self._abandoned.get(job_name)
        return 0 if runs is None else len(runs)

    # ------------------------------------------------------------------ control

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        why = "timed out" if status is RunStatus.timed_out else "cancelled"
        request = self._inflight.pop(run_id, None)
        if request is None:
            queued = self._unqueue(run_id)
            if queued is None:
                return False
            self._finish(queued, status, "", f"Run {why} before it started")
            return True
        # The thread cannot be stopped; let the pool start a replacement meanwhile.
        with self._lock:
            self._abandon(request)
        self._finish(
            request,
            status,
            "",
            f"Run {why}; its thread could not be stopped and was abandoned "
            "(use executor='process' for jobs that must be killable)",
        )
        return True

    def output_so_far(self, run_id: str) -> str | None:
        # (lock-free dict reads; the capture has its own lock)
        capture = self._captures.get(run_id)
        if capture is None or run_id not in self._inflight:  # (not running, or reported)
            return None
        return _capture.text_of(capture)

    def _finish(self, request: RunRequest, status: RunStatus, output: str, error: str) -> None:
        now = self._clock.time() if self._clock else 0.0
        self._on_finished(request, status, output, error, now)

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            threads = list(self._threads)
        # Requests still queued never started: report them cancelled. Waiting workers exit.
        with self._qlock:
            pending = [r for _, r in self._early]
            self._early.clear()
            while self._ready:  # (popleft: workers may be taking from it right now)
                try:
                    pending.append(self._ready.popleft())
                except IndexError:
                    break
            self._has_work.notify_all()
            self._gate.notify_all()
        with self._report_due:
            self._report_due.notify_all()
        self._report_unreported(everything=True)  # ended before those that never started
        for request in pending:
            self._finish(request, RunStatus.cancelled, "", _SHUT_DOWN)
        if wait and self._clock is not None:
            # (real time: threads finish in real time even under a fake clock)
            deadline = time.monotonic() + timeout
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._report_unreported(everything=True)  # left by workers still in a body
        # Whatever still runs is abandoned (daemon threads never block interpreter exit).
        for run_id in list(self._inflight):
            self.cancel(run_id, RunStatus.cancelled)

    def __repr__(self) -> str:
        return (
            f"<ThreadJobExecutor {self.name!r} max_workers={self.max_workers} "
            f"threads={len(self._threads)} running={len(self._inflight)}>"
        )
