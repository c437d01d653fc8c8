"""The Python API: `nbflow.load(path)` gives a `Pipeline` that can run itself.

`graph.Pipeline` is the resolved graph and knows nothing of running; this subclass adds `run` and `plan` on top,
so the graph layer never imports the execution layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nbflow import graph
from nbflow.models import Run
from nbflow.run.plan import Step, plan
from nbflow.run.start import run_pipeline


class Pipeline(graph.Pipeline):
    """A resolved pipeline: `tasks` in a stable topological order and `graph`, a networkx.DiGraph of names."""

    def run(
        self,
        targets: Iterable[str] | None = None,
        params: Mapping[str, Any] | None = None,
        workers: int | None = None,
        force: bool = False,
        grid: Mapping[str, Iterable[Any]] | None = None,
        notify: bool = True,
        **options: Any,
    ) -> Run:
        """Run the targets (default: all) and their upstream (`upstream=False`: the targets alone, their upstream
        taken as done; `downstream=True`: what lies downstream of the targets too); blocks until done. `grid`
        runs every selected task that uses a name once per value (`{"report_date": ["2026-11-01", ...]}`). With
        `[notify]` `runs = "all"`, the run's end is notified before this returns (at most 30 s more;
        `notify=False`: not at all). Options are `run_pipeline`'s."""
        run = run_pipeline(self, targets=targets, params=params, workers=workers, force=force, grid=grid, **options)
        if notify and self.project.notify.runs == "all":
            from nbflow.notify import deliver_after_run  # smtplib and email: imported only where runs notify

            deliver_after_run(self.project, run.id)  # a channel that fails is logged and recorded, not raised
        return run

    def plan(
        self,
        targets: Iterable[str] | None = None,
        params: Mapping[str, Any] | None = None,
        force: bool = False,
        grid: Mapping[str, Iterable[Any]] | None = None,
        upstream: bool = True,
        downstream: bool = False,
    ) -> list[Step]:
        """What `run` would do with each task instance, and why, without running anything."""
        return plan(self, targets, params, force, grid, upstream, downstream)


def load(path: str | Path | None = None, params: Mapping[str, Any] | None = None) -> Pipeline:
    """Find the project for `path`, read its notebooks and resolve the pipeline; PipelineError lists all problems."""
    return Pipeline(**vars(graph.load(path, params)))
