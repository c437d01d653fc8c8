"""The dry run: what a run would do with each selected task, judged as the run loop judges, without running."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nbflow import fingerprint
from nbflow.graph import Pipeline
from nbflow.run.prepare import prepare
from nbflow.store import open_store


class Action(str, Enum):
    RUN = "run"
    SKIP = "skip"
    # every reason to run is an input that an upstream task that runs first is about to rewrite: the run decides
    # once that task has finished, by the content it wrote
    RUN_IF_UPSTREAM_CHANGES = "run if upstream changes"

    def __str__(self) -> str:
        return self.value


@dataclass
class Step:
    task: str
    action: Action
    reasons: list[str] = field(default_factory=list)


def plan(
    pipeline: Pipeline,
    targets: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    force: bool = False,
    grid: Mapping[str, Iterable[Any]] | None = None,
    upstream: bool = True,
    downstream: bool = False,
) -> list[Step]:
    """Each selected task instance, in the order a run would take them, with what the run would do and why."""
    prepared = prepare(pipeline, targets, params, grid, upstream, downstream)
    resolved = prepared.pipeline
    relative = resolved.project.relative
    store = open_store(resolved.project.store_dir)
    try:
        actions: dict[str, Action] = {}
        steps = []
        for name in prepared.selected:
            task = resolved.tasks[name]
            # an upstream task left out of the run (`upstream=False`) is taken as done
            running_upstream = [
                u for u in resolved.graph.predecessors(name) if actions.get(u, Action.SKIP) is not Action.SKIP
            ]
            pending = {relative(path) for u in running_upstream for path in resolved.graph.edges[u, name]["via"]}
            verdict = fingerprint.judge(
                task, store, relative, force=force, pending_inputs=pending, pending_upstream=running_upstream
            )
            if verdict.must_run:
                action, reasons = Action.RUN, verdict.reasons
            elif running_upstream:
                action, reasons = Action.RUN_IF_UPSTREAM_CHANGES, [f"upstream {u} will run" for u in running_upstream]
            else:
                action, reasons = Action.SKIP, []
            actions[name] = action
            steps.append(Step(name, action, reasons))
        return steps
    finally:
        store.close()
