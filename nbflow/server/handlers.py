"""The REST API under `/nbflow/api/` (SPEC section 7): JSON in, JSON out, every handler behind Jupyter's auth.

The work is done by `NbflowService` in a thread pool, so loading a large pipeline or starting a run never blocks
the server. Errors are JSON `{"message": ..., "problems": [...]}` with a fitting status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from tornado.ioloop import IOLoop

from nbflow.server.service import ApiError, NbflowService, error_body

API = "/nbflow/api"


class NbflowHandler(APIHandler):
    """Base: the service, a thread pool, and errors as JSON."""

    def initialize(self, service: NbflowService, pool: ThreadPoolExecutor) -> None:
        self.service = service
        self.pool = pool

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await IOLoop.current().run_in_executor(self.pool, fn, *args)

    async def answer(self, fn: Callable[..., Any], *args: Any, status: int = 200) -> None:
        try:
            result = await self.call(fn, *args)
        except Exception as exc:  # nbflow's errors become JSON; a bug is a 500 with its message, and logged
            code, body = error_body(exc)
            if code >= 500:
                self.log.exception("nbflow: %s %s failed", self.request.method, self.request.path)
            self.set_status(code)
            self.finish(json.dumps(body))
            return
        self.set_status(status)
        if status == 204:
            self.finish()  # No Content: no body
        else:
            self.finish(json.dumps(result))

    async def answer_with_body(self, fn: Callable[[Any], Any], status: int) -> None:
        """`answer` with the request's JSON body passed to `fn`; a body that is not JSON is a 400 like any error."""
        await self.answer(lambda: fn(self.json_body()), status=status)

    def json_body(self) -> Any:
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


class PipelineHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            result = await self.call(self.service.pipeline)
        except Exception as exc:
            code, body = error_body(exc)
            if code == 400 and "problems" in body:  # an invalid pipeline: the panel shows its problems
                code = 422
            if code >= 500:
                self.log.exception("nbflow: GET pipeline failed")
            self.set_status(code)
            self.finish(json.dumps({**body, "tasks": [], "edges": []}))
            return
        self.finish(json.dumps(result))


class RunsHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        limit = self.get_argument("limit", None)
        try:
            count = int(limit) if limit is not None else None
            if count is not None and count < 1:
                raise ValueError
        except ValueError:
            self.set_status(400)
            self.finish(json.dumps({"message": f"limit must be a whole number > 0, not {limit!r}."}))
            return
        await self.answer(self.service.runs, count)

    @tornado.web.authenticated
    async def post(self) -> None:
        await self.answer_with_body(self.service.start, status=202)


class RunHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        await self.answer(self.service.run_detail, run_id)


class CancelHandler(NbflowHandler):
    @tornado.web.authenticated
    async def post(self, run_id: str) -> None:
        await self.answer(self.service.cancel, run_id, status=202)


class NotebookHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str, task: str) -> None:
        await self.answer(self.service.executed_notebook, run_id, task)


class SchedulesHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.answer(self.service.schedules)

    @tornado.web.authenticated
    async def post(self) -> None:
        await self.answer_with_body(self.service.add_schedule, status=201)


class ScheduleActionHandler(NbflowHandler):
    """POST schedules/NAME/pause and schedules/NAME/resume."""

    @tornado.web.authenticated
    async def post(self, name: str, action: str) -> None:
        fn = self.service.pause_schedule if action == "pause" else self.service.resume_schedule
        await self.answer(fn, name)


class ScheduleHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.answer(self.service.get_schedule, name)

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        await self.answer(self.service.remove_schedule, name, status=204)


class NotFoundHandler(NbflowHandler):
    """Anything else under /nbflow/api/: a JSON 404 (after authentication, so it reveals nothing)."""

    @tornado.web.authenticated
    def _not_found(self, *args: Any) -> None:
        self.set_status(404)
        self.finish(json.dumps({"message": f"no such nbflow API endpoint: {self.request.method} {self.request.path}"}))

    get = post = put = delete = patch = _not_found


def handlers(service: NbflowService, pool: ThreadPoolExecutor) -> list[tuple[str, type, dict]]:
    """The routes, relative to the server's base URL. Run ids hold no `/`; task names may (`sales/clean`)."""
    kwargs = {"service": service, "pool": pool}
    return [
        (rf"{API}/pipeline", PipelineHandler, kwargs),
        (rf"{API}/runs", RunsHandler, kwargs),
        (rf"{API}/runs/([^/]+)", RunHandler, kwargs),
        (rf"{API}/runs/([^/]+)/cancel", CancelHandler, kwargs),
        (rf"{API}/runs/([^/]+)/tasks/(.+)/notebook", NotebookHandler, kwargs),
        (rf"{API}/schedules", SchedulesHandler, kwargs),
        (rf"{API}/schedules/([^/]+)", ScheduleHandler, kwargs),
        (rf"{API}/schedules/([^/]+)/(pause|resume)", ScheduleActionHandler, kwargs),
        (rf"{API}(/.*)?", NotFoundHandler, kwargs),
    ]
