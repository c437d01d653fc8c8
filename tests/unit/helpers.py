"""Task notebooks written into a temporary project, and what the store recorded of a run, for the fast tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import write_notebook

from nbflow.models import Run, RunRecord, TaskError, TaskRun, TaskState
from nbflow.project import STORE_DIR
from nbflow.store import Store


def task(
    project: Path,
    notebook: str,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    upstream: Sequence[str] = (),
    params: str = "",
    code: str = "x = 1",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """A task notebook at `notebook` (relative to the project) declaring these paths, plus `params` lines."""
    lines = [f"inputs = {list(inputs)!r}", f"outputs = {list(outputs)!r}"]
    if upstream:
        lines.append(f"upstream = {list(upstream)!r}")
    if params:
        lines.append(params)
    return write_notebook(project / notebook, "\n".join(lines), code, metadata=metadata)


def states(run: Run) -> dict[str, TaskState]:
    return {name: result.state for name, result in run.tasks.items()}


@dataclass
class Attempt:
    attempt: int
    state: TaskState
    error: TaskError | None


@dataclass
class Recorded:
    """A run as the store holds it once the run is over."""

    run: RunRecord
    tasks: dict[str, TaskRun]
    attempts: dict[str, list[Attempt]]

    @property
    def states(self) -> dict[str, TaskState]:
        return {name: result.state for name, result in self.tasks.items()}


def recorded(project: Path, run_id: str) -> Recorded:
    store = Store(project / STORE_DIR)
    try:
        run = store.run(run_id)
        assert run is not None, f"the store has no run {run_id}"
        tasks = {result.name: result for result in store.task_runs(run_id)}
        attempts: dict[str, list[Attempt]] = {}
        # the store has no reader for the attempts table: nothing in nbflow shows single attempts yet
        for row in store.db.execute(
            "SELECT task, attempt, state, error FROM attempts WHERE run_id = ? ORDER BY task, attempt", (run_id,)
        ):
            error = TaskError.from_json(json.loads(row["error"])) if row["error"] else None
            attempts.setdefault(row["task"], []).append(Attempt(row["attempt"], TaskState(row["state"]), error))
        return Recorded(run, tasks, attempts)
    finally:
        store.close()
