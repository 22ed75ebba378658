"""The REST handlers: thin HTTP wrappers around :class:`~.service.SchedulerService`.

Every method goes through Jupyter's authentication (``@web.authenticated``: no token or
cookie -> 403) and authorization (``@authorized`` on the ``nbsched`` resource), as
jupyter_server's own handlers do. Errors are ``{"message": "..."}`` with 400, 404 or 409.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import ConflictingJobError, JobLookupError, NbschedError, SchedulerNotRunningError
from .service import ApiError, SchedulerService
from .stream import EventHub

__all__ = ["handlers", "AUTH_RESOURCE"]

#: the resource name authorizers see for every nbsched endpoint
AUTH_RESOURCE = "nbsched"
#: seconds between keep-alive comments on the event stream (proxies close idle streams)
KEEPALIVE = 15.0


def _status_of(exc: NbschedError) -> int:
    if isinstance(exc, JobLookupError):
        return 404
    if isinstance(exc, ConflictingJobError | SchedulerNotRunningError):
        return 409
    return 400  # InvalidArgumentError, TriggerParseError, TargetLookupError, ...


class _Base(APIHandler):
    """Turns :class:`ApiError` and nbsched's own errors into JSON errors."""

    auth_resource = AUTH_RESOURCE
    service: SchedulerService

    def initialize(self, service: SchedulerService, hub: EventHub | None = None) -> None:
        self.service = service
        self.hub = hub

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, ApiError):
            raise web.HTTPError(exc.status, exc.message) from None
        if isinstance(exc, NbschedError):
            raise web.HTTPError(_status_of(exc), str(exc)) from None
        raise exc

    async def _call(self, func: Any, *args: Any) -> Any:
        """Run a service call off the event loop (the store may take a moment)."""
        try:
            return await asyncio.to_thread(func, *args)
        except (ApiError, NbschedError) as exc:
            self._fail(exc)

    def _body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "The body is not valid JSON") from None

    def _json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))


class JobsHandler(_Base):
    """``GET`` every job; ``POST`` a notebook job."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self._json({"jobs": await self._call(self.service.jobs)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self._body()
        self._json(await self._call(self.service.add_notebook_job, body), 201)


class JobHandler(_Base):
    """One job: ``GET``, ``PATCH {"paused": bool}``, ``DELETE``."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self._json(await self._call(self.service.job, name))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        body = self._body()
        if not isinstance(body, dict) or set(body) != {"paused"}:
            raise web.HTTPError(400, 'The body must be {"paused": true} or {"paused": false}')
        self._json(await self._call(self.service.set_paused, name, body["paused"]))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self._call(self.service.remove, name)
        self.set_status(204)
        self.finish()


class JobRunHandler(_Base):
    """``POST``: run a job now (202 with the run's id)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        self._json({"run_id": await self._call(self.service.start_run, name)}, 202)


class RunsHandler(_Base):
    """``GET ?job=NAME&limit=N``: recent runs, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        job = self.get_query_argument("job", None)
        limit = self.get_query_argument("limit", None)
        self._json({"runs": await self._call(self.service.runs, job, limit)})


class RunHandler(_Base):
    """``GET``: one run with its output."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self._json(await self._call(self.service.run, run_id))


class RunNotebookHandler(_Base):
    """``GET``: a notebook run's executed notebook (what the lab's ``nbsched-runs:`` drive
    opens when ``output_dir`` is outside the server's root)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self._json(await self._call(self.service.run_notebook, run_id))


class RunCancelHandler(_Base):
    """``POST``: stop a run in flight (202)."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        await self._call(self.service.cancel, run_id)
        self._json({"run_id": run_id}, 202)


class StatusHandler(_Base):
    """``GET``: is the scheduler healthy."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self._json(await self._call(self.service.status))


class PreviewHandler(_Base):
    """``GET ?schedule=...&timezone=...``: next fire times and the schedule in words."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        schedule = self.get_query_argument("schedule", None)
        timezone = self.get_query_argument("timezone", None) or None
        self._json(await self._call(self.service.preview, schedule, timezone))


class OpenAPIHandler(_Base):
    """``GET``: the OpenAPI 3 description of this API."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(openapi_text())


class EventsHandler(_Base):
    """``GET``: a ``text/event-stream`` of job and run changes, until the client leaves."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        assert self.hub is not None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
        queue = self._queue = self.hub.subscribe()
        try:
            await self.hub.looking()  # "hello" promises that later writes reach this stream
            self.write("retry: 3000\nevent: hello\ndata: {}\n\n")
            await self.flush()
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                if item is None:
                    break
                self.write(f"event: {item[0]}\ndata: {item[1]}\n\n")
                await self.flush()
            self.finish()
        except StreamClosedError:  # the client left: nothing to finish
            pass
        finally:
            self.hub.unsubscribe(queue)

    def on_connection_close(self) -> None:
        queue = getattr(self, "_queue", None)
        if self.hub is not None and queue is not None:
            self.hub.end(queue)  # the loop above stops now, not at the next keep-alive


def openapi_text() -> str:
    """The OpenAPI description shipped in this package."""
    return resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")


def handlers(
    service: SchedulerService, hub: EventHub
) -> list[tuple[str, type[APIHandler], dict[str, Any]]]:
    """The URL patterns of the API (the extension app puts the server's base URL first)."""
    kw: dict[str, Any] = {"service": service, "hub": hub}
    name = r"(?P<name>[^/]+)"
    run_id = r"(?P<run_id>[^/]+)"
    routes: list[tuple[str, type[APIHandler]]] = [
        ("jobs", JobsHandler),
        (f"jobs/{name}", JobHandler),
        (f"jobs/{name}/run", JobRunHandler),
        ("runs", RunsHandler),
        (f"runs/{run_id}", RunHandler),
        (f"runs/{run_id}/cancel", RunCancelHandler),
        (f"runs/{run_id}/notebook", RunNotebookHandler),
        ("status", StatusHandler),
        ("preview", PreviewHandler),
        ("events", EventsHandler),
        ("openapi.json", OpenAPIHandler),
    ]
    return [(url_path_join("/nbsched", "api", path), cls, kw) for path, cls in routes]
