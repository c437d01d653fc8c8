"""What "rerun failed" runs: a finished run's failed and cancelled instances and what lies downstream of them,
with the parameters and grid that run had, forced (a flaky source fails with nothing changed: judged again, the
instance could be up to date from an earlier success), their upstream taken as done (it succeeded in that run,
or was up to date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import UsageError
from nbflow.graph import Pipeline
from nbflow.grids import parse_selector
from nbflow.models import RunState, TaskState
from nbflow.store import Store

RERUN_STATES = (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)


@dataclass
class Rerun:
    """The options of the run that reruns `of`: pass them with `force=True, upstream=False, downstream=True`."""

    of: str
    targets: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)


def rerun_failed(pipeline: Pipeline, store: Store, run_id: str) -> Rerun:
    """The rerun of the run `run_id` (an id as the store has it); UsageError when it is running or lost nothing."""
    run = store.run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in this project; `nbflow runs` lists them.")
    if run.state is RunState.RUNNING:
        raise UsageError(f"run {run_id} is still running; rerun its failures once it has ended.")
    targets = [t.name for t in store.task_runs(run_id) if t.state in RERUN_STATES]
    if not targets:
        raise UsageError(f"run {run_id} has no failed or cancelled task to rerun (it {run.state}).")
    # The run's parameters again, but only those a task of the rerun assigns: a name no selected task assigns is
    # refused as a mistake, and the rerun selects fewer tasks than the run did. Secrets are read again from the
    # environment, never given.
    bases = {parse_selector(t).task for t in targets} & set(pipeline.specs)
    reached = {pipeline.tasks[n].base for n in pipeline.select(sorted(bases), upstream=False, downstream=True)}
    assigned = set(pipeline.project.params).union(*(pipeline.specs[t].params for t in reached))
    params: dict[str, Any] = {}
    for key, value in run.params.items():
        task, _, name = key.rpartition(".")
        if name in pipeline.project.secrets or (task and task not in reached) or (not task and name not in assigned):
            continue
        params[key] = value
    return Rerun(run_id, targets, params, dict(run.grid))
