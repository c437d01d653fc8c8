"""Reports: which run wrote each instance's report, where, and with which parameter values.

The path a task declares holds its latest report only; each run keeps its own copy beside its executed notebooks,
and this table remembers both, so the earlier versions stay listed and readable. Rows are in the order they were
written (a clock going back, or a zone changing, does not reorder them).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow.store.db import Store


@dataclass(frozen=True)
class Report:
    """One report one run wrote for one task instance; paths absolute."""

    run_id: str
    instance: str  # the instance's name (the task's, without a grid)
    task: str
    grid: dict[str, Any]
    params: dict[str, Any]  # the values in force for the parameters the notebook assigns
    path: Path  # the declared path, which the next success writes again
    copy: Path  # the run's own copy
    written_at: str


def record_report(store: Store, report: Report) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO reports (run_id, instance, task, grid, params, path, copy, written_at) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                report.run_id,
                report.instance,
                report.task,
                json.dumps(report.grid, default=repr),
                json.dumps(report.params, default=repr, sort_keys=True),
                os.path.relpath(report.path, store.root),
                os.path.relpath(report.copy, store.root),
                report.written_at,
            ),
        )


def reports(store: Store, *, every: bool = False) -> list[Report]:
    """The latest report of each instance (every report kept, with `every`), by task and instance, newest first."""
    latest = "" if every else "WHERE r.rowid = (SELECT MAX(rowid) FROM reports WHERE instance = r.instance)"
    rows = store.db.execute(f"SELECT * FROM reports r {latest} ORDER BY r.task, r.instance, r.rowid DESC").fetchall()
    return [_report(store.root, row) for row in rows]


def reports_of_runs(store: Store, run_ids: Iterable[str]) -> dict[tuple[str, str], Report]:
    """The reports the given runs wrote, by (run id, instance)."""
    wanted = sorted(set(run_ids))
    found: dict[tuple[str, str], Report] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        for row in store.db.execute(f"SELECT * FROM reports WHERE run_id IN ({marks})", chunk):
            report = _report(store.root, row)
            found[report.run_id, report.instance] = report
    return found


_IDS_PER_QUERY = 500  # under SQLite's limit on the parameters of one statement


def _report(root: Path, row: sqlite3.Row) -> Report:
    return Report(
        run_id=row["run_id"],
        instance=row["instance"],
        task=row["task"],
        grid=json.loads(row["grid"]),
        params=json.loads(row["params"]),
        path=Path(os.path.normpath(root / row["path"])),
        copy=Path(os.path.normpath(root / row["copy"])),
        written_at=row["written_at"],
    )
