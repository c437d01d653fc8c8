"""The served project's graph and runs through the REST API: `GET pipeline`, `GET|POST runs`, `GET runs/ID`,
`POST runs/ID/cancel` and `GET runs/ID/tasks/TASK/notebook`.

Runs started here go on in threads of the server (`BackgroundRun`) and are cancelled in-process; a run started by
another process (the CLI, a kernel) is cancelled with SIGINT to the process that holds the project's lock, as
Ctrl-C would. With `[notify]` `runs = "all"`, a thread waits for each run started here and hands its end to the
server's notifier (`nbflow.notify`), which delivers in the background.
"""

from __future__ import annotations

import json
import os
import threading

from pydantic import ValidationError

from nbflow import history
from nbflow.models import RunState
from nbflow.notify import Notifier
from nbflow.project import Project
from nbflow.run.background import BackgroundRun, start_run
from nbflow.run.cancel import GRACE_S, cancel_process_run
from nbflow.run.rerun import rerun_failed
from nbflow.server.cache import PipelineCache
from nbflow.server.errors import ApiError
from nbflow.server.paths import ServedProject, inside
from nbflow.server.schedules import HostedScheduler
from nbflow.shapes import (
    ExecutedNotebook,
    NotebookJson,
    PipelineTask,
    PipelineView,
    RunCancelling,
    RunDetail,
    RunList,
    RunRequest,
    RunStarted,
)


class Runs:
    """The runs of the served project; `handles` are the ones started by this server, by run id."""

    def __init__(self, served: ServedProject, hosted: HostedScheduler, cache: PipelineCache):
        self.served = served
        self.hosted = hosted
        self.handles: dict[str, BackgroundRun] = {}
        self._lock = threading.Lock()
        self._notifiers: list[Notifier] = []  # the last one serves; the earlier ones finish what they hold
        self._cache = cache  # for `pipeline()`, which the panel asks for every few seconds

    def pipeline(self) -> PipelineView:
        """The graph (`graph --format json`) with each task's status, and the run going on if any."""
        resolved = self._cache.load()  # resolved and drawn again only when the notebooks or the settings changed
        pipeline, graph = resolved.pipeline, resolved.graph
        store = self._cache.store(pipeline.project)  # kept open: opening and closing one writes it
        statuses = self._cache.statuses(resolved, store)  # judged again only when something they read changed
        running = store.running_runs()
        return PipelineView(
            tasks=[PipelineTask(**task.model_dump(), status=statuses[task.name]) for task in graph.tasks],
            edges=graph.edges,
            root=self.served.relative_to_root(pipeline.project.root),
            active_run=running[0].id if running else None,
            problems=[],
        )

    def summaries(self, limit: int | None = None) -> RunList:
        with self.served.store() as store:
            return RunList([history.summary(row) for row in store.runs(limit)])

    def detail(self, run_id: str) -> RunDetail:
        """A run by id, unique id prefix or `latest`."""
        with self.served.store() as store:
            found = history.find_run(store, run_id)
            detail = history.detail(store, found) if found else None
        if detail is None:
            raise ApiError(404, f"no run {run_id!r} in this project.")
        return detail

    def start(self, request: RunRequest) -> RunStarted:
        pipeline = self.served.load()
        targets, params, grid = request.targets or None, request.param_values(), request.grid_values()
        force, upstream, downstream = request.force, request.upstream, request.downstream
        if request.rerun_failed is not None:
            with self.served.store(pipeline.project) as store:
                found = history.find_run(store, request.rerun_failed)
                if found is None:
                    raise ApiError(404, f"no run {request.rerun_failed!r} in this project.")
                rerun = rerun_failed(pipeline, store, found)
            targets, params, grid = rerun.targets, rerun.params, rerun.grid
            force, upstream, downstream = True, False, True
        with self._lock:
            handle = start_run(
                pipeline,
                trigger="lab",
                targets=targets,
                params=params,
                grid=grid,
                force=force,
                upstream=upstream,
                downstream=downstream,
                no_wait=request.no_wait,
            )
            self.handles[handle.id] = handle
            if pipeline.project.notify.runs == "all":
                self._watch(pipeline.project, handle)
            for run_id in [r for r, h in self.handles.items() if h.done and r != handle.id]:
                del self.handles[run_id]  # finished: the store has all there is to know
        return RunStarted(id=handle.id, state=RunState.RUNNING, tasks=list(handle.run.tasks))

    def _watch(self, project: Project, handle: BackgroundRun) -> None:
        """Notify the run's end when it comes (the notifier of the project as last read: settings may change)."""
        if not self._notifiers or self._notifiers[-1].project.notify != project.notify:
            self._notifiers.append(Notifier(project))
        notifier = self._notifiers[-1]

        def wait_and_notify() -> None:
            try:
                handle.wait()
            except BaseException:
                pass  # the run's own error: recorded in the store, and notified from there
            notifier.notify_run(handle.id, scheduled=False)

        threading.Thread(target=wait_and_notify, name="nbflow-run-notify", daemon=True).start()

    def cancel(self, run_id: str) -> RunCancelling:
        detail = self.detail(run_id)
        run_id = detail.id
        if detail.state is not RunState.RUNNING:
            raise ApiError(409, f"run {run_id} is not running (it is {detail.state}).")
        handle = self.handles.get(run_id)
        if handle is not None and not handle.done:
            handle.cancel()
            return RunCancelling(id=run_id, cancelling=True, how="in this server")
        if self.hosted.cancel_run(run_id):
            return RunCancelling(id=run_id, cancelling=True, how="in this server's scheduler")
        project = self.served.project()
        with self.served.store(project) as store:
            row = store.run(run_id)
            alive = row is not None and store.is_alive(row)
            pid, started = store.process_of(run_id) or (None, None)
        if row is None or row.state is not RunState.RUNNING or not pid:
            raise ApiError(409, f"run {run_id} is not running.")
        if pid == os.getpid():
            raise ApiError(
                409,
                f"run {run_id} was started inside this server by something that did not register it here; it "
                "cannot be cancelled from the panel.",
            )
        if not alive:
            raise ApiError(409, f"run {run_id}: its process {pid} is gone; the run is not running.")
        try:
            cancel_process_run(project.store_dir, run_id, pid, started)
        except ProcessLookupError:
            raise ApiError(409, f"run {run_id}: its process {pid} is gone.") from None
        except PermissionError:
            raise ApiError(
                403, f"run {run_id}: its process {pid} belongs to another user; it cannot be cancelled from here."
            ) from None
        return RunCancelling(
            id=run_id,
            cancelling=True,
            how=f"SIGINT to process {pid}; SIGTERM after {GRACE_S:.0f} s and SIGKILL (its kernels stopped) after "
            f"{2 * GRACE_S:.0f} s if it does not stop",
        )

    def executed_notebook(self, run_id: str, task: str) -> ExecutedNotebook:
        """The executed notebook of one task of one run, as notebook JSON, with its path relative to the root."""
        detail = self.detail(run_id)
        entry = next((t for t in detail.tasks if t.name == task), None)
        if entry is None:
            raise ApiError(404, f"run {detail.id} has no task {task!r}.")
        if not entry.output_notebook:
            raise ApiError(404, f"task {task!r} of run {detail.id} has no executed notebook (it is {entry.state}).")
        path = os.path.join(self.served.project().root, entry.output_notebook)
        if not inside(self.served.root, path):
            raise ApiError(
                404, f"the executed notebook of {task!r} resolves outside the server's root folder; it is not served."
            )
        try:
            with open(os.path.realpath(path), encoding="utf-8") as fh:
                notebook = NotebookJson.model_validate(json.load(fh))
        except FileNotFoundError:
            raise ApiError(404, f"the executed notebook of {task!r} ({entry.output_notebook}) is gone.") from None
        except ValidationError:
            raise ApiError(500, f"the executed notebook of {task!r} ({entry.output_notebook}) has no cells.") from None
        except (OSError, ValueError) as exc:
            raise ApiError(500, f"the executed notebook of {task!r} cannot be read: {exc}") from None
        return ExecutedNotebook(
            run=detail.id, task=task, state=entry.state, path=self.served.relative_to_root(path), notebook=notebook
        )

    def shutdown(self, timeout: float) -> None:
        """Cancel the runs started here and wait for them to record themselves."""
        live = [h for h in self.handles.values() if not h.done]
        for handle in live:
            handle.cancel()
        for handle in live:
            try:
                handle.wait(timeout)
            except BaseException:  # the run's own error: already recorded in the store
                pass
        for notifier in self._notifiers:
            notifier.close(timeout)
        self._cache.close()  # the store `pipeline()` keeps open
