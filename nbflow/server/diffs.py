"""Comparisons of runs through the REST API: `GET runs/A/diff/B?task=T` answers what `nbflow diff A B -t T --json`
prints, and `GET runs/ID/tasks/INSTANCE/diff` compares an instance of a run with the previous run that executed
it (what the lab's "Compare with previous run" shows). A run or task not found is a 404, a malformed `task` a 400.
"""

from __future__ import annotations

from nbflow import diff
from nbflow.server.errors import ApiError
from nbflow.server.paths import ServedProject
from nbflow.shapes import RunDiff


class Diffs:
    def __init__(self, served: ServedProject):
        self.served = served

    def between(self, run_a: str, run_b: str, task: str | None) -> RunDiff:
        """What changed from run `run_a` to run `run_b`, for the task or instances `task` names (all without)."""
        project = self.served.project()
        with self.served.store(project) as store:
            try:
                return diff.diff_runs(store, run_a, run_b, task or None, project.secret_values)
            except (diff.RunNotFound, diff.NothingToCompare) as exc:
                raise ApiError(404, str(exc).replace("`nbflow runs` lists", "GET runs lists")) from None

    def with_previous(self, run_id: str, instance: str) -> RunDiff:
        """The instance in run `run_id` against the latest earlier run that executed it."""
        with self.served.store() as store:
            try:
                found = diff.resolve(store, run_id)
                previous = diff.previous_run(store, found, instance)
            except (diff.RunNotFound, diff.NothingToCompare) as exc:
                raise ApiError(404, str(exc).replace("`nbflow runs` lists", "GET runs lists")) from None
        return self.between(previous, found, instance)
