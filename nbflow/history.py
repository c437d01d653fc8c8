"""Run history and task status as the interfaces show them: the JSON shapes of SPEC section 4.

The CLI, the widgets and the server all read runs through here, so each shape is written once. Opening the store
also finds runs whose process died and marks them `interrupted`.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from nbflow import fingerprint
from nbflow.graph import Pipeline
from nbflow.project import Project
from nbflow.run.lock import ProjectLock
from nbflow.store import RunRow, Store, TaskRunRow


def open_store(project: Project) -> Store:
    """The project's store, after marking runs left `running` by a dead process as `interrupted`."""
    store = Store(project.store_dir)
    if store.running_runs():
        lock = ProjectLock(project.store_dir)
        if lock.try_acquire():  # nobody holds it, so no run is really going on
            try:
                for row in store.running_runs():
                    for task in store.task_runs(row.id):
                        if task.state == "running" and task.kernel_pid:
                            stop_orphan_kernel(task.kernel_pid)
                    store.mark_interrupted(row.id)
            finally:
                lock.release()
    return store


def stop_orphan_kernel(pid: int) -> bool:
    """Kill a kernel left behind by a dead run, if that pid is still an IPython kernel (pids get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            command = fh.read()
    except OSError:
        return False
    if b"ipykernel" not in command and b"nbflow.run.forkserver" not in command:  # forked kernels keep its name
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_summary(row: RunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "trigger": row.trigger,
        "state": row.state,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "duration_s": row.duration_s,
        "counts": row.counts,
    }


def task_json(task: TaskRunRow) -> dict[str, Any]:
    return {
        "name": task.task,
        "state": task.state,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "duration_s": task.duration_s,
        "attempts": task.attempts,
        "error": task.error,
        "output_notebook": task.output_notebook,
    }


def run_detail(store: Store, run_id: str) -> dict[str, Any] | None:
    row = store.run(run_id)
    if row is None:
        return None
    summary = run_summary(row)
    del summary["counts"]
    return {**summary, "params": row.params, "tasks": [task_json(t) for t in store.task_runs(run_id)]}


def find_run(store: Store, run_id: str) -> str | None:
    """A run id from a full id or a unique prefix of one; `latest` is the newest run."""
    runs = store.runs()
    if run_id == "latest":
        return runs[0].id if runs else None
    matches = [r.id for r in runs if r.id.startswith(run_id)]
    return matches[0] if len(matches) == 1 else None


def status(pipeline: Pipeline, store: Store) -> dict[str, dict[str, Any]]:
    """Each task judged with the parameter values in force: up_to_date, stale (with reasons), never_run, failed."""
    relative = pipeline.project.relative
    last_runs = store.last_task_runs()
    result: dict[str, dict[str, Any]] = {}
    for name, task in pipeline.tasks.items():
        last = last_runs.get(name)
        success = store.last_success(name)
        reasons: list[str] = []
        if last is not None and last.state == "failed":
            judged = "failed"
            reasons = [f"last run failed: {last.error['ename']}: {last.error['evalue']}"] if last.error else []
        elif success is None:
            judged = "never_run"
        else:
            current = fingerprint.task_fingerprint(task, store, relative)
            reasons = fingerprint.stale_reasons(current, fingerprint.output_hashes(task, store, relative), success[1])
            reasons += [
                f"upstream {up} is {result[up]['status'].replace('_', ' ')}"
                for up in pipeline.graph.predecessors(name)
                if result[up]["status"] != "up_to_date"
            ]
            judged = "stale" if reasons else "up_to_date"
        result[name] = {
            "name": name,
            "status": judged,
            "reasons": reasons,
            "last_run": last.run_id if last else None,
            "last_state": last.state if last else None,
            "duration_s": last.duration_s if last else None,
        }
    return result
