"""Notifications' queries: every delivery of a notice on a channel with its outcome (the `notifications` table,
which metrics read), the deadlines already noticed (one per schedule and day), and a schedule's runs of a day.

A delivery row is written `pending` when it is queued and updated after each attempt, so a process that dies
mid-retry leaves a row saying how far it got.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from nbflow.models import RunRecord
from nbflow.store.db import Store
from nbflow.times import iso, now


class DeliveryState(str, Enum):
    PENDING = "pending"  # queued, or between attempts
    SENT = "sent"
    FAILED = "failed"  # every attempt failed, or one failed that trying again cannot mend

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Delivery:
    """One notice on one channel: `channel` is email, webhook or command; `target` the recipients, URL or
    command."""

    id: int
    run_id: str | None
    schedule: str | None
    event: str
    channel: str
    target: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str


def add_delivery(store: Store, run_id: str | None, schedule: str | None, event: str, channel: str, target: str) -> int:
    """A pending delivery; its id."""
    stamp = iso(now())
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT INTO notifications (run_id, schedule, event, channel, target, state, attempts, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (run_id, schedule, event, channel, target, str(DeliveryState.PENDING), stamp, stamp),
        )
        return int(cursor.lastrowid or 0)


def update_delivery(store: Store, delivery_id: int, state: DeliveryState, attempts: int, error: str | None) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE notifications SET state = ?, attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
            (str(state), attempts, error, iso(now()), delivery_id),
        )


def deliveries(store: Store, run_id: str | None = None, schedule: str | None = None) -> list[Delivery]:
    """Deliveries, oldest first: of one run, or of one schedule, where given."""
    where: list[str] = []
    args: list[str] = []
    if run_id is not None:
        where, args = [*where, "run_id = ?"], [*args, run_id]
    if schedule is not None:
        where, args = [*where, "schedule = ?"], [*args, schedule]
    sql = "SELECT * FROM notifications" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
    return [_delivery(row) for row in store.db.execute(sql, args)]


def claim_deadline(store: Store, schedule: str, day: str) -> bool:
    """Record that `schedule`'s deadline of `day` (its zone's date, ISO) was noticed; False when it already was."""
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT OR IGNORE INTO deadline_notices (schedule, day, noticed_at) VALUES (?, ?, ?)",
            (schedule, day, iso(now())),
        )
        return cursor.rowcount == 1


def runs_since(store: Store, trigger: str, since: datetime) -> list[RunRecord]:
    """The runs of `trigger` started at or after `since`, oldest first. Run ids begin with their UTC start time
    (`20261124T160000123-ab12`), which sorts and compares as text (as the stored UTC times do)."""
    first_id = since.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    rows = store.db.execute(
        "SELECT id FROM runs WHERE trigger = ? AND id >= ? ORDER BY id", (trigger, first_id)
    ).fetchall()
    return [run for row in rows if (run := store.run(row["id"])) is not None]


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        run_id=row["run_id"],
        schedule=row["schedule"],
        event=row["event"],
        channel=row["channel"],
        target=row["target"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
