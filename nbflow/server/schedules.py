"""The schedules of the served project through the REST API, and the scheduler a server may host for it
(`c.NbflowApp.scheduler = True`): it fires the project's schedules while the server runs."""

from __future__ import annotations

import threading

from nbflow import schedule
from nbflow.scheduler import Scheduler
from nbflow.server.errors import ApiError, error_body
from nbflow.server.paths import ServedProject
from nbflow.shapes import ScheduleEntry, ScheduleRequest, SchedulerLease, SchedulesView


def check_schedule_name(name: str) -> str:
    """A schedule name from a URL: the names `nbflow schedule add` accepts, nothing else (no `/`, no `..`)."""
    if not schedule.NAME_PATTERN.fullmatch(name):
        raise ApiError(
            400,
            f"schedule name {name!r}: use letters, digits, '_', '-' and '.' (at most 64), starting with a letter or "
            "digit.",
        )
    return name


class HostedScheduler:
    """The project's scheduler inside this server, when `enabled`. It starts with the server, or later, when the
    schedules are asked for, if the project could not be read at first; `error` says why it is not running."""

    def __init__(self, served: ServedProject, enabled: bool):
        self.served = served
        self.enabled = enabled
        self.scheduler: Scheduler | None = None
        self.error: str | None = None
        self.closed = False  # the server is stopping: no scheduler starts any more
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    def start(self) -> str | None:
        """Start it if it is enabled and not running; None when it runs (or is not wanted), else why it cannot."""
        if not self.enabled:
            return None
        with self._lock:
            if self.closed or self.running:
                return None
            try:
                self.scheduler = Scheduler(self.served.project()).start()
            except Exception as exc:  # an invalid nbflow.toml, a project outside the root: said, tried again later
                self.scheduler = None
                self.error = error_body(exc)[1].message
                return self.error
            self.error = None
            return None

    def stop(self, timeout: float) -> None:
        """No more firings, its runs in flight cancelled, its lease released; it starts no more."""
        with self._lock:
            self.closed = True
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop(cancel=True, timeout=timeout)

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a run this scheduler fired; False when it has no such run going on."""
        return self.scheduler is not None and self.scheduler.cancel_run(run_id)


class Schedules:
    """`GET|POST schedules`, `GET|DELETE schedules/NAME`, `POST schedules/NAME/pause|resume`."""

    def __init__(self, served: ServedProject, hosted: HostedScheduler):
        self.served = served
        self.hosted = hosted

    def view(self) -> SchedulesView:
        """Every schedule, and the scheduler holding the project's lease (null when none runs)."""
        self.hosted.start()
        project = self.served.project()
        holder = schedule.scheduler_status(project)
        lease = None
        if holder is not None:
            here = (
                self.hosted.running
                and self.hosted.scheduler is not None
                and holder["owner"] == self.hosted.scheduler.owner
            )
            lease = SchedulerLease.model_validate({**holder, "here": here})
        return SchedulesView(
            schedules=[ScheduleEntry.model_validate(s) for s in schedule.list_schedules(project)],
            scheduler=lease,
            hosted=self.hosted.running,
            host_setting=self.hosted.enabled,
            scheduler_error=self.hosted.error,
        )

    def add(self, request: ScheduleRequest) -> ScheduleEntry:
        """A new schedule; its targets and parameters are checked as a run's would be."""
        check_schedule_name(request.name)
        pipeline = self.served.load()  # refuses notebooks outside the server's root, as a run does
        params = request.param_values()
        added = schedule.add_schedule(
            pipeline.project,
            request.name,
            cron=request.cron,
            every=request.every,
            tz=request.tz,
            targets=request.targets,
            params=params,
            grid=request.grid_text,
            on_failure_command=request.on_failure_command,
            on_failure_webhook=request.on_failure_webhook,
            notify_on=request.notify_on,
            deadline=request.deadline,
            notify_email=request.notify_email,
        )
        self.hosted.start()
        return ScheduleEntry.model_validate(added)

    def get(self, name: str) -> ScheduleEntry:
        return ScheduleEntry.model_validate(schedule.get_schedule(self.served.project(), check_schedule_name(name)))

    def pause(self, name: str) -> ScheduleEntry:
        return ScheduleEntry.model_validate(schedule.pause_schedule(self.served.project(), check_schedule_name(name)))

    def resume(self, name: str) -> ScheduleEntry:
        return ScheduleEntry.model_validate(schedule.resume_schedule(self.served.project(), check_schedule_name(name)))

    def remove(self, name: str) -> None:
        schedule.remove_schedule(self.served.project(), check_schedule_name(name))
