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
        **options: Any,
    ) -> Run:
        """Run the targets (default: all) and their upstream; blocks until done. `grid` runs every selected task
        that uses a name once per value (`{"report_date": ["2026-11-01", ...]}`). Options are `run_pipeline`'s."""
        return run_pipeline(self, targets=targets, params=params, workers=workers, force=force, grid=grid, **options)

    def plan(
        self,
        targets: Iterable[str] | None = None,
        params: Mapping[str, Any] | None = None,
        force: bool = False,
        grid: Mapping[str, Iterable[Any]] | None = None,
    ) -> list[Step]:
        """What `run` would do with each task instance, and why, without running anything."""
        return plan(self, targets, params, force, grid)


def load(path: str | Path | None = None, params: Mapping[str, Any] | None = None) -> Pipeline:
    """Find the project for `path`, read its notebooks and resolve the pipeline; PipelineError lists all problems."""
    return Pipeline(**vars(graph.load(path, params)))
