"""The Jupyter server extension: hosts one scheduler on the store the kernels use and serves
the REST API, the event stream and the metrics.

Enabled by ``jupyter_server_config.d/nbsched.json`` (installed with the package) as
``nbsched.server``. Settings are the kernels' (``NbschedConfig``: ``c.NbschedConfig.db_url``
in ``jupyter_server_config.py`` reaches the server too; ``$NBSCHED_DB_URL`` wins), so the
server and every kernel of the user meet in one store.
"""

from __future__ import annotations

import asyncio

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float

from ..kernel.config import NbschedConfig
from ..scheduler import Scheduler
from .handlers import handlers
from .metrics import SchedulerMetrics
from .service import SchedulerService
from .stream import EventHub

__all__ = ["NbschedServer"]


class NbschedServer(ExtensionApp):
    """nbsched in the Jupyter server (``jupyter server extension list`` shows
    ``nbsched.server``)."""

    name = "nbsched"
    load_other_extensions = True

    shutdown_timeout = Float(
        5.0,
        help="Seconds the scheduler gets at server shutdown to cancel its runs and stop the "
        "kernels of notebook runs (kept within the server's own shutdown time).",
    ).tag(config=True)

    scheduler: Scheduler | None = None
    service: SchedulerService | None = None
    hub: EventHub | None = None
    metrics: SchedulerMetrics | None = None

    def initialize_settings(self) -> None:
        """Build and start the scheduler (the server's root directory holds the notebooks)."""
        assert self.serverapp is not None
        config = NbschedConfig(parent=self.serverapp)
        # owner None: the jobs of no notebook (notebook jobs, module:function jobs made
        # outside a kernel); the same settings, executors included, as kernels
        self.scheduler = config.build_scheduler(owner=None)
        self.scheduler.start()
        root = self.serverapp.root_dir
        self.service = SchedulerService(self.scheduler, root)
        self.hub = EventHub(self.scheduler, self.service.root)
        self.metrics = SchedulerMetrics(self.scheduler)
        self.log.info("nbsched: serving notebook jobs from %s", self.scheduler.status()["store"])

    def initialize_handlers(self) -> None:
        """The REST API under ``{base_url}nbsched/api/``."""
        assert self.service is not None and self.hub is not None
        self.handlers.extend(handlers(self.service, self.hub))

    async def stop_extension(self) -> None:
        """Server shutdown: end the event streams, then stop the scheduler, its runs and the
        kernels of its notebook runs, within :attr:`shutdown_timeout`."""
        if self.hub is not None:
            self.hub.close()
        if self.metrics is not None:
            self.metrics.close()
        scheduler = self.scheduler
        if scheduler is not None:
            await asyncio.to_thread(scheduler.shutdown, wait=False, timeout=self.shutdown_timeout)
            scheduler.store.close()
