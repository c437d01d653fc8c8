"""What the REST API does, without HTTP: the served project (`paths`), the resolved pipeline kept between
requests (`cache`), its runs (`runs`), its tasks and their files (`tasks`), its reports (`reports`), runs compared
(`diffs`), its schedules with the scheduler the server may host (`schedules`), its metrics and health (`metrics`)
and the run and task events pushed to the browser (`events`), put together for the handlers.

Everything here is plain blocking Python, called from the handlers in a thread pool so the server stays responsive.
"""

from __future__ import annotations

from pathlib import Path

from nbflow.server.cache import PipelineCache
from nbflow.server.diffs import Diffs
from nbflow.server.events import RunEvents
from nbflow.server.metrics import Metrics
from nbflow.server.paths import ServedProject
from nbflow.server.reports import Reports
from nbflow.server.runs import Runs
from nbflow.server.schedules import HostedScheduler, Schedules
from nbflow.server.tasks import Tasks


class NbflowService:
    """The project served: `root` is the Jupyter server's root folder, `project` a subfolder of it ("" = the root);
    `host_scheduler` is `c.NbflowApp.scheduler`."""

    def __init__(self, root: str | Path, project: str = "", host_scheduler: bool = False):
        self.served = ServedProject(root, project)
        self.hosted = HostedScheduler(self.served, host_scheduler)
        self.cache = PipelineCache(self.served)
        self.runs = Runs(self.served, self.hosted, self.cache)
        self.tasks = Tasks(self.served, self.cache)
        self.reports = Reports(self.served)
        self.diffs = Diffs(self.served)
        self.schedules = Schedules(self.served, self.hosted)
        self.metrics = Metrics(self.served, self.hosted)
        self.events = RunEvents(self.served)

    def shutdown(self, timeout: float = 30) -> None:
        """Stop the hosted scheduler (cancelling its runs), cancel the runs started here and wait for them to record
        themselves (called when the server stops)."""
        self.events.close()
        self.hosted.stop(timeout)
        self.runs.shutdown(timeout)
