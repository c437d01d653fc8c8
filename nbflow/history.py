"""Run history and task status as the interfaces show them: the JSON shapes of `runs`, `show` and `status`.

The CLI, the widgets and the server all read runs through here, so each shape is written once. Paths are shown
relative to the project root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbflow import fingerprint
from nbflow.graph import Pipeline
from nbflow.models import RunRecord, TaskRun
from nbflow.store import Store


def run_summary(row: RunRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "trigger": row.trigger,
        "state": row.state.value,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "duration_s": row.duration_s,
        "counts": row.counts,
    }


def task_json(task: TaskRun, root: Path) -> dict[str, Any]:
    return {
        "name": task.name,
        "state": task.state.value,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "duration_s": task.duration_s,
        "attempts": task.attempts,
        "error": task.error.to_json() if task.error else None,
        "output_notebook": task.output_notebook.relative_to(root).as_posix() if task.output_notebook else None,
    }


def run_detail(store: Store, run_id: str) -> dict[str, Any] | None:
    row = store.run(run_id)
    if row is None:
        return None
    summary = run_summary(row)
    del summary["counts"]
    tasks = [task_json(t, store.root) for t in store.task_runs(run_id)]
    return {**summary, "params": row.params, "tasks": tasks}


def find_run(store: Store, run_id: str) -> str | None:
    """A run id from a full id or a unique prefix of one; `latest` is the newest run."""
    runs = store.runs()
    if run_id == "latest":
        return runs[0].id if runs else None
    matches = [r.id for r in runs if r.id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None


def status(pipeline: Pipeline, store: Store) -> dict[str, dict[str, Any]]:
    """`status --json`'s task entries by name (the judgement itself is `fingerprint.status`)."""
    return {
        name: {
            "name": judged.name,
            "status": judged.status.value,
            "reasons": judged.reasons,
            "last_run": judged.last_run,
            "last_state": judged.last_state.value if judged.last_state else None,
            "duration_s": judged.duration_s,
        }
        for name, judged in fingerprint.status(pipeline, store).items()
    }
