"""What the REST API does, without HTTP: the project inside the server's root, its graph with live states, runs.

Everything here is plain blocking Python, called from the handlers in a thread pool so the server stays responsive.
Every path it reads is checked to resolve (symlinks followed) inside the server's root folder: a request names runs
and tasks, never files, and what the store says about files is checked too.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from nbflow.errors import NbflowError, PipelineError, Problem, UsageError


class ApiError(Exception):
    """An error the API answers with `status` and a JSON body `{"message": ..., **extra}`."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def inside(root: str, path: str | Path) -> bool:
    """True when `path`, with every symlink resolved, is `root` or lies under it (`root` already resolved)."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_relative(text: str, what: str) -> str:
    """A relative path as given in configuration or a request: no absolute path, no `..`, no backslash tricks."""
    parts = text.replace("\\", "/").split("/")
    if text.startswith(("/", "\\")) or os.path.isabs(text) or ".." in parts or "\x00" in text:
        raise ApiError(400, f"{what} {text!r} must be a path relative to the server's root folder, without `..`.")
    return "/".join(p for p in parts if p not in ("", "."))


class NbflowService:
    """The project served: `root` is the Jupyter server's root folder, `project` a subfolder of it ("" = the root).

    Runs started here are kept in `handles` (run id -> `BackgroundRun`), so they can be cancelled in-process; a run
    started by another process (the CLI, a kernel) is cancelled with SIGINT to the pid that holds the project's lock.
    """

    def __init__(self, root: str | Path, project: str = "", host_scheduler: bool = False):
        self.root = os.path.realpath(root)
        self.project_setting = project
        self.handles: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.host_scheduler = host_scheduler  # c.NbflowApp.scheduler
        self.scheduler: Any = None  # the hosted `Scheduler`, once started
        self.scheduler_error: str | None = None  # why it could not start (shown in GET schedules)
        self._scheduler_lock = threading.Lock()
        self.closed = False  # the server is stopping: no scheduler starts any more

    # -- the project ----------------------------------------------------------------------------------------------

    def project_dir(self) -> str:
        """The folder nbflow looks for the project from: the root, or the configured subfolder (checked)."""
        try:
            sub = check_relative(self.project_setting, "c.NbflowApp.project") if self.project_setting else ""
        except ApiError as exc:
            raise PipelineError([Problem("config", exc.message)]) from None
        folder = os.path.join(self.root, sub)
        if not inside(self.root, folder):
            raise PipelineError(
                [
                    Problem(
                        "config",
                        f"c.NbflowApp.project = {self.project_setting!r} resolves outside "
                        "the server's root folder (a symlink?); nbflow serves only "
                        "projects inside it.",
                    )
                ]
            )
        if not os.path.isdir(folder):
            raise PipelineError(
                [
                    Problem(
                        "config",
                        f"c.NbflowApp.project = {self.project_setting!r}: no such folder "
                        "under the server's root folder.",
                    )
                ]
            )
        return folder

    def load(self, params: dict[str, Any] | None = None):
        """The resolved pipeline, refused when its root or a task notebook lies outside the server's root."""
        from nbflow.graph import load

        pipeline = load(self.project_dir(), params)
        root = str(pipeline.project.root)
        if not inside(self.root, root):
            raise PipelineError(
                [
                    Problem(
                        "config",
                        f"the nbflow project found from the server's root folder is "
                        f"{root} (marked by {pipeline.project.config_file}), outside the "
                        "server's root folder; start Jupyter in that folder (or above) to "
                        "use it here.",
                    )
                ]
            )
        outside = [
            Problem(
                "outside-root",
                f"{task.notebook}: the notebook resolves outside the server's root folder "
                "(a symlink?); the server does not read or run it.",
            )
            for task in pipeline.tasks.values()
            if not inside(self.root, task.spec.notebook)
        ]
        if outside:
            raise PipelineError(outside)
        return pipeline

    def relative_to_root(self, path: str | Path) -> str:
        rel = os.path.relpath(os.path.realpath(path), self.root)
        return "" if rel == "." else Path(rel).as_posix()

    # -- GET pipeline ---------------------------------------------------------------------------------------------

    def pipeline(self) -> dict[str, Any]:
        """The `graph --format json` object, each task with its `status`; `root` is the project's folder relative
        to the server root, `active_run` the id of a run going on (from here or elsewhere), `problems` empty."""
        from nbflow import history, render
        from nbflow.store import open_store

        pipeline = self.load()
        store = open_store(pipeline.project.store_dir)
        try:
            data = render.to_dict(pipeline, history.status(pipeline, store))
            running = store.running_runs()
        finally:
            store.close()
        return {
            **data,
            "root": self.relative_to_root(pipeline.project.root),
            "active_run": running[0].id if running else None,
            "problems": [],
        }

    # -- runs -----------------------------------------------------------------------------------------------------

    def _project(self):
        from nbflow.project import load_project

        project = load_project(self.project_dir())
        if not inside(self.root, project.root):
            raise ApiError(
                404,
                f"the nbflow project found from the server's root folder is {project.root}, outside "
                "it; start Jupyter in that folder (or above) to use it here.",
            )
        return project

    def _store(self):
        from nbflow.store import open_store

        project = self._project()
        return project, open_store(project.store_dir)

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        from nbflow import history

        _, store = self._store()
        try:
            return [history.run_summary(row) for row in store.runs(limit)]
        finally:
            store.close()

    def run_detail(self, run_id: str) -> dict[str, Any]:
        from nbflow import history

        _, store = self._store()
        try:
            found = history.find_run(store, run_id)
            detail = history.run_detail(store, found) if found else None
        finally:
            store.close()
        if detail is None:
            raise ApiError(404, f"no run {run_id!r} in this project.")
        return detail

    def start(self, body: Any) -> dict[str, Any]:
        """POST runs: `{"targets": [names] | null, "params": {name: value}, "force": bool}` -> the new run's id."""
        from nbflow.run.background import start_run

        targets, params, force = _run_request(body)
        pipeline = self.load()
        with self._lock:
            for previous in self.handles.values():
                # A run of ours that has recorded its end still holds the lock while its kernels shut down: a
                # moment; wait for it rather than answer 409 to someone who saw it finish.
                if not previous.done and previous.run.state != "running":
                    try:
                        previous.wait(60)
                    except BaseException:
                        pass
            handle = start_run(pipeline, trigger="lab", targets=targets, params=params, force=force)
            self.handles[handle.id] = handle
            for run_id in [r for r, h in self.handles.items() if h.done and r != handle.id]:
                del self.handles[run_id]  # finished: the store has all there is to know
        return {"id": handle.id, "state": "running", "tasks": list(handle.run.tasks)}

    def cancel(self, run_id: str) -> dict[str, Any]:
        detail = self.run_detail(run_id)
        run_id = detail["id"]
        if detail["state"] != "running":
            raise ApiError(409, f"run {run_id} is not running (it is {detail['state']}).")
        handle = self.handles.get(run_id)
        if handle is not None and not handle.done:
            handle.cancel()
            return {"id": run_id, "cancelling": True, "how": "in this server"}
        if self.scheduler is not None and self.scheduler.cancel_run(run_id):
            return {"id": run_id, "cancelling": True, "how": "in this server's scheduler"}
        project, store = self._store()
        try:
            row = store.run(run_id)
        finally:
            store.close()
        pid = row.pid if row else None
        if row is None or row.state != "running" or not pid:
            raise ApiError(409, f"run {run_id} is not running.")
        if pid == os.getpid():
            raise ApiError(
                409,
                f"run {run_id} was started inside this server by something that did not register it "
                "here; it cannot be cancelled from the panel.",
            )
        if not _lock_names(project.store_dir, run_id, pid):
            raise ApiError(409, f"run {run_id} does not hold the project's lock; it is not running.")
        try:
            os.kill(pid, signal.SIGINT)  # nbflow run treats it as Ctrl-C: kernels stopped, tasks `cancelled`
        except ProcessLookupError:
            raise ApiError(409, f"run {run_id}: its process {pid} is gone.") from None
        except PermissionError:
            raise ApiError(
                403, f"run {run_id}: its process {pid} belongs to another user; it cannot be cancelled from here."
            ) from None
        return {"id": run_id, "cancelling": True, "how": f"SIGINT to process {pid}"}

    def executed_notebook(self, run_id: str, task: str) -> dict[str, Any]:
        """The executed notebook of one task of one run, as notebook JSON, with its path relative to the root."""
        detail = self.run_detail(run_id)
        entry = next((t for t in detail["tasks"] if t["name"] == task), None)
        if entry is None:
            raise ApiError(404, f"run {detail['id']} has no task {task!r}.")
        if not entry["output_notebook"]:
            raise ApiError(
                404, f"task {task!r} of run {detail['id']} has no executed notebook (it is {entry['state']})."
            )
        project = self._project()
        path = os.path.join(project.root, entry["output_notebook"])
        if not inside(self.root, path):
            raise ApiError(
                404, f"the executed notebook of {task!r} resolves outside the server's root folder; it is not served."
            )
        try:
            with open(os.path.realpath(path), encoding="utf-8") as fh:
                notebook = json.load(fh)
        except FileNotFoundError:
            raise ApiError(404, f"the executed notebook of {task!r} ({entry['output_notebook']}) is gone.") from None
        except (OSError, ValueError) as exc:
            raise ApiError(500, f"the executed notebook of {task!r} cannot be read: {exc}") from None
        return {
            "run": detail["id"],
            "task": task,
            "state": entry["state"],
            "path": self.relative_to_root(path),
            "notebook": notebook,
        }

    # -- schedules (SPEC section 8) --------------------------------------------------------------------------------

    def start_scheduler(self) -> str | None:
        """Host the project's scheduler in this server (c.NbflowApp.scheduler = True), if not running yet.
        Returns None when it runs, else why it cannot (also kept in `scheduler_error`); called at server start,
        and again by the schedules endpoints, so a project made valid later gets its scheduler then."""
        if not self.host_scheduler:
            return None
        with self._scheduler_lock:
            if self.closed or (self.scheduler is not None and self.scheduler.running):
                return None
            from nbflow.scheduler import Scheduler

            try:
                project = self._project()
                self.scheduler = Scheduler(project).start()
            except Exception as exc:  # an invalid nbflow.toml, a project outside the root: said, retried later
                code, body = error_body(exc)
                self.scheduler = None
                self.scheduler_error = body["message"]
                return self.scheduler_error
            self.scheduler_error = None
            return None

    def stop_scheduler(self, timeout: float = 120) -> None:
        """Stop the hosted scheduler: no more firings, its runs in flight cancelled, its lease released."""
        with self._scheduler_lock:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop(cancel=True, timeout=timeout)

    def schedules(self) -> dict[str, Any]:
        """GET schedules: every schedule (`schedule list --json` shape), the scheduler holding the project's lease
        (`scheduler`: `{"owner", "host", "pid", "expires_at", "here"}`, null when none runs; `here`: it is this
        server's), whether this server hosts one (`hosted`; it may stand by while another holds the lease), the
        setting (`host_setting`) and why the hosted one could not start (`scheduler_error`)."""
        from nbflow.schedule import list_schedules, scheduler_status

        self.start_scheduler()
        project = self._project()
        hosted = self.scheduler is not None and self.scheduler.running
        holder = scheduler_status(project)
        if holder is not None:
            holder["here"] = hosted and holder["owner"] == self.scheduler.owner  # this server's scheduler fires
        return {
            "schedules": list_schedules(project),
            "scheduler": holder,
            "hosted": hosted,
            "host_setting": self.host_scheduler,
            "scheduler_error": self.scheduler_error,
        }

    def add_schedule(self, body: Any) -> dict[str, Any]:
        """POST schedules: `{"name", "cron" | "every", "tz", "targets", "params", "on_failure_command",
        "on_failure_webhook"}` -> the new schedule. Its targets and parameters are checked as a run's would be."""
        from nbflow.schedule import add_schedule

        fields = _schedule_request(body)
        pipeline = self.load()  # refuses notebooks outside the server's root, as POST runs does
        result = add_schedule(pipeline.project, fields.pop("name"), **fields)
        self.start_scheduler()
        return result

    def get_schedule(self, name: str) -> dict[str, Any]:
        from nbflow.schedule import get_schedule

        return get_schedule(self._project(), check_schedule_name(name))

    def pause_schedule(self, name: str) -> dict[str, Any]:
        from nbflow.schedule import pause_schedule

        return pause_schedule(self._project(), check_schedule_name(name))

    def resume_schedule(self, name: str) -> dict[str, Any]:
        from nbflow.schedule import resume_schedule

        return resume_schedule(self._project(), check_schedule_name(name))

    def remove_schedule(self, name: str) -> None:
        from nbflow.schedule import remove_schedule

        remove_schedule(self._project(), check_schedule_name(name))

    # -- shutdown -------------------------------------------------------------------------------------------------

    def shutdown(self, timeout: float = 30) -> None:
        """Stop the hosted scheduler (cancelling its runs), cancel the runs started here and wait for them to record
        themselves (called when the server stops)."""
        self.closed = True
        self.stop_scheduler(timeout)
        live = [h for h in self.handles.values() if not h.done]
        for handle in live:
            handle.cancel()
        for handle in live:
            try:
                handle.wait(timeout)
            except BaseException:  # the run's own error: already recorded in the store
                pass


def _run_request(body: Any) -> tuple[list[str] | None, dict[str, Any], bool]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, 'the request body must be a JSON object: {"targets", "params", "force"}.')
    unknown = sorted(set(body) - {"targets", "params", "force"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; known: targets, params, force.")
    targets, params = _targets_and_params(body)
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(400, "`force` must be true or false.")
    return (targets or None), params, force


SCHEDULE_FIELDS = ("name", "cron", "every", "tz", "targets", "params", "on_failure_command", "on_failure_webhook")


def check_schedule_name(name: str) -> str:
    """A schedule name from a URL: the names `nbflow schedule add` accepts, nothing else (no `/`, no `..`)."""
    from nbflow.schedule import NAME_PATTERN

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ApiError(
            400,
            f"schedule name {name!r}: use letters, digits, '_', '-' and '.' (at most 64), starting "
            "with a letter or digit.",
        )
    return name


def _schedule_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(
            400,
            'the request body must be a JSON object: {"name", "cron" or "every", "tz", '
            '"targets", "params", "on_failure_command", "on_failure_webhook"}.',
        )
    unknown = sorted(set(body) - set(SCHEDULE_FIELDS))
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(SCHEDULE_FIELDS)}.")
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise ApiError(400, "`name` is required: the schedule's name.")
    check_schedule_name(body["name"])
    for key in ("cron", "every", "tz", "on_failure_command", "on_failure_webhook"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"`{key}` must be a string or null.")
    fields = {
        key: (body.get(key) or None) for key in ("cron", "every", "tz", "on_failure_command", "on_failure_webhook")
    }
    if (fields["cron"] is None) == (fields["every"] is None):
        raise ApiError(400, 'give a schedule either `cron` ("0 17 * * *") or `every` ("10m"), one of them.')
    targets, params = _targets_and_params(body)
    return {"name": body["name"], **fields, "targets": targets or None, "params": params}


def _lock_names(store_dir: Path, run_id: str, pid: int) -> bool:
    """True when the project's lock is held and its file names this run and pid."""
    from nbflow.run.lock import ProjectLock

    lock = ProjectLock(store_dir)
    try:
        text = lock.path.read_text().split()
    except OSError:
        return False
    if text != [run_id, str(pid)]:
        return False
    if lock.try_acquire():  # nobody holds it after all
        lock.release()
        return False
    return True


def _targets_and_params(body: dict) -> tuple[list[str] | None, dict]:
    """The `targets` and `params` of a run or schedule request, checked."""
    targets = body.get("targets")
    if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
        raise ApiError(400, "`targets` must be a list of task names, or null for all tasks.")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise ApiError(400, '`params` must be an object: {name: value} or {"task.name": value}.')
    return targets, params


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for an error raised by nbflow or by this module."""
    from nbflow.errors import LockedError
    from nbflow.schedule import ScheduleNotFound

    if isinstance(exc, ApiError):
        return exc.status, {"message": exc.message, **exc.extra}
    if isinstance(exc, PipelineError):
        return 400, {"message": exc.describe(), "problems": [p.message for p in exc.problems]}
    if isinstance(exc, LockedError):
        return 409, {"message": str(exc)}
    if isinstance(exc, ScheduleNotFound):
        return 404, {"message": str(exc)}
    if isinstance(exc, UsageError):
        return 400, {"message": str(exc), "problems": str(exc).splitlines()}
    if isinstance(exc, NbflowError):
        return 400, {"message": str(exc)}
    return 500, {"message": f"internal error: {type(exc).__name__}: {exc}"}
