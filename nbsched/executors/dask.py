"""Run jobs on a Dask cluster: ``Scheduler(executors={"dask": DaskJobExecutor(address)})``.

The scheduler keeps deciding *when* (its triggers, store, records); the cluster decides
*where*. Each run is one Dask task, which runs the job in a process of its own on a worker
(:mod:`._dask_remote`), so runs on the cluster get what local process jobs get: output
captured at the file-descriptor level into ``Run.output``, timeouts and ``cancel_run`` that
really stop the run's whole process tree on the worker (the worker stays usable), and
functions defined in a notebook travel by value (cloudpickle). A function run's process is
forked by a warm process that each worker thread keeps (:mod:`._dask_warm`): a run costs a
``fork``, not a Python start, and still starts from a clean slate.

Notebook jobs (a ``.ipynb`` target) run there too, through the same runner as the local
notebook executor (:func:`nbsched.runner.run_notebook`, in a kernel the worker's child
process starts): parameters are injected as locally, the text the cells print is the run's
output, and a timeout or ``cancel_run`` kills the kernel and everything it started on the
worker. The executed notebook is written where the local notebook executor would write it
(``output_dir``, ``Run.output_path``) -- **by the worker**, so that path must be on a file
system the workers share with the scheduler (as a ``LocalCluster``'s workers do); the
notebook itself is read there, from the job's absolute path, as well.

The cluster is a dependency that can go away, like the store: when the Dask scheduler is
unreachable, runs in flight are recorded ``crashed`` with the reason, new runs are recorded
``failed`` with it (never queued silently), :meth:`DaskJobExecutor.fault` says what is wrong
(the scheduler's ``status()`` shows it), and the connection is retried with backoff until the
cluster is back. Nothing here ever waits on the cluster without a bound.

``distributed`` is imported only when the executor starts: the core stays free of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudpickle

from ..abc import Clock, Executor, FinishCallback, RunRequest, StartCallback
from ..errors import InvalidArgumentError, NotPicklableError, SchedulerNotRunningError
from ..jobs import Job, RunStatus
from ._dask_notebook import pack_notebook
from ._dask_remote import STARTED_TOPIC, cancel_on_worker, run_task
from .payload import pack

__all__ = ["DaskJobExecutor"]

_log = logging.getLogger(__name__)

#: longest wait for the cluster when connecting or reaching the workers to stop a run
CONNECT_TIMEOUT = 10.0
#: backoff between reconnection attempts while the cluster is unreachable
RETRY_MIN, RETRY_MAX = 1.0, 30.0
#: longest ``cancel()`` waits for the stopped run's result -- what it printed until then --
#: before reporting it without (seconds)
CANCEL_WAIT = 3.0


class DaskJobExecutor(Executor):
    """Runs jobs on a ``distributed`` cluster.

    :param cluster: the Dask scheduler's address (``"tcp://host:8786"``), or a connected
        ``distributed.Client`` (then it stays the caller's: :meth:`shutdown` does not close it)
    :param name: the executor name jobs refer to
    :param output_dir: where notebook jobs' executed notebooks go, as for
        :class:`~nbsched.executors.notebook.NotebookJobExecutor` (default: ``$NBSCHED_OUTPUT_DIR``,
        else ``<jupyter data dir>/nbsched/runs``); the workers must see the same folder
    :param kernel_name: kernel for every notebook run instead of each notebook's own

    A run's output comes back with its result: :meth:`output_so_far` returns ``None`` (runs
    print on another machine). A run stopped by ``cancel_run`` or its timeout is reported
    with what it printed until it was stopped, which :meth:`cancel` waits for at most
    :data:`CANCEL_WAIT` seconds (a slow cluster's run is then reported without it).
    """

    name = "dask"

    def __init__(
        self,
        cluster: str | Any,
        *,
        name: str = "dask",
        output_dir: str | Path | None = None,
        kernel_name: str | None = None,
    ) -> None:
        if not isinstance(cluster, str) and not hasattr(cluster, "submit"):
            raise InvalidArgumentError(
                f"DaskJobExecutor needs a scheduler address like 'tcp://host:8786' or a "
                f"distributed.Client, not {cluster!r}"
            )
        self.name = name  # type: ignore[misc]
        self._address = cluster if isinstance(cluster, str) else None
        self._client: Any = None if isinstance(cluster, str) else cluster
        self._own_client = isinstance(cluster, str)
        self._lock = threading.Lock()
        self._inflight: dict[str, tuple[RunRequest, Any]] = {}  # run id -> (request, future)
        self._fault: str | None = None
        self._closing = threading.Event()
        self._on_started: StartCallback | None = None
        self._on_finished: FinishCallback | None = None
        self._clock: Clock | None = None
        self._connector: threading.Thread | None = None
        self._stoppers: list[threading.Thread] = []  # helper threads stopping remote runs
        self.output_dir = Path(output_dir).expanduser() if output_dir is not None else None
        self.kernel_name = kernel_name
        self._claimed: set[Path] = set()  # output notebooks of runs in flight

    def __repr__(self) -> str:
        where = self._address or getattr(self._client, "scheduler", None)
        return f"<DaskJobExecutor {self.name!r} {where} runs={len(self._inflight)}>"

    # -- Executor contract -------------------------------------------------------------

    def start(self, clock: Clock, on_started: StartCallback, on_finished: FinishCallback) -> None:
        self._clock, self._on_started, self._on_finished = clock, on_started, on_finished
        self._closing.clear()
        if self._client is not None:
            self._attach(self._client)
        else:
            self._connect_in_background()

    def validate(self, job: Job, func: Callable[..., Any] | None) -> None:
        if job.kind == "notebook":
            if job.parameters:
                from ..runner import validate_parameters

                validate_parameters(job.parameters)
            return
        try:
            cloudpickle.dumps((func, job.args, dict(job.kwargs)))
        except Exception as exc:
            raise NotPicklableError(
                f"Job {job.name!r} cannot be sent to a Dask worker: {exc}"
            ) from None

    def submit(self, request: RunRequest) -> None:
        if self._on_finished is None:
            raise SchedulerNotRunningError("DaskJobExecutor.submit() called before start()")
        notebook = request.func is None and request.target.endswith(".ipynb")
        try:
            payload = self._pack_notebook(request) if notebook else pack(request)
        except Exception as exc:
            self._report(request, RunStatus.failed, f"Cannot send the job to Dask: {exc}")
            return
        client = self._client
        if self._closing.is_set():
            self._report(request, RunStatus.cancelled, "The executor was shut down")
            return
        if client is None or client.status != "running":
            self._report(request, RunStatus.failed, self._fault or "Not connected to Dask yet")
            return
        with self._lock:
            future = client.submit(
                run_task,
                payload,
                request.run_id,
                request.timeout,
                notebook,
                key=f"nbsched-{request.job_name}-{request.run_id}",
                pure=False,
            )
            self._inflight[request.run_id] = (request, future)
        future.add_done_callback(lambda f, rid=request.run_id: self._done(rid, f))

    def cancel(self, run_id: str, status: RunStatus = RunStatus.cancelled) -> bool:
        with self._lock:
            entry = self._inflight.pop(run_id, None)  # (its result is ours now, not _done's)
        if entry is None:
            return False
        request, future = entry
        why = (
            f"Stopped after its timeout of {request.timeout} s"
            if status is RunStatus.timed_out
            else "Cancelled"
        )
        deadline = time.monotonic() + CANCEL_WAIT
        stopper = self._stop_remote([run_id], status, future, keep_running=True)
        # The worker stops the run and sends back its result with what it printed so far
        # (the contract wants the run reported when we return: wait for that, bounded).
        output = "" if stopper is None else _stopped_output(future, stopper, deadline)
        self._report(request, status, why, output)
        return True

    def shutdown(self, *, wait: bool = True, timeout: float = 1.0) -> None:
        self._closing.set()
        with self._lock:
            entries = list(self._inflight.values())
            self._inflight.clear()
        for request, _ in entries:
            self._report(request, RunStatus.cancelled, "The scheduler shut down during the run")
        # Stopping remote runs and closing our client talk to the cluster: a helper thread
        # does it, and we wait for it at most ``timeout`` (never for an unreachable cluster).
        helper = threading.Thread(
            target=self._release,
            args=([r.run_id for r, _ in entries], [f for _, f in entries], timeout),
            name="nbsched-dask-shutdown",
            daemon=True,
        )
        helper.start()
        if wait:
            helper.join(timeout)

    def fault(self) -> str | None:
        """Why the cluster cannot run jobs right now, or ``None`` when it can."""
        return self._fault

    # -- connection --------------------------------------------------------------------

    def _connect_in_background(self) -> None:
        self._connector = threading.Thread(
            target=self._connect_loop, name="nbsched-dask-connect", daemon=True
        )
        self._connector.start()

    def _connect_loop(self) -> None:
        from distributed import Client

        connect: Any = Client  # untyped library
        delay = RETRY_MIN
        while not self._closing.is_set():
            try:
                client = connect(self._address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except Exception as exc:  # OSError, TimeoutError, CommClosedError, ...
                self._set_fault(f"Cannot reach the Dask scheduler at {self._address}: {exc}")
                self._closing.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self._closing.is_set():
                client.close(timeout=1)
                return
            self._attach(client)
            return

    def _attach(self, client: Any) -> None:
        self._client = client
        client.subscribe_topic(STARTED_TOPIC, self._started_event)
        self._set_fault(None)

    def _set_fault(self, message: str | None) -> None:
        if message != self._fault:
            if message is None:
                _log.info("Dask cluster reachable again")
            else:
                _log.warning("%s", message)
        self._fault = message

    # -- results -----------------------------------------------------------------------

    def _started_event(self, event: tuple[float, dict[str, Any]]) -> None:
        """On the client's event loop: a worker started the body of a run."""
        msg = event[1]
        with self._lock:
            entry = self._inflight.get(msg.get("run_id", ""))
        if entry is not None and entry[0].started_ts is None:
            entry[0].started_ts = float(msg["ts"])
            assert self._on_started is not None
            self._on_started(entry[0])

    def _done(self, run_id: str, future: Any) -> None:
        """On Dask's callback thread: a run's task ended one way or another."""
        with self._lock:
            entry = self._inflight.pop(run_id, None)
        if entry is None:
            return  # cancelled or shut down: already reported
        request = entry[0]
        if future.status == "finished":
            status, output, error, started, finished = future.result()
            if request.started_ts is None and started is not None:
                request.started_ts = started
                assert self._on_started is not None
                self._on_started(request)
            self._report(request, RunStatus(status), error, output, finished)
        elif future.status == "cancelled":  # the client lost the scheduler
            lost = f"Lost the Dask scheduler at {self._address or 'its address'} during the run"
            self._set_fault(lost)
            self._report(request, RunStatus.crashed, lost)
            if self._own_client and not self._closing.is_set():
                self._watch_reconnect()
        else:  # "error": the task itself failed (a worker died, KilledWorker, ...)
            exc = future.exception()
            self._report(request, RunStatus.crashed, f"The Dask task failed: {exc!r}")

    def _watch_reconnect(self) -> None:
        """Clear the fault once the client is connected again (it reconnects by itself for
        a while; after it gives up, a new client is made with backoff)."""

        def watch() -> None:
            delay = RETRY_MIN
            while not self._closing.is_set():
                client = self._client
                if client is not None and client.status == "running":
                    self._set_fault(None)
                    return
                if client is not None and client.status in ("closed", "closing"):
                    self._client = None
                    self._connect_loop()
                    return
                self._closing.wait(delay)
                delay = min(delay * 2, RETRY_MAX)

        if not any(t.name == "nbsched-dask-watch" for t in threading.enumerate()):
            threading.Thread(target=watch, name="nbsched-dask-watch", daemon=True).start()

    def _report(
        self,
        request: RunRequest,
        status: RunStatus,
        error: str | None,
        output: str = "",
        finished: float | None = None,
    ) -> None:
        assert self._on_finished is not None
        if request.output_path is not None:
            path = Path(request.output_path)
            with self._lock:
                self._claimed.discard(path)
            if status is not RunStatus.cancelled and status is not RunStatus.timed_out:
                # (a stopped run's worker may still be saving it: keep the path then)
                if not path.exists():  # it never started: no notebook, a bad file
                    request.output_path = None
        when = finished if finished is not None else self._now()
        self._on_finished(request, status, output, error, when)

    def _pack_notebook(self, request: RunRequest) -> bytes:
        """A notebook run's settings, with its output notebook's path chosen (and set on the
        request: ``Run.output_path``) as the local notebook executor chooses it."""
        from ..runner import default_output_dir, default_output_path

        when = datetime.fromtimestamp(request.scheduled_ts, UTC)
        folder = self.output_dir or default_output_dir()
        path = default_output_path(request.job_name, when, folder)
        with self._lock:  # two runs of a job in the same second get -2, -3, ...
            candidate, n = path, 1
            while candidate in self._claimed or candidate.exists():
                n += 1
                candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
            self._claimed.add(candidate)
        request.output_path = str(candidate)
        return pack_notebook(
            request.target, parameters=request.parameters, output_path=candidate,
            kernel_name=self.kernel_name, timeout=request.timeout,
        )

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    def _stop_remote(
        self, run_ids: list[str], status: RunStatus, *futures: Any, keep_running: bool = False
    ) -> threading.Thread | None:
        """Kill the runs' processes on the workers, from a helper thread (returned; ``None``
        when the cluster is out of reach): ``cancel`` is called from the scheduler's loop,
        which must not wait on the network without a bound. Each run's future is cancelled
        too -- a run still queued on the cluster never starts -- except, with
        ``keep_running``, the futures of runs a worker was running and stopped: their
        results (what they printed) are still to come."""
        client = self._client
        if client is None or client.status != "running":
            return None  # the worker's own timeout (or the worker's death) stops it

        def stop() -> None:
            try:
                for run_id, future in zip(run_ids, futures, strict=True):
                    stopped = client.run(cancel_on_worker, run_id, status.value)
                    if not keep_running or not any(stopped.values()):
                        future.cancel()
            except Exception as exc:  # the cluster went away meanwhile
                _log.warning("Could not stop runs %s on the Dask workers: %s", run_ids, exc)

        t = threading.Thread(target=stop, name="nbsched-dask-stop", daemon=True)
        t.start()
        self._stoppers = [x for x in self._stoppers if x.is_alive()] + [t]
        return t

    def _release(self, run_ids: list[str], futures: list[Any], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._stop_remote(run_ids, RunStatus.cancelled, *futures)
        for t in self._stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        self._stoppers.clear()
        if self._own_client and self._client is not None:
            try:
                self._client.close(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:
                _log.debug("closing the Dask client: %s", exc)
            self._client = None


def _stopped_output(future: Any, stopper: threading.Thread, deadline: float) -> str:
    """What a stopped run printed, from its result (``""`` if none comes by ``deadline``:
    the run was still queued, or the cluster is slow)."""
    stopper.join(max(0.0, deadline - time.monotonic()))
    try:
        # (a moment at least: a result already here is handed over on the client's loop)
        result = future.result(timeout=max(0.05, deadline - time.monotonic()))
    except Exception:  # cancelled while queued, timed out, lost: nothing printed here
        return ""
    output = result[1] if isinstance(result, tuple) and len(result) == 5 else ""
    return output if isinstance(output, str) else ""
