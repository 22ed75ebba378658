"""The settings of the scheduler that runs inside a kernel: one traitlets class.

Users set them in ``ipython_config.py`` (``c.NbschedConfig.max_workers = 8``), with
``%config NbschedConfig.max_workers = 8`` (the class is registered in
``shell.configurables`` when the extension loads), or -- for the store only -- with the
``NBSCHED_DB_URL`` environment variable, which wins over everything else so that tests and
several kernels can be pointed at one store.

Changing a trait after ``%load_ext nbsched`` takes effect at the next ``%reload_ext nbsched``
(or kernel restart): the scheduler is built once, in :meth:`NbschedConfig.build_scheduler`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Float, Integer, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..errors import InvalidArgumentError, NbschedError
from ..triggers.zones import check_zone

if TYPE_CHECKING:
    from ..abc import Executor
    from ..jobs import Job
    from ..scheduler import Scheduler

__all__ = [
    "NbschedConfig",
    "MEMORY_URL",
    "ENV_DB_URL",
    "ENV_OUTPUT_DIR",
    "ENV_DASK_ADDRESS",
    "resolve_db_url",
]

#: the environment variable that overrides :attr:`NbschedConfig.db_url`
ENV_DB_URL = "NBSCHED_DB_URL"
#: the environment variable that overrides :attr:`NbschedConfig.output_dir`
ENV_OUTPUT_DIR = "NBSCHED_OUTPUT_DIR"
#: the environment variable that overrides :attr:`NbschedConfig.dask_address`
ENV_DASK_ADDRESS = "NBSCHED_DASK_ADDRESS"
#: ``db_url`` value meaning "keep jobs in memory only" (nothing survives the kernel)
MEMORY_URL = "memory:"


def default_db_url() -> str:
    """``sqlite:///<jupyter data dir>/nbsched/nbsched.db``: one store per user, shared by
    every kernel."""
    return f"sqlite:///{Path(jupyter_data_dir()) / 'nbsched' / 'nbsched.db'}"


def resolve_db_url(configured: str = "") -> str | None:
    """The store URL a kernel (or ``nbsched`` on the command line) uses: ``$NBSCHED_DB_URL``,
    else ``configured``, else :func:`default_db_url`; ``None`` for an in-memory store.

    :param configured: the configured URL (``NbschedConfig.db_url``), empty for none
    """
    url = os.environ.get(ENV_DB_URL, "").strip() or configured.strip() or default_db_url()
    return None if url == MEMORY_URL else url


class NbschedConfig(LoggingConfigurable):
    """Settings for the scheduler that runs inside a kernel.

    ``db_url`` is resolved in this order: ``$NBSCHED_DB_URL``, then the configured value,
    then an SQLite file in the Jupyter data directory (see :meth:`effective_db_url`).
    """

    db_url = Unicode(
        "",
        help=(
            "SQLAlchemy URL of the job store, e.g. 'sqlite:////home/me/jobs.db' or "
            "'postgresql+psycopg://...'. Empty: an SQLite file in the Jupyter data dir, shared "
            f"by all your kernels. '{MEMORY_URL}' keeps jobs in memory only. "
            f"The environment variable {ENV_DB_URL} overrides this setting."
        ),
    ).tag(config=True)

    timezone = Unicode(
        "",
        help="IANA zone for cron and daily schedules, e.g. 'Europe/Paris'; empty: the machine's.",
    ).tag(config=True)

    max_workers = Integer(
        8, help="Most job runs in flight at once, per executor (threads or worker processes)."
    ).tag(config=True)

    autostart = Bool(
        True,
        help="Start the scheduler when the extension loads. When False, jobs can be added and "
        "listed, but nothing fires until `%schedule start`.",
    ).tag(config=True)

    retention = Integer(
        1000, help="How many past runs to keep per job (older run records are deleted)."
    ).tag(config=True)

    lease_seconds = Float(
        30.0,
        help=(
            "Several schedulers may serve one store (two kernels of a notebook, `nbsched "
            "serve` on several machines): each fire is claimed by one of them. A scheduler "
            "that dies holding claims loses them after this many seconds; another one then "
            "runs or records those fires."
        ),
    ).tag(config=True)

    owner = Unicode(
        "",
        help=(
            "Which notebook this kernel's jobs belong to. Empty (the default): found "
            "automatically -- the notebook path the front-end gives the kernel "
            "(__session__ / JPY_SESSION_NAME, VS Code's __vsc_ipynb_file__), else the kernel "
            "id, which survives restarts of the same kernel."
        ),
    ).tag(config=True)

    output_dir = Unicode(
        help=(
            "Folder for the executed notebooks of notebook jobs (one sub-folder per job; a "
            "run's notebook is deleted with its run record). Default: "
            "<jupyter data dir>/nbsched/runs. The environment variable "
            f"{ENV_OUTPUT_DIR} overrides this setting."
        ),
    ).tag(config=True)

    dask_address = Unicode(
        "",
        help=(
            "A Dask scheduler's address (tcp://host:8786): jobs with executor='dask' then run "
            "on that cluster's workers. Empty (the default): no 'dask' executor. The "
            f"environment variable {ENV_DASK_ADDRESS} overrides this setting."
        ),
    ).tag(config=True)

    @default("output_dir")
    def _output_dir_default(self) -> str:
        return str(Path(jupyter_data_dir()) / "nbsched" / "runs")

    @default("db_url")
    def _db_url_default(self) -> str:
        return ""

    @validate("timezone")
    def _check_timezone(self, proposal: Any) -> str:
        value = str(proposal["value"]).strip()
        if value:
            try:
                check_zone(value)  # the one zone check (nbsched.triggers.zones)
            except NbschedError as exc:
                raise TraitError(f"NbschedConfig.timezone: {exc}") from exc
        return value

    @validate("max_workers")
    def _check_max_workers(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"NbschedConfig.max_workers must be at least 1, got {value}")
        return value

    @validate("retention")
    def _check_retention(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"NbschedConfig.retention must be at least 1, got {value}")
        return value

    @validate("lease_seconds")
    def _check_lease_seconds(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"NbschedConfig.lease_seconds must be positive seconds, got {value}")
        return value

    def effective_db_url(self) -> str | None:
        """The store URL to use; ``None`` for an in-memory store.

        The environment wins (``NBSCHED_DB_URL``), then ``db_url``, then the default file,
        whose directory is created here.
        """
        url = resolve_db_url(self.db_url)
        if url == default_db_url():
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return url

    def effective_output_dir(self) -> Path:
        """Where executed notebooks go: ``$NBSCHED_OUTPUT_DIR``, else :attr:`output_dir`."""
        value = os.environ.get(ENV_OUTPUT_DIR, "").strip() or self.output_dir.strip()
        return Path(value or self._output_dir_default()).expanduser()

    def effective_dask_address(self) -> str:
        """``$NBSCHED_DASK_ADDRESS``, else :attr:`dask_address` (``""``: none)."""
        return os.environ.get(ENV_DASK_ADDRESS, "").strip() or self.dask_address.strip()

    def executors(self) -> dict[str, Executor]:
        """The executors these settings add to the scheduler's own: the notebook executor
        writing to :meth:`effective_output_dir`, and ``"dask"`` when a cluster is named.

        :raises InvalidArgumentError: a cluster is named but distributed is not installed
        """
        from ..executors.notebook import NotebookJobExecutor

        found: dict[str, Executor] = {
            "notebook": NotebookJobExecutor(self.max_workers, output_dir=self.effective_output_dir())
        }
        address = self.effective_dask_address()
        if address:
            try:  # (distributed is an extra: imported only when a cluster is named)
                from ..executors.dask import DaskJobExecutor
            except ImportError as exc:
                raise InvalidArgumentError(
                    f"A Dask cluster is named ({address}) but the Dask executor cannot be "
                    f"loaded ({exc}); install nbsched[dask]"
                ) from None
            found["dask"] = DaskJobExecutor(address, output_dir=self.effective_output_dir())
        return found

    def build_scheduler(
        self,
        *,
        owner: str | None,
        resolver: Callable[[Job], Callable[..., Any] | None] | None = None,
        **overrides: Any,
    ) -> Scheduler:
        """Turn the traits into a (not yet started) :class:`~nbsched.Scheduler`: the only place
        where settings become core objects.

        :param owner: the notebook the scheduler's jobs belong to (``None``: the jobs of no
            notebook, as the server extension and ``nbsched serve`` run them)
        :param resolver: binds notebook functions and cell jobs (see ``nbsched.kernel``)
        :param overrides: extra keyword arguments for ``Scheduler`` (tests pass ``clock=``)
        """
        from ..scheduler import Scheduler

        executors = {**self.executors(), **overrides.pop("executors", {})}
        return Scheduler(
            self.effective_db_url(),
            timezone=self.timezone or None,
            max_workers=self.max_workers,
            owner=owner,
            resolver=resolver,
            retention=self.retention,
            executors=executors,
            lease_seconds=self.lease_seconds,
            **overrides,
        )
