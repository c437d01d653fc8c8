"""The run store: SQLite at `.nbflow/nbflow.db` (WAL) holding runs, task runs, fingerprints and schedules.

Every query nbflow makes lives in this package. Writes happen as a run goes, each in its own short transaction, so
a crash loses nothing that finished. Rows come back as the shared models (`RunRecord`, `TaskRun`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbflow import processes
from nbflow.errors import StoreError, StoreReadOnly
from nbflow.models import CellProgress, RunRecord, RunState, TaskError, TaskRun, TaskState
from nbflow.store import trouble
from nbflow.store.schema import NewerSchema, migrate, up_to_date
from nbflow.times import iso, now

DB_NAME = "nbflow.db"


class Store:
    """One project's store. Thread-safe: each thread gets its own connection. A thread that ends without closing
    its connection (the threads runs, watchers and notifications go on) has it closed when the next connection is
    made: a long-lived server or scheduler holds one per live thread, not one per thread it ever ran. Trouble with
    the file or the disk raises a `StoreError` (`nbflow.store.trouble`); a store that cannot be written is opened
    `read_only`, and only its writes fail."""

    def __init__(self, store_dir: Path):
        self.dir = Path(store_dir)
        self.path = self.dir / DB_NAME
        self._local = threading.local()
        self._connections: dict[int, sqlite3.Connection] = {}  # by thread ident
        self._connections_lock = threading.Lock()
        self.read_only = not trouble.writable(self.path) and self.dir.is_dir()
        self._immutable = False
        try:
            if not self.read_only:
                self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise trouble._from_os_error(self.dir, exc) from None
        trouble.check_file(self.path)
        try:
            if self.read_only:
                self._check_schema()
            else:
                if not self.path.exists():
                    trouble.create(self.path, migrate)
                with self.transaction() as db:
                    migrate(db)
        except NewerSchema as exc:
            raise StoreError(
                f"{self.path} was written by a newer nbflow (schema {exc.version}); upgrade nbflow to read it."
            ) from None

    def _check_schema(self) -> None:
        """A read-only store must need no migration: there is no writing one."""
        from nbflow.errors import StoreUnavailable

        if not self.path.exists():
            raise StoreReadOnly(f"{self.path} does not exist and cannot be created: make {self.dir} writable")
        try:
            current = up_to_date(self.db)
        except StoreUnavailable:  # SQLite could not make its shared-memory file beside it: read the file as it is
            self.close()
            self._immutable = True
            current = up_to_date(self.db)
        if not current:
            raise StoreReadOnly(
                f"{self.path} is read-only and was written by an older nbflow: open it once where it can be "
                "written, so that nbflow can bring it up to date"
            )

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # Readers never block the writer in WAL mode; writers wait for each other (busy_timeout), so users
            # never see "database is locked".
            with trouble.translated(self.path):
                connection = sqlite3.connect(
                    trouble.read_only_uri(self.path, self._immutable) if self.read_only else str(self.path),
                    timeout=60,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=trouble.Connection,
                    uri=self.read_only,
                )
            connection.store_path = self.path
            connection.row_factory = sqlite3.Row
            if not self.read_only:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
            self._keep(connection)
        return connection

    def _keep(self, connection: sqlite3.Connection) -> None:
        """Remember this thread's connection; close those of threads that have ended."""
        live = {thread.ident for thread in threading.enumerate()}
        with self._connections_lock:
            for ident in [i for i in self._connections if i not in live]:
                self._connections.pop(ident).close()
            # an ident the ended thread's connection still holds, reused by this thread
            previous = self._connections.get(threading.get_ident())
            if previous is not None and previous is not connection:
                previous.close()
            self._connections[threading.get_ident()] = connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): the error is what the caller must
            # see, not "no transaction is active"
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except StoreError:
                    pass
            raise
        db.execute("COMMIT")

    def close_all(self) -> None:
        """Close every thread's connection: for the owner of a store its threads are done with (a run's)."""
        with self._connections_lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._connections_lock:
                if self._connections.get(threading.get_ident()) is connection:
                    del self._connections[threading.get_ident()]

    # -- runs ---------------------------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        trigger: str,
        params: dict[str, Any],
        targets: list[str],
        tasks: list[TaskRun],
        state: RunState = RunState.RUNNING,
        *,
        grid: dict[str, list[Any]] | None = None,
        claims: Mapping[str, list[str]] | None = None,
        within: Callable[[Store], None] | None = None,
    ) -> None:
        """A new run and its task instances (all `pending`), owned by this process, with its `claims` (instance ->
        keys, see `nbflow.store.claims`). `within` is called inside the same transaction, after the claims are in
        (a run refused for an instance claimed elsewhere, a schedule's slot claimed): raising there leaves no trace
        of the run."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, trigger, state, started_at, params, targets, pid, pid_started, grid) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    trigger,
                    str(state),
                    iso(now()),
                    _dumps(params),
                    _dumps(targets),
                    os.getpid(),
                    processes.start_time(),
                    _dumps(grid or {}),
                ),
            )
            db.executemany(
                "INSERT INTO task_runs (run_id, task, position, state, base, grid) VALUES (?,?,?,'pending',?,?)",
                [(run_id, t.name, i, t.task, _dumps(t.grid) if t.grid else None) for i, t in enumerate(tasks)],
            )
            db.executemany(
                "INSERT OR IGNORE INTO claims (key, run_id, instance) VALUES (?,?,?)",
                [(key, run_id, instance) for instance, keys in (claims or {}).items() for key in keys],
            )
            if within is not None:
                within(self)

    def finish_run(self, run_id: str, state: RunState, message: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET state = ?, finished_at = ?, message = COALESCE(?, message) WHERE id = ?",
                (str(state), iso(now()), message, run_id),
            )
            db.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def update_task(self, run_id: str, task: str, **fields: Any) -> None:
        """Set some columns of a task run: `state`, `started_at`, `finished_at`, `attempts`, `error` (a TaskError),
        `output_notebook` (a path), `reasons`, `kernel_pid`, `fingerprint` (what the instance was judged with),
        `progress` (a CellProgress)."""
        values = {key: self._column(key, value) for key, value in fields.items()}
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self.transaction() as db:
            db.execute(
                f"UPDATE task_runs SET {assignments} WHERE run_id = ? AND task = ?", (*values.values(), run_id, task)
            )

    def record_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        state: TaskState,
        started_at: str | None,
        finished_at: str | None,
        error: TaskError | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?)",
                (run_id, task, attempt, str(state), started_at, finished_at, self._column("error", error)),
            )

    def data_version(self) -> int:
        """A number that changes whenever another connection commits to the store (this thread's own writes
        leave it as it is): a watcher asks it, cheaply, before reading anything again."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (times are UTC text, so they sort as they happened)."""
        sql = "SELECT * FROM runs ORDER BY started_at DESC, id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rows = self.db.execute(sql).fetchall()
        counts: dict[str, dict[str, int]] = {}
        if rows:
            ids = [r["id"] for r in rows]
            marks = ",".join("?" * len(ids))
            for run_id, state, n in self.db.execute(
                f"SELECT run_id, state, COUNT(*) FROM task_runs WHERE run_id IN ({marks}) GROUP BY run_id, state", ids
            ):
                counts.setdefault(run_id, {})[state] = n
        return [_run_record(r, counts.get(r["id"], {})) for r in rows]

    def run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        counts = dict(
            self.db.execute(
                "SELECT state, COUNT(*) FROM task_runs WHERE run_id = ? GROUP BY state", (run_id,)
            ).fetchall()
        )
        return _run_record(row, counts)

    def task_runs(self, run_id: str) -> list[TaskRun]:
        return [self._task_run(r) for r in self._task_rows(run_id)]

    def changed_task_runs(self, run_id: str, seen: dict[str, tuple[Any, ...]]) -> list[TaskRun]:
        """The task runs of `run_id` whose rows differ from those in `seen` (by instance name; updated here), in
        the run's order: a follower of a 1,000-task run reads the rows again at each change, but builds only the
        few that changed."""
        changed = []
        for row in self._task_rows(run_id):
            values = tuple(row)
            if seen.get(row["task"]) != values:
                seen[row["task"]] = values
                changed.append(self._task_run(row))
        return changed

    def _task_rows(self, run_id: str) -> list[sqlite3.Row]:
        """The rows of a run's task instances, in the run's order."""
        return self.db.execute(
            f"SELECT {_TASK_COLUMNS} FROM task_runs t WHERE run_id = ? ORDER BY position", (run_id,)
        ).fetchall()

    def fingerprints(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The fingerprint each instance of the run was judged with, by instance name (none for an instance that
        was never judged, or that ran before the store kept them)."""
        rows = self.db.execute(
            "SELECT task, fingerprint FROM task_runs WHERE run_id = ? AND fingerprint IS NOT NULL", (run_id,)
        ).fetchall()
        return {r["task"]: json.loads(r["fingerprint"]) for r in rows}

    def previous_execution(self, run_id: str, instance: str) -> str | None:
        """The latest run started before `run_id` that executed `instance` (it has its executed notebook)."""
        row = self.db.execute(
            "SELECT t.run_id FROM task_runs t JOIN runs r ON r.id = t.run_id, runs this ON this.id = ? "
            "WHERE t.task = ? AND t.output_notebook IS NOT NULL AND (r.started_at, r.id) < (this.started_at, this.id) "
            "ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
            (run_id, instance),
        ).fetchone()
        return row["run_id"] if row else None

    def last_task_runs(self) -> dict[str, TaskRun]:
        """The most recent task run (finished, or running) of every task, by name."""
        rows = self.db.execute(
            f"SELECT {_TASK_COLUMNS} FROM task_runs t JOIN runs r ON r.id = t.run_id "
            "WHERE t.state != 'pending' ORDER BY r.started_at ASC, r.id ASC"
        ).fetchall()
        return {r["task"]: self._task_run(r) for r in rows}

    def running_runs(self, trigger: str | None = None) -> list[RunRecord]:
        """The runs the store has as running (of one trigger, where given), oldest first, found through the
        indexes on state and trigger: the history grows with every run, and this is asked at each start and
        each schedule's firing."""
        where, args = "state = ?", [str(RunState.RUNNING)]
        if trigger is not None:
            where, args = "trigger = ? AND " + where, [trigger, *args]
        rows = self.db.execute(f"SELECT id FROM runs WHERE {where} ORDER BY started_at", args).fetchall()
        return [run for row in rows if (run := self.run(row["id"])) is not None]

    def is_alive(self, run: RunRecord) -> bool:
        """The process that runs `run` is still there (by pid and start time: pids are reused)."""
        process = self.process_of(run.id)
        return process is not None and processes.alive(*process)

    def process_of(self, run_id: str) -> tuple[int, float | None] | None:
        """The pid of the process that runs `run_id`, and when that process started."""
        row = self.db.execute("SELECT pid, pid_started FROM runs WHERE id = ?", (run_id,)).fetchone()
        return (row["pid"], row["pid_started"]) if row is not None and row["pid"] else None

    def mark_dead_runs(self) -> list[str]:
        """Runs left `running` by a process that died become `interrupted` (their unfinished tasks `cancelled`);
        returns their ids. Nothing is killed here: reading the store never stops a process."""
        dead = [run.id for run in self.running_runs() if not self.is_alive(run)]
        for run_id in dead:
            self.mark_interrupted(run_id)
        return dead

    def mark_interrupted(self, run_id: str) -> None:
        """A run whose process died: the run `interrupted`, its unfinished tasks `cancelled`."""
        with self.transaction() as db:
            stamp = iso(now())
            db.execute(
                "UPDATE runs SET state = ?, finished_at = ?, message = ? WHERE id = ? AND state = ?",
                (str(RunState.INTERRUPTED), stamp, "the nbflow process running it died", run_id, str(RunState.RUNNING)),
            )
            db.execute(
                "UPDATE task_runs SET state = ?, finished_at = COALESCE(finished_at, ?) "
                "WHERE run_id = ? AND state IN (?, ?, ?)",
                (str(TaskState.CANCELLED), stamp, run_id, *(str(s) for s in TaskState if not s.finished)),
            )
            db.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def orphan_kernels(self) -> list[tuple[str, str, int, float | None]]:
        """(run id, task, kernel pid, when the run's process started) of the tasks that were running when their
        run's process died."""
        rows = self.db.execute(
            "SELECT t.run_id, t.task, t.kernel_pid, r.pid_started FROM task_runs t JOIN runs r ON r.id = t.run_id "
            "WHERE r.state = ? AND t.kernel_pid IS NOT NULL",
            (str(RunState.INTERRUPTED),),
        ).fetchall()
        return [(r["run_id"], r["task"], r["kernel_pid"], r["pid_started"]) for r in rows]

    def forget_kernel(self, run_id: str, task: str) -> None:
        self.update_task(run_id, task, kernel_pid=None)

    # -- incremental state --------------------------------------------------------------------------------------

    def last_success(self, task: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]] | None:
        """(run id, fingerprint) of the task's last successful run with these parameter values (default: with
        any values)."""
        if params is None:
            row = self.db.execute(
                "SELECT run_id, fingerprint FROM task_successes WHERE task = ? ORDER BY finished_at DESC LIMIT 1",
                (task,),
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT run_id, fingerprint FROM task_successes WHERE task = ? AND params_key = ?",
                (task, params_key(params)),
            ).fetchone()
        return (row["run_id"], json.loads(row["fingerprint"])) if row else None

    def record_success(self, task: str, run_id: str, fingerprint: dict[str, Any]) -> None:
        """Keep the fingerprint of a success, under the parameter values it ran with (`fingerprint["params"]`)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO task_successes VALUES (?,?,?,?,?)",
                (task, params_key(fingerprint.get("params", {})), run_id, iso(now()), _dumps(fingerprint)),
            )

    def cached_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return row[0] if row else None

    def cache_hash(self, path: str, size: int, mtime_ns: int, digest: str) -> None:
        if self.read_only:  # a cache: reading commands on a read-only store hash again instead
            return
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?)", (path, size, mtime_ns, digest))

    # -- rows <-> models ------------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The project root: executed notebooks are stored relative to it."""
        return self.dir.parent

    def _column(self, key: str, value: Any) -> Any:
        if value is None:
            return None
        if key == "error":
            return _dumps(value.to_json() if isinstance(value, TaskError) else value)
        if key in ("reasons", "fingerprint"):
            return _dumps(value)
        if key == "progress":
            return _dumps(value.to_json() if isinstance(value, CellProgress) else value)
        if key == "output_notebook":
            return os.path.relpath(value, self.root) if os.path.isabs(value) else str(value)
        if key == "state":
            return str(value)
        return value

    def _task_run(self, row: sqlite3.Row) -> TaskRun:
        return TaskRun(
            name=row["task"],
            state=TaskState(row["state"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            attempts=row["attempts"],
            error=TaskError.from_json(_loads(row["error"])),
            output_notebook=self.root / row["output_notebook"] if row["output_notebook"] else None,
            reasons=_loads(row["reasons"]) or [],
            kernel_pid=row["kernel_pid"],
            run_id=row["run_id"],
            task=row["base"] or row["task"],
            grid=_loads(row["grid"]) or {},
            progress=CellProgress.from_json(_loads(row["progress"])),
        )


def open_store(store_dir: Path) -> Store:
    """The project's store, after marking runs whose process died as `interrupted` (where it can be written)."""
    store = Store(store_dir)
    if not store.read_only:
        store.mark_dead_runs()
    return store


_TASK_COLUMNS = (
    "t.run_id, t.task, t.state, t.started_at, t.finished_at, t.attempts, t.error, t.output_notebook, t.reasons, "
    "t.kernel_pid, t.base, t.grid, t.progress"
)


def params_key(params: dict[str, Any]) -> str:
    """Parameter values as compact sorted JSON: the same text SQLite's json() makes of them."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=repr)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, sort_keys=True)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _run_record(row: sqlite3.Row, counts: dict[str, int]) -> RunRecord:
    return RunRecord(
        id=row["id"],
        trigger=row["trigger"],
        state=RunState(row["state"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        params=_loads(row["params"]) or {},
        targets=_loads(row["targets"]) or [],
        grid=_loads(row["grid"]) or {},
        pid=row["pid"],
        message=row["message"],
        counts=counts,
    )
