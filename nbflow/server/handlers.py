"""The REST API under `/nbflow/api/`: JSON in, JSON out (and a report's HTML), every handler behind Jupyter
Server's authentication and authorization on the resource `nbflow`.

Reading needs `read` (so do `GET /nbflow/metrics`, Prometheus' text, `GET health`, and `GET events`, the
server-sent events of runs and tasks); starting and cancelling
runs `execute`; adding, pausing, resuming and removing schedules `write`, and `execute` as well for a schedule that
runs a command when it fails (as a terminal would). Bodies are read with their models and answers written from
theirs (`nbflow.shapes`); the work is done by `NbflowService` in a thread pool, so loading a large pipeline or
starting a run never blocks the server. Errors are an `ErrorBody` (`{"message", "problems"}`) with a fitting status.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import tornado.iostream
import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth import decorator
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel
from tornado.ioloop import IOLoop

from nbflow.server.errors import ApiError, error_body
from nbflow.server.events import STREAMS_LIMIT, TooManyStreams, sse
from nbflow.server.requests import read_body
from nbflow.server.service import NbflowService
from nbflow.shapes import (
    ErrorBody,
    ExecutedNotebook,
    FilePreview,
    PipelineProblems,
    ReportList,
    RunCancelling,
    RunDetail,
    RunDiff,
    RunList,
    RunRequest,
    RunStarted,
    ScheduleEntry,
    ScheduleRequest,
    SchedulesView,
    TaskDetail,
)

API = "/nbflow/api"
METRICS = "/nbflow/metrics"
RESOURCE = "nbflow"

Model = TypeVar("Model", bound=BaseModel)
Result = TypeVar("Result")
Method = Callable[..., Awaitable[BaseModel | None]]
Handler = TypeVar("Handler", bound=Callable[..., Any])


def authorized(action: str) -> Callable[[Handler], Handler]:
    """Jupyter Server's `@authorized(action)` (on the handler's `auth_resource`), typed as the decorator it is:
    Jupyter Server declares it to return the decorated function's type, which mypy cannot solve from `action`
    alone, so every method it wraps would lose its types."""
    return cast(Callable[[Handler], Handler], decorator.authorized(action))


def answers(status: int = 200) -> Callable[[Method], Callable[..., Awaitable[None]]]:
    """Write what the handler method returns as JSON with `status` (204 and no body when it returns None), and
    what it raises as an `ErrorBody`."""

    def wrap(method: Method) -> Callable[..., Awaitable[None]]:
        @functools.wraps(method)
        async def inner(self: NbflowHandler, *args: str) -> None:
            try:
                result = await method(self, *args)
            except Exception as exc:  # nbflow's errors become JSON; a bug is a 500 with its message, and logged
                self.send(*self.failure(exc))
                return
            self.send(status, result)

        return inner

    return wrap


class NbflowHandler(APIHandler):
    """Base: the service, a thread pool, the `nbflow` resource, and answers as JSON."""

    auth_resource = RESOURCE

    def initialize(self, service: NbflowService, pool: ThreadPoolExecutor) -> None:
        self.service = service
        self.pool = pool

    async def call(self, fn: Callable[..., Result], *args: Any) -> Result:
        """`fn(*args)` in the pool."""
        return await IOLoop.current().run_in_executor(self.pool, fn, *args)

    def body(self, model: type[Model]) -> Model:
        return read_body(model, self.request.body)

    async def require(self, action: str, what: str) -> None:
        """Refuse (403) unless the user may also `action`, for a need that depends on what is asked (a schedule
        that runs a command), which `@authorized` on the method cannot know."""
        user = self.current_user
        if not await ensure_async(self.authorizer.is_authorized(self, user, action, RESOURCE)):
            raise ApiError(403, f"{what} needs the `{action}` permission on {RESOURCE}, which this user does not have.")

    def failure(self, exc: Exception) -> tuple[int, ErrorBody]:
        """The status and body that answer `exc`; logged with its traceback when the server is at fault (5xx)."""
        code, body = error_body(exc)
        if code >= 500:
            self.log.exception("nbflow: %s %s failed", self.request.method, self.request.path)
        return code, body

    def send(self, status: int, body: BaseModel | None) -> None:
        """Answer `body` as JSON. A successful GET carries an `ETag` (a hash of the body), and a request whose
        `If-None-Match` names it is answered 304 without the body: the panel's polls of an unchanged pipeline."""
        self.set_status(status)
        data = body.model_dump_json(by_alias=True).encode() if body is not None else None
        if data is not None and status == 200 and self.request.method in ("GET", "HEAD"):
            self.set_header("ETag", f'"{hashlib.sha256(data).hexdigest()[:40]}"')
            if self.check_etag_header():  # tornado's reading of If-None-Match: lists, weak tags, `*`
                self.set_status(304)
                self.finish()
                return
        self.finish(data)


class PipelineHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        try:
            view = await self.call(self.service.runs.pipeline)
        except Exception as exc:
            code, body = self.failure(exc)
            # an invalid pipeline (or project): the panel shows its problems where the graph would be
            self.send(422 if code == 400 else code, PipelineProblems(message=body.message, problems=body.problems))
            return
        self.send(200, view)


class RunsHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self) -> RunList:
        limit = self.get_argument("limit", None)
        if limit is not None and not (limit.isdecimal() and int(limit) > 0):
            raise ApiError(400, f"limit must be a whole number > 0, not {limit!r}.")
        return await self.call(self.service.runs.summaries, int(limit) if limit else None)

    @tornado.web.authenticated
    @authorized("execute")
    @answers(202)
    async def post(self) -> RunStarted:
        return await self.call(self.service.runs.start, self.body(RunRequest))


class RunHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, run_id: str) -> RunDetail:
        return await self.call(self.service.runs.detail, run_id)


class CancelHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("execute")
    @answers(202)
    async def post(self, run_id: str) -> RunCancelling:
        return await self.call(self.service.runs.cancel, run_id)


class NotebookHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, run_id: str, task: str) -> ExecutedNotebook:
        return await self.call(self.service.runs.executed_notebook, run_id, task)


class RunDiffHandler(NbflowHandler):
    """GET runs/A/diff/B: what changed from run A to run B; `?task=NAME` only that task's or instance's."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, run_a: str, run_b: str) -> RunDiff:
        return await self.call(self.service.diffs.between, run_a, run_b, self.get_argument("task", None))


class TaskDiffHandler(NbflowHandler):
    """GET runs/ID/tasks/INSTANCE/diff: the instance in run ID against the previous run that executed it."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, run_id: str, instance: str) -> RunDiff:
        return await self.call(self.service.diffs.with_previous, run_id, instance)


class ReportsHandler(NbflowHandler):
    """GET reports: the latest report of each instance; `?all=true` every version kept, `?task=NAME` (repeated)
    only those tasks' or instances'."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self) -> ReportList:
        every = self.get_argument("all", "false")
        if every not in ("true", "false", "1", "0"):
            raise ApiError(400, f"all must be true or false, not {every!r}.")
        return await self.call(self.service.reports.listing, self.get_arguments("task"), every in ("true", "1"))


class ReportHtmlHandler(NbflowHandler):
    """GET reports/RUN_ID/INSTANCE: the HTML page, confined as Jupyter confines the files it serves (its scripts
    run in a unique origin, which cannot use the server's cookies); errors are JSON, as everywhere."""

    @property
    def content_security_policy(self) -> str:
        # Jupyter's page policy, without the API's `default-src 'none'`, which would block the report's own styles
        policy: str = super(APIHandler, self).content_security_policy
        return policy + "; sandbox allow-scripts"

    @tornado.web.authenticated
    @authorized("read")
    async def get(self, run_id: str, instance: str) -> None:
        try:
            html = await self.call(self.service.reports.html, run_id, instance)
        except Exception as exc:
            self.send(*self.failure(exc))
            return
        self.finish(html, set_content_type="text/html; charset=utf-8")


class SchedulesHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self) -> SchedulesView:
        return await self.call(self.service.schedules.view)

    @tornado.web.authenticated
    @authorized("write")
    @answers(201)
    async def post(self) -> ScheduleEntry:
        request = self.body(ScheduleRequest)
        if request.on_failure_command:
            await self.require("execute", "a schedule with an `on_failure_command`")
        return await self.call(self.service.schedules.add, request)


class ScheduleActionHandler(NbflowHandler):
    """POST schedules/NAME/pause and schedules/NAME/resume."""

    @tornado.web.authenticated
    @authorized("write")
    @answers()
    async def post(self, name: str, action: str) -> ScheduleEntry:
        schedules = self.service.schedules
        if action == "pause":
            return await self.call(schedules.pause, name)
        entry = await self.call(schedules.get, name)
        if entry.on_failure_command:
            await self.require("execute", "resuming a schedule with an `on_failure_command`")
        return await self.call(schedules.resume, name)


class ScheduleHandler(NbflowHandler):
    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, name: str) -> ScheduleEntry:
        return await self.call(self.service.schedules.get, name)

    @tornado.web.authenticated
    @authorized("write")
    @answers(204)
    async def delete(self, name: str) -> None:
        await self.call(self.service.schedules.remove, name)


class TaskHandler(NbflowHandler):
    """GET tasks/NAME: one task instance with its status, files, neighbours and its latest run's entry."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self, name: str) -> TaskDetail:
        return await self.call(self.service.tasks.detail, name)


class PreviewHandler(NbflowHandler):
    """GET files/preview?path=PATH: the first rows of a table, an image or a text a task declares (PATH relative
    to the project root)."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def get(self) -> FilePreview:
        path = self.get_argument("path", None)
        if not path:
            raise ApiError(400, "give the file as ?path=PATH, relative to the project's root.")
        return await self.call(self.service.tasks.preview, path)


class EventsHandler(NbflowHandler):
    """GET events: server-sent events (`text/event-stream`), one per change of a run or a task of a run, as
    `StoreEvent`s; a comment every KEEPALIVE_S seconds keeps proxies from closing an idle stream."""

    KEEPALIVE_S = 15.0

    def on_connection_close(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.put(None)

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        events = self.service.events
        try:
            self._stream = stream = events.open()
        except TooManyStreams:
            self.send(503, ErrorBody(message=f"{STREAMS_LIMIT} event streams are open already; try again later."))
            return
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # a proxy must pass each event on as it comes
        number = 0
        try:
            self.write("retry: 2000\n\n")
            await self.flush()
            while True:
                try:
                    event = await asyncio.wait_for(stream.queue.get(), self.KEEPALIVE_S)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                else:
                    if event is None:
                        break
                    number += 1
                    self.write(sse(event, number))
                await self.flush()
        except tornado.iostream.StreamClosedError:
            pass
        finally:
            events.close_stream(stream)
        if not self._finished:
            self.finish()


class HealthHandler(NbflowHandler):
    """GET health: the store readable, the scheduler holding the lease, its last tick; 503 when the store cannot
    be read (the body says why), so a probe needs only the status."""

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        answer = await self.call(self.service.metrics.health)
        self.send(200 if answer.store_readable else 503, answer)


class MetricsHandler(NbflowHandler):
    """GET /nbflow/metrics: Prometheus' text format (or OpenMetrics, when the scraper asks for it), read from the
    store at each scrape; the scraper authenticates as any Jupyter client does (`Authorization: token ...`)."""

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        text, content_type = await self.call(self.service.metrics.exposition, self.request.headers.get("Accept"))
        self.finish(text, set_content_type=content_type)


class NotFoundHandler(NbflowHandler):
    """Anything else under /nbflow/api/: a JSON 404 (after authentication, so it reveals nothing)."""

    @tornado.web.authenticated
    @authorized("read")
    @answers()
    async def _not_found(self, *args: str) -> None:
        raise ApiError(404, f"no such nbflow API endpoint: {self.request.method} {self.request.path}")

    get = post = put = delete = patch = _not_found


def handlers(service: NbflowService, pool: ThreadPoolExecutor) -> list[tuple[str, type, dict[str, Any]]]:
    """The routes, relative to the server's base URL. Run ids hold no `/`; task names may (`sales/clean`)."""
    kwargs = {"service": service, "pool": pool}
    return [
        (rf"{API}/pipeline", PipelineHandler, kwargs),
        (rf"{API}/runs", RunsHandler, kwargs),
        (rf"{API}/runs/([^/]+)", RunHandler, kwargs),
        (rf"{API}/runs/([^/]+)/cancel", CancelHandler, kwargs),
        (rf"{API}/runs/([^/]+)/tasks/(.+)/notebook", NotebookHandler, kwargs),
        (rf"{API}/runs/([^/]+)/tasks/(.+)/diff", TaskDiffHandler, kwargs),
        (rf"{API}/runs/([^/]+)/diff/([^/]+)", RunDiffHandler, kwargs),
        (rf"{API}/reports", ReportsHandler, kwargs),
        (rf"{API}/reports/([^/]+)/(.+)", ReportHtmlHandler, kwargs),
        (rf"{API}/schedules", SchedulesHandler, kwargs),
        (rf"{API}/schedules/([^/]+)", ScheduleHandler, kwargs),
        (rf"{API}/schedules/([^/]+)/(pause|resume)", ScheduleActionHandler, kwargs),
        (rf"{API}/health", HealthHandler, kwargs),
        (rf"{API}/events", EventsHandler, kwargs),
        (rf"{API}/tasks/(.+)", TaskHandler, kwargs),
        (rf"{API}/files/preview", PreviewHandler, kwargs),
        (rf"{API}(/.*)?", NotFoundHandler, kwargs),
        (METRICS, MetricsHandler, kwargs),
    ]
