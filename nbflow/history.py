"""Run history, task status and reports as the interfaces show them: the JSON of `runs`, `show`, `status` and
`reports`.

The CLI, the widgets and the server all read runs through here, so each shape is built once, through its model in
`nbflow.shapes`. The functions named after a shape return its model; `run_summary`, `run_detail` and `status`
return the same as JSON-ready dicts. Paths are shown relative to the project root, times (stored in UTC) in this
machine's zone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbflow import fingerprint
from nbflow.graph import Pipeline
from nbflow.grids import Selector
from nbflow.models import RunRecord, TaskRun, TaskState
from nbflow.shapes import (
    CellProgressEntry,
    ReportEntry,
    ReportList,
    RunDetail,
    RunSummary,
    TaskErrorEntry,
    TaskRunEntry,
    TaskStatusEntry,
)
from nbflow.store import Store
from nbflow.store.reports import reports as stored_reports
from nbflow.times import local


def _run_fields(row: RunRecord) -> dict[str, Any]:
    """What every shape of a run starts with."""
    return {
        "id": row.id,
        "trigger": row.trigger,
        "state": row.state,
        "started_at": local(row.started_at),
        "finished_at": local(row.finished_at),
        "duration_s": row.duration_s,
        "grid": row.grid,
    }


def summary(row: RunRecord) -> RunSummary:
    return RunSummary(
        **_run_fields(row), counts={TaskState(state): n for state, n in row.counts.items()}, params=row.params
    )


def task_entry(task: TaskRun, root: Path) -> TaskRunEntry:
    error = task.error
    return TaskRunEntry(
        name=task.name,
        task=task.task,
        grid=task.grid,
        state=task.state,
        started_at=local(task.started_at),
        finished_at=local(task.finished_at),
        duration_s=task.duration_s,
        attempts=task.attempts,
        error=TaskErrorEntry(**error.to_json()) if error else None,
        output_notebook=task.output_notebook.relative_to(root).as_posix() if task.output_notebook else None,
        progress=CellProgressEntry(**task.progress.to_json()) if task.progress else None,
    )


def detail(store: Store, run_id: str) -> RunDetail | None:
    row = store.run(run_id)
    if row is None:
        return None
    return RunDetail(
        **_run_fields(row),
        params=row.params,
        tasks=[task_entry(t, store.root) for t in store.task_runs(run_id)],
    )


def task_statuses(pipeline: Pipeline, store: Store) -> dict[str, TaskStatusEntry]:
    """Each task judged with the parameter values in force, by name (the judgement itself is
    `fingerprint.status`)."""
    return {
        name: TaskStatusEntry(
            name=judged.name,
            task=pipeline.tasks[name].base,
            grid=pipeline.tasks[name].grid,
            status=judged.status,
            reasons=judged.reasons,
            last_run=judged.last_run,
            last_instance=judged.last_instance,
            last_state=judged.last_state,
            duration_s=judged.duration_s,
        )
        for name, judged in fingerprint.status(pipeline, store).items()
    }


def reports(store: Store, selectors: Sequence[Selector] = (), *, every: bool = False) -> ReportList:
    """The latest report of each instance (with `every`, each one a run kept), of the tasks or instances the
    selectors name (all without one), by task and instance, each instance's newest first."""
    root = store.root
    entries: list[ReportEntry] = []
    seen: set[str] = set()
    for report in stored_reports(store, every=every):
        if selectors and not any(s.matches(report.task, report.grid) for s in selectors):
            continue
        entries.append(
            ReportEntry(
                name=report.instance,
                task=report.task,
                grid=report.grid,
                run_id=report.run_id,
                params=report.params,
                written_at=local(report.written_at),
                path=Path(os.path.relpath(report.path, root)).as_posix(),
                exists=report.path.is_file(),
                run_copy=Path(os.path.relpath(report.copy, root)).as_posix(),
                run_copy_exists=report.copy.is_file(),
                latest=report.instance not in seen,
            )
        )
        seen.add(report.instance)
    return ReportList(entries)


RELATIVE_REFS = ("latest", "previous")  # the newest run, the one before it


def find_run(store: Store, run_id: str) -> str | None:
    """A run id from a full id or a unique prefix of one; `latest` is the newest run, `previous` the one before."""
    runs = store.runs()
    if run_id in RELATIVE_REFS:
        position = RELATIVE_REFS.index(run_id)
        return runs[position].id if len(runs) > position else None
    matches = [r.id for r in runs if r.id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None


# -- the same as JSON-ready dicts -----------------------------------------------------------------------------------


def run_summary(row: RunRecord) -> dict[str, Any]:
    """An entry of `runs --json`."""
    return summary(row).to_json()


def task_json(task: TaskRun, root: Path) -> dict[str, Any]:
    """A task of `show --json`."""
    return task_entry(task, root).to_json()


def run_detail(store: Store, run_id: str) -> dict[str, Any] | None:
    """`show --json`, or None when the store has no such run."""
    found = detail(store, run_id)
    return found.to_json() if found else None


def status(pipeline: Pipeline, store: Store) -> dict[str, dict[str, Any]]:
    """`status --json`'s task entries by name."""
    return {name: entry.to_json() for name, entry in task_statuses(pipeline, store).items()}
