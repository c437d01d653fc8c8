"""The served project's reports through the REST API: `GET reports` lists them as `nbflow reports --json` does, and
`GET reports/RUN_ID/INSTANCE` answers the HTML one run kept, for a view that shows it in a sandboxed frame.

A report is read from the run's own copy (the declared path may hold a later run's), and only where it resolves
inside the server's root folder.
"""

from __future__ import annotations

from nbflow import history
from nbflow.errors import UsageError
from nbflow.grids import parse_selector
from nbflow.server.errors import ApiError
from nbflow.server.paths import ServedProject, inside
from nbflow.shapes import ReportList


class Reports:
    def __init__(self, served: ServedProject):
        self.served = served

    def listing(self, tasks: list[str], every: bool) -> ReportList:
        """The latest report of each instance (every version kept, with `every`) of the tasks or instances named
        (all when none is)."""
        try:
            selectors = [parse_selector(task) for task in tasks]
        except UsageError as exc:
            raise ApiError(400, str(exc)) from None
        with self.served.store() as store:
            return history.reports(store, selectors, every=every)

    def html(self, run_id: str, instance: str) -> bytes:
        """The report `run_id` wrote for `instance`, as the run kept it."""
        with self.served.store() as store:
            found = history.find_run(store, run_id)
            entries = history.reports(store, every=True).root
        entry = next((e for e in entries if e.run_id == found and e.name == instance), None)
        if found is None or entry is None:
            raise ApiError(404, f"run {run_id!r} wrote no report of {instance!r}; GET reports lists them.")
        path = self.served.project().root / entry.run_copy
        if not inside(self.served.root, path):
            raise ApiError(404, f"the report of {instance!r} resolves outside the server's root folder; not served.")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ApiError(404, f"the report of {instance!r} kept by run {found} ({entry.run_copy}) is gone.") from None
