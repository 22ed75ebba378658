"""``nbsched run NOTEBOOK``: run a notebook once, now, showing cells done / total.

The run happens on a worker thread so that the main thread stays free for signals: Ctrl-C
(SIGINT) or SIGTERM sets the runner's ``cancel`` event, the runner stops the kernel and
saves what ran, and the command exits with 128 + the signal number (130 for Ctrl-C). A
second signal, or a runner that has not stopped :data:`CANCEL_GRACE` seconds after the first,
ends the command at once.

What the notebook prints goes to stdout as it comes; progress and the final line go to
stderr, so ``nbsched run x.ipynb > log`` keeps the notebook's output apart.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from tqdm import tqdm

from ..display import fmt_duration, tidy_error
from ..errors import NbschedError
from ..jobs import RunStatus
from .common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError

__all__ = ["command", "parse_parameters", "CANCEL_GRACE"]

#: seconds the runner gets to stop the kernel after a cancel before the command exits anyway
CANCEL_GRACE = 15.0


def parse_parameters(texts: Sequence[str]) -> dict[str, Any]:
    """``["n=3", "day=monday"]`` -> ``{"n": 3, "day": "monday"}`` (the runner's rules).

    :raises InvalidArgumentError: a text is not ``key=value``
    """
    if not texts:
        return {}
    # (imported here: the runner pulls in nbclient, which the other commands do not need)
    from ..runner import parse_parameter

    return dict(parse_parameter(text) for text in texts)


class _Progress:
    """Cells done / total: a progress bar when ``stream`` is a terminal, else a line each
    time a cell finishes (for logs and CI, where a redrawn bar is noise)."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self._stream = stream
        self._label = label
        self._tty = stream.isatty()
        self._bar: tqdm[Any] | None = None
        self._done = 0
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        if self._tty:
            if self._bar is None:
                self._bar = tqdm(
                    total=total, desc=self._label, unit="cell", file=self._stream,
                    dynamic_ncols=True, leave=True,
                )
            self._bar.total = total
            self._bar.update(done - self._bar.n)
        elif done > self._done:
            print(f"nbsched run: {self._label}: cell {done}/{total} done", file=self._stream,
                  flush=True)
        self._done = done

    def output(self, text: str) -> None:
        """Write what the notebook printed to stdout, around the bar."""
        with tqdm.external_write_mode(file=self._stream):
            sys.stdout.write(text)
            sys.stdout.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def command(args: argparse.Namespace) -> int:
    """Run ``args.notebook`` once; the exit status says how it went."""
    parameters = parse_parameters(args.parameters)
    notebook = Path(args.notebook)
    if notebook.suffix != ".ipynb":
        raise CliError(f"{args.notebook!r} is not a notebook (a .ipynb file)", EXIT_USAGE)
    if not notebook.is_file():
        raise CliError(f"no notebook at {args.notebook!r}")
    from .. import runner

    cancel = threading.Event()
    signals: list[int] = []
    progress = _Progress(sys.stderr, notebook.name)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = runner.run_notebook(
                notebook,
                parameters=parameters or None,
                output_path=args.output,
                timeout=args.timeout,
                on_progress=progress,
                on_output=progress.output,
                cancel=cancel,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        cancel.set()

    worker = threading.Thread(target=work, name="nbsched-cli-run", daemon=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        worker.start()
        _wait(worker, signals)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
    took = fmt_duration(time.monotonic() - started)
    if signals:
        return _interrupted(signals[0], outcome.get("result"))
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, NbschedError | CliError):
            raise exc
        raise CliError(f"{notebook}: {type(exc).__name__}: {exc}") from exc
    result = outcome["result"]
    cells = f"{result.cells_done}/{result.cells_total} cells"
    if result.status is RunStatus.succeeded:
        print(f"nbsched run: succeeded, {cells} in {took}; executed notebook: "
              f"{result.output_path}", file=sys.stderr)
        return EXIT_OK
    if result.error:
        print(tidy_error(result.error).rstrip("\n"), file=sys.stderr)
    print(f"nbsched run: {result.status.value} after {cells} ({took}); executed notebook "
          f"saved to {result.output_path}", file=sys.stderr)
    return EXIT_FAILURE


def _wait(worker: threading.Thread, signals: list[int]) -> None:
    """Until the run ends; after a signal, at most :data:`CANCEL_GRACE` seconds more, and
    not at all after a second one. (Short joins: the signal handler runs on this thread
    between them.)"""
    deadline: float | None = None
    while worker.is_alive():
        worker.join(0.1)
        if signals and deadline is None:
            deadline = time.monotonic() + CANCEL_GRACE
        if len(signals) > 1 or deadline is not None and time.monotonic() > deadline:
            return


def _interrupted(signum: int, result: Any) -> int:
    name = signal.Signals(signum).name
    where = f"; the part that ran is saved in {result.output_path}" if result else ""
    print(f"nbsched run: cancelled by {name}{where}", file=sys.stderr)
    return 128 + signum
