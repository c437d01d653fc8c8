"""The store's schema: numbered migrations, applied in order; `schema_version` in `meta` says how many ran."""

from __future__ import annotations

import sqlite3

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
    # 3: the start time of a run's process beside its pid, so a reused pid is not taken for the run's process
    """
    ALTER TABLE runs ADD COLUMN pid_started REAL;
    """,
    # 4: the same for the scheduler lease's process
    """
    ALTER TABLE scheduler_lease ADD COLUMN pid_started REAL;
    """,
    # 5: a task's last success per set of parameter values, so going back to earlier values reruns nothing that
    # is still up to date for them; `params_key` is the values as compact sorted JSON
    """
    CREATE TABLE task_successes (
        task TEXT NOT NULL,
        params_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (task, params_key)
    );
    INSERT INTO task_successes
        SELECT task, json(json_extract(fingerprint, '$.params')), run_id, finished_at, fingerprint FROM task_success;
    DROP TABLE task_success;
    CREATE INDEX task_successes_latest ON task_successes(task, finished_at);
    """,
    # 6: task instances (a task's name and grid values beside the instance's name), a run's own grid, and the
    # claims that let runs go side by side: a run claims every instance it may run (and every path it may write)
    # as it starts; an instance goes to the oldest running run claiming it, the others wait for it
    """
    ALTER TABLE task_runs ADD COLUMN base TEXT;
    ALTER TABLE task_runs ADD COLUMN grid TEXT;
    ALTER TABLE runs ADD COLUMN grid TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE claims (
        key TEXT NOT NULL,
        run_id TEXT NOT NULL REFERENCES runs(id),
        instance TEXT NOT NULL,
        PRIMARY KEY (key, run_id)
    );
    CREATE INDEX claims_run ON claims(run_id);
    CREATE INDEX runs_state ON runs(state);
    ALTER TABLE schedules ADD COLUMN grid TEXT NOT NULL DEFAULT '{}';
    """,
    # 7: the reports runs wrote (`nbflow.store.reports`): one row per instance and run, each with the run's own
    # copy, so earlier versions stay readable after the declared path is written again; paths relative to the root
    """
    CREATE TABLE reports (
        run_id TEXT NOT NULL REFERENCES runs(id),
        instance TEXT NOT NULL,
        task TEXT NOT NULL,
        grid TEXT NOT NULL DEFAULT '{}',
        params TEXT NOT NULL DEFAULT '{}',
        path TEXT NOT NULL,
        copy TEXT NOT NULL,
        written_at TEXT NOT NULL,
        PRIMARY KEY (run_id, instance)
    );
    CREATE INDEX reports_latest ON reports(instance, written_at);
    """,
    # 8: notifications (`nbflow.notify`): each schedule's events, deadline and recipients; every delivery of a
    # notice on a channel with its outcome (what metrics read); and the deadlines already noticed, one per
    # schedule and day, so a restarted scheduler never repeats one
    """
    ALTER TABLE schedules ADD COLUMN notify_on TEXT;
    ALTER TABLE schedules ADD COLUMN deadline TEXT;
    ALTER TABLE schedules ADD COLUMN notify_email TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT,
        schedule TEXT,
        event TEXT NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX notifications_run ON notifications(run_id);
    CREATE TABLE deadline_notices (
        schedule TEXT NOT NULL,
        day TEXT NOT NULL,
        noticed_at TEXT NOT NULL,
        PRIMARY KEY (schedule, day)
    );
    """,
    # 9: the fingerprint each instance of a run was judged with (code, parameter values, input hashes), kept per
    # run so `nbflow diff` can tell what differed between two runs (`task_successes` keeps only the latest)
    """
    ALTER TABLE task_runs ADD COLUMN fingerprint TEXT;
    """,
    # 10: times in UTC. Until now each process wrote its own zone's offset, and times compared as text (runs are
    # ordered by `started_at`) sorted wrongly across zones; the times written so far become UTC, as `times.now()`
    # writes them from now on (SQLite's strftime reads the offset; a text it cannot read is left as it was)
    "".join(
        f"UPDATE {table} SET {column} = COALESCE(strftime('%Y-%m-%dT%H:%M:%f+00:00', {column}), {column}) "
        f"WHERE {column} IS NOT NULL;"
        for table, columns in {
            "runs": ("started_at", "finished_at"),
            "task_runs": ("started_at", "finished_at"),
            "attempts": ("started_at", "finished_at"),
            "task_successes": ("finished_at",),
            "reports": ("written_at",),
            "notifications": ("created_at", "updated_at"),
            "deadline_notices": ("noticed_at",),
        }.items()
        for column in columns
    ),
    # 11: the scheduler's heartbeat: when the lease was last taken or renewed (each tick), and by whom; kept after
    # the lease is released, so health and metrics can say when a scheduler last ticked
    """
    CREATE TABLE IF NOT EXISTS scheduler_heartbeat (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        ticked_at REAL NOT NULL
    );
    """,
    # 12: how far a running instance's notebook has got (a `CellProgress` as JSON), written a few times a second
    # while it runs and kept as it ended
    """
    ALTER TABLE task_runs ADD COLUMN progress TEXT;
    """,
]


class NewerSchema(Exception):
    """The database was written by a newer nbflow."""

    def __init__(self, version: int):
        super().__init__(version)
        self.version = version


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date, inside the caller's transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise NewerSchema(version)
    for number in range(version, len(MIGRATIONS)):
        # executescript() would commit on its own; run each statement inside this transaction instead.
        for statement in _statements(MIGRATIONS[number]):
            db.execute(statement)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(len(MIGRATIONS)),))


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def up_to_date(db: sqlite3.Connection) -> bool:
    """The schema needs no migration (NewerSchema when it is newer than this nbflow knows)."""
    tables = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if tables else None
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise NewerSchema(version)
    return version == len(MIGRATIONS)
