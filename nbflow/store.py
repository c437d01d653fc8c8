"""The run store: SQLite at `.nbflow/nbflow.db` (WAL) holding runs, task runs, fingerprints and schedules.

Every interface reads runs through the queries here. Writes happen as a run goes, each in its own short
transaction, so a crash loses nothing that finished. Schema changes are numbered migrations; `schema_version` in
`meta` says which have been applied.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DB_NAME = "nbflow.db"

MIGRATIONS = [
    # 1: runs, task runs and their attempts, the last success of each task, the file-hash cache
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        trigger TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        targets TEXT NOT NULL DEFAULT '[]',
        pid INTEGER,
        message TEXT
    );
    CREATE TABLE task_runs (
        run_id TEXT NOT NULL REFERENCES runs(id),
        task TEXT NOT NULL,
        position INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        output_notebook TEXT,
        reasons TEXT,
        kernel_pid INTEGER,
        PRIMARY KEY (run_id, task)
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        error TEXT,
        PRIMARY KEY (run_id, task, attempt)
    );
    CREATE TABLE task_success (
        task TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        fingerprint TEXT NOT NULL
    );
    CREATE TABLE file_hashes (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE INDEX runs_started ON runs(started_at);
    """,
    # 2: schedules (nbflow.schedule) and the lease that lets one scheduler process at a time fire them
    """
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT,
        every_s REAL,
        tz TEXT NOT NULL,
        targets TEXT NOT NULL DEFAULT '[]',
        params TEXT NOT NULL DEFAULT '{}',
        paused INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        not_before TEXT NOT NULL,
        last_fired TEXT,
        on_failure_command TEXT,
        on_failure_webhook TEXT
    );
    CREATE TABLE scheduler_lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX runs_trigger ON runs(trigger, state);
    """,
]

ACTIVE_TASK_STATES = ("pending", "running")


def now() -> datetime:
    return datetime.now(timezone.utc).astimezone()


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def duration(started: str | None, finished: str | None) -> float | None:
    if not started:
        return None
    end = parse_time(finished) if finished else now()
    return round((end - parse_time(started)).total_seconds(), 3)


@dataclass
class RunRow:
    id: str
    trigger: str
    state: str
    started_at: str
    finished_at: str | None
    params: dict
    targets: list
    pid: int | None
    message: str | None
    counts: dict[str, int]

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at)


@dataclass
class TaskRunRow:
    run_id: str
    task: str
    state: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    error: dict | None
    output_notebook: str | None
    reasons: list[str]
    kernel_pid: int | None

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at) if self.started_at and self.finished_at else None


class Store:
    """One project's store. Thread-safe: each thread gets its own connection."""

    def __init__(self, store_dir: Path):
        self.dir = Path(store_dir)
        self.path = self.dir / DB_NAME
        self._local = threading.local()
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise RuntimeError(f"{self.path} was written by a newer nbflow (schema {version}); upgrade nbflow")
            for number in range(version, len(MIGRATIONS)):
                # executescript() would commit on its own; run each statement inside this transaction instead.
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(len(MIGRATIONS)),))

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # Readers never block the writer in WAL mode; writers wait for each other (busy_timeout), so users
            # never see "database is locked".
            connection = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # -- runs ---------------------------------------------------------------------------------------------------

    def create_run(
        self, run_id: str, trigger: str, params: dict, targets: list, tasks: list[str], state: str = "running"
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, trigger, state, started_at, params, targets, pid) VALUES (?,?,?,?,?,?,?)",
                (run_id, trigger, state, iso(now()), _dumps(params), _dumps(targets), os.getpid()),
            )
            db.executemany(
                "INSERT INTO task_runs (run_id, task, position, state) VALUES (?,?,?,'pending')",
                [(run_id, task, i) for i, task in enumerate(tasks)],
            )

    def finish_run(self, run_id: str, state: str, message: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET state = ?, finished_at = ?, message = COALESCE(?, message) WHERE id = ?",
                (state, iso(now()), message, run_id),
            )

    def update_task(self, run_id: str, task: str, **fields: Any) -> None:
        for key in ("error", "reasons"):
            if key in fields and fields[key] is not None:
                fields[key] = _dumps(fields[key])
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self.transaction() as db:
            db.execute(
                f"UPDATE task_runs SET {assignments} WHERE run_id = ? AND task = ?", (*fields.values(), run_id, task)
            )

    def record_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        state: str,
        started_at: str | None,
        finished_at: str | None,
        error: dict | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?)",
                (run_id, task, attempt, state, started_at, finished_at, _dumps(error) if error else None),
            )

    def runs(self, limit: int | None = None) -> list[RunRow]:
        sql = "SELECT * FROM runs ORDER BY started_at DESC, id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rows = self.db.execute(sql).fetchall()
        counts: dict[str, dict[str, int]] = {}
        if rows:
            ids = [r[0] for r in rows]
            marks = ",".join("?" * len(ids))
            for run_id, state, n in self.db.execute(
                f"SELECT run_id, state, COUNT(*) FROM task_runs WHERE run_id IN ({marks}) GROUP BY run_id, state", ids
            ):
                counts.setdefault(run_id, {})[state] = n
        return [_run_row(r, counts.get(r[0], {})) for r in rows]

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        counts = dict(
            self.db.execute(
                "SELECT state, COUNT(*) FROM task_runs WHERE run_id = ? GROUP BY state", (run_id,)
            ).fetchall()
        )
        return _run_row(row, counts)

    def task_runs(self, run_id: str) -> list[TaskRunRow]:
        rows = self.db.execute(
            "SELECT run_id, task, state, started_at, finished_at, attempts, error, "
            "output_notebook, reasons, kernel_pid FROM task_runs WHERE run_id = ? "
            "ORDER BY position",
            (run_id,),
        ).fetchall()
        return [
            TaskRunRow(r[0], r[1], r[2], r[3], r[4], r[5], _loads(r[6]), r[7], _loads(r[8]) or [], r[9]) for r in rows
        ]

    def last_task_runs(self) -> dict[str, TaskRunRow]:
        """The most recent finished (or running) task run of every task, by name."""
        rows = self.db.execute(
            "SELECT t.run_id, t.task, t.state, t.started_at, t.finished_at, t.attempts, t.error, t.output_notebook, "
            "t.reasons, t.kernel_pid FROM task_runs t JOIN runs r ON r.id = t.run_id "
            "WHERE t.state NOT IN ('pending') ORDER BY r.started_at ASC, r.id ASC"
        ).fetchall()
        return {
            r[1]: TaskRunRow(r[0], r[1], r[2], r[3], r[4], r[5], _loads(r[6]), r[7], _loads(r[8]) or [], r[9])
            for r in rows
        }

    def running_runs(self) -> list[RunRow]:
        return [r for r in self.runs() if r.state == "running"]

    def mark_interrupted(self, run_id: str) -> None:
        """A run whose process died: the run `interrupted`, its unfinished tasks `cancelled`."""
        with self.transaction() as db:
            stamp = iso(now())
            db.execute(
                "UPDATE runs SET state = 'interrupted', finished_at = ?, message = ? WHERE id = ?",
                (stamp, "the nbflow process running it died", run_id),
            )
            db.execute(
                "UPDATE task_runs SET state = 'cancelled', finished_at = COALESCE(finished_at, ?) "
                "WHERE run_id = ? AND state IN ('pending', 'running')",
                (stamp, run_id),
            )

    # -- incremental state --------------------------------------------------------------------------------------

    def last_success(self, task: str) -> tuple[str, dict] | None:
        row = self.db.execute("SELECT run_id, fingerprint FROM task_success WHERE task = ?", (task,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def record_success(self, task: str, run_id: str, fingerprint: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO task_success VALUES (?,?,?,?)", (task, run_id, iso(now()), _dumps(fingerprint))
            )

    def cached_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return row[0] if row else None

    def cache_hash(self, path: str, size: int, mtime_ns: int, digest: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?)", (path, size, mtime_ns, digest))


def _statements(script: str) -> list[str]:
    return [s for s in (part.strip() for part in script.split(";")) if s]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, sort_keys=True)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _run_row(row: tuple, counts: dict[str, int]) -> RunRow:
    return RunRow(
        row[0], row[1], row[2], row[3], row[4], _loads(row[5]) or {}, _loads(row[6]) or [], row[7], row[8], counts
    )
