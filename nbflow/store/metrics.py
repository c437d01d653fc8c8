"""The aggregates metrics read (`nbflow.metrics`): runs and task runs counted by label, state and duration
bucket, the schedules, the notifications by outcome.

Every query aggregates in SQLite and returns one row per label and state (a label is a run's trigger or a task's
name without its grid values), never one per run, so a scrape stays cheap and its answer small however long the
history grows. Times are compared as `julianday()` of the stored ISO text, which reads any offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nbflow.store.db import Store

# julianday() of 1970-01-01T00:00:00Z: a julian day number to a UNIX time is (day - EPOCH) * 86400
_UNIX_EPOCH_JD = 2440587.5


@dataclass(frozen=True)
class Group:
    """The runs (or task runs) of `label` in `state` whose duration falls in bucket `bucket`: `bounds[bucket]` is
    the least bound at or over it (`len(bounds)`: over them all), None for those not timed (not in the timed
    states, or never started). `total`: their seconds; `latest`: the UNIX time the latest of them finished (or
    started, while none has finished; None when none has started)."""

    label: str
    state: str
    bucket: int | None
    count: int
    total: float
    latest: float | None


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    paused: bool


@dataclass(frozen=True)
class DeliveryTally:
    channel: str
    event: str
    state: str
    count: int


_TASK_LABEL = "COALESCE(base, task)"  # the task, not its grid instance: one label per notebook
_SOURCES = {"runs": ("runs", "trigger"), "tasks": ("task_runs", _TASK_LABEL)}


def groups(store: Store, of: str, timed: Sequence[str], bounds: Sequence[float]) -> list[Group]:
    """Runs (`of="runs"`, labelled by trigger) or task runs (`of="tasks"`, labelled by task) by label, state and
    duration bucket, in one pass over the table. Only the finished ones in `timed` are timed; a duration below
    zero (the clock was set back meanwhile) counts as zero."""
    table, label = _SOURCES[of]
    # one CASE picks a row's bucket: cheaper than comparing each row with every bound
    bucket = "CASE " + " ".join(f"WHEN d <= ? THEN {i}" for i in range(len(bounds))) + f" ELSE {len(bounds)} END"
    rows = store.db.execute(
        f"SELECT label, state, CASE WHEN d IS NULL THEN NULL ELSE {bucket} END AS bucket, COUNT(*) AS n, "
        f"SUM(d) AS total, (MAX(latest) - {_UNIX_EPOCH_JD}) * 86400.0 AS latest FROM ("
        f"SELECT {label} AS label, state, julianday(COALESCE(finished_at, started_at)) AS latest, "
        f"CASE WHEN state IN ({', '.join('?' * len(timed))}) "
        "THEN MAX(0.0, (julianday(finished_at) - julianday(started_at)) * 86400.0) END AS d "
        f"FROM {table}) GROUP BY label, state, bucket",
        [*bounds, *timed],
    ).fetchall()
    return [Group(r["label"], r["state"], r["bucket"], r["n"], r["total"] or 0.0, r["latest"]) for r in rows]


def schedule_rows(store: Store) -> list[ScheduleRow]:
    rows = store.db.execute("SELECT name, paused FROM schedules ORDER BY name").fetchall()
    return [ScheduleRow(row["name"], bool(row["paused"])) for row in rows]


def delivery_tallies(store: Store) -> list[DeliveryTally]:
    """Notification deliveries by channel, event and state (pending, sent, failed)."""
    rows = store.db.execute(
        "SELECT channel, event, state, COUNT(*) AS n FROM notifications GROUP BY channel, event, state"
    ).fetchall()
    return [DeliveryTally(row["channel"], row["event"], row["state"], row["n"]) for row in rows]
