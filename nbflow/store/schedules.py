"""The schedules' queries: the `schedules` table, the slot each one fired last, the scheduler lease and its
heartbeat (the last tick, kept after the lease is released).

Rows come back as dataclasses with their times as aware datetimes; the schedule layer (`nbflow.schedule`) adds
what a schedule means (its slots, its JSON shape) on top. Times are stored as UTC ISO text to the microsecond, and
the compare-and-set of `claim_slot` compares that text, so every write goes through `_utc`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nbflow import processes
from nbflow.store.db import Store

HOST = socket.gethostname()

_COLUMNS = (
    "name",
    "cron",
    "every_s",
    "tz",
    "targets",
    "params",
    "paused",
    "created_at",
    "not_before",
    "last_fired",
    "on_failure_command",
    "on_failure_webhook",
    "grid",
    "notify_on",
    "deadline",
    "notify_email",
)


@dataclass
class ScheduleRecord:
    """A schedule as the store keeps it."""

    name: str
    cron: str | None
    every_s: float | None
    tz: str
    targets: list[str]
    params: dict[str, Any]
    paused: bool
    created_at: datetime
    not_before: datetime  # no slot at or before this fires: the creation time, or the last resume
    last_fired: datetime | None
    on_failure_command: str | None = None
    on_failure_webhook: str | None = None
    grid: dict[str, str] = field(default_factory=dict)  # the run grid of each firing: name -> values as text
    # the events that notify this schedule's channels (None: failures, when it has a channel of its own)
    notify_on: list[str] | None = None
    deadline: str | None = None  # "HH:MM" in the schedule's zone: noticed when no run of the day succeeded by then
    notify_email: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LeaseRecord:
    """Who may fire a project's schedules, until when (a UNIX time)."""

    owner: str
    host: str
    pid: int
    pid_started: float | None  # None in leases written before nbflow kept it
    expires_at: float

    def holds(self, now_ts: float) -> bool:
        """Still in force: not expired and, when taken on this host, its process still the one that took it."""
        return self.expires_at > now_ts and (self.host != HOST or processes.alive(self.pid, self.pid_started))


# -- schedules ---------------------------------------------------------------------------------------------------


def read_schedules(store: Store) -> list[ScheduleRecord]:
    """Every schedule, by name."""
    rows = store.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM schedules ORDER BY name").fetchall()
    return [_schedule(row) for row in rows]


def read_schedule(store: Store, name: str) -> ScheduleRecord | None:
    row = store.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM schedules WHERE name = ?", (name,)).fetchone()
    return _schedule(row) if row is not None else None


def schedule_names(store: Store) -> list[str]:
    return [row["name"] for row in store.db.execute("SELECT name FROM schedules ORDER BY name")]


def insert_schedule(store: Store, record: ScheduleRecord, replace: bool = False) -> bool:
    """Add `record` (replacing a schedule of its name, with `replace`); False when the name is taken and not."""
    values = {
        **vars(record),
        "targets": json.dumps(record.targets),
        "params": json.dumps(record.params, sort_keys=True),
        "paused": int(record.paused),
        "created_at": _utc(record.created_at),
        "not_before": _utc(record.not_before),
        "last_fired": _utc(record.last_fired),
        "on_failure_command": record.on_failure_command or None,
        "on_failure_webhook": record.on_failure_webhook or None,
        "grid": json.dumps(record.grid, sort_keys=True),
        "notify_on": json.dumps(record.notify_on) if record.notify_on is not None else None,
        "deadline": record.deadline or None,
        "notify_email": json.dumps(record.notify_email),
    }
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM schedules WHERE name = ?", (record.name,)).fetchone():
            if not replace:
                return False
            db.execute("DELETE FROM schedules WHERE name = ?", (record.name,))
        db.execute(
            f"INSERT INTO schedules ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [values[column] for column in _COLUMNS],
        )
    return True


def delete_schedule(store: Store, name: str) -> bool:
    """False when there was no schedule of that name."""
    with store.transaction() as db:
        return db.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 1


def pause_schedule(store: Store, name: str) -> None:
    with store.transaction() as db:
        db.execute("UPDATE schedules SET paused = 1 WHERE name = ?", (name,))


def resume_schedule(store: Store, name: str, not_before: datetime) -> None:
    """Fire again, from the first slot after `not_before` (the slots missed while paused are not caught up)."""
    with store.transaction() as db:
        db.execute(
            "UPDATE schedules SET paused = 0, not_before = ? WHERE name = ? AND paused = 1", (_utc(not_before), name)
        )


class SlotTaken(Exception):
    """The slot was not claimed: it was fired already (by another scheduler, or before a restart), the schedule
    changed since it was read, or the lease was lost. Raised inside the transaction recording the slot's run, so
    that run leaves no trace."""


def claim_slot(store: Store, schedule: ScheduleRecord, slot: datetime, owner: str, now_ts: float) -> bool:
    """Record `slot` as fired, if the schedule still stands where it was read (same creation, same last slot, not
    paused) and `owner` holds the scheduler lease. Called inside the transaction that records the slot's run
    (`Store.create_run(within=...)`): the claim and the run row are committed together or not at all, so a
    scheduler killed at any moment leaves no claimed slot without its run, and two schedulers (or a restarted one)
    never fire a slot twice."""
    if not store.db.in_transaction:
        raise RuntimeError("claim_slot belongs in the transaction that records the slot's run")
    return _set_last_fired(store.db, schedule, slot, owner, now_ts, "AND paused = 0")


def reset_last_fired(store: Store, schedule: ScheduleRecord, moment: datetime, owner: str, now_ts: float) -> bool:
    """Count the schedule's slots from `moment` (its last fired slot lies ahead of the clock), if it still stands
    where it was read and `owner` holds the lease."""
    with store.transaction() as db:
        return _set_last_fired(db, schedule, moment, owner, now_ts)


def _set_last_fired(
    db: sqlite3.Connection, schedule: ScheduleRecord, moment: datetime, owner: str, now_ts: float, also: str = ""
) -> bool:
    cursor = db.execute(
        f"UPDATE schedules SET last_fired = ? WHERE name = ? {also} AND created_at = ? AND last_fired IS ? "
        "AND EXISTS (SELECT 1 FROM scheduler_lease WHERE id = 1 AND owner = ? AND expires_at > ?)",
        (_utc(moment), schedule.name, _utc(schedule.created_at), _utc(schedule.last_fired), owner, now_ts),
    )
    return cursor.rowcount == 1


# -- the scheduler lease ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heartbeat:
    """The scheduler that last took or renewed the lease (it does at each tick), and when (a UNIX time)."""

    owner: str
    host: str
    pid: int
    ticked_at: float


def lease_holder(store: Store, now_ts: float) -> LeaseRecord | None:
    """The lease in force at `now_ts`, or None when no live scheduler holds it."""
    lease = _read_lease(store.db)
    return lease if lease is not None and lease.holds(now_ts) else None


def acquire_lease(store: Store, owner: str, seconds: float, now_ts: float) -> LeaseRecord:
    """Take the lease for this process as `owner` (or renew it) for `seconds`, unless another live scheduler holds
    it. Returns the lease in force afterwards: `owner`'s when it was taken, else the other holder's."""
    with store.transaction() as db:
        current = _read_lease(db)
        if current is not None and current.owner != owner and current.holds(now_ts):
            return current
        taken = LeaseRecord(owner, HOST, os.getpid(), processes.start_time(), now_ts + seconds)
        db.execute(
            "INSERT OR REPLACE INTO scheduler_lease (id, owner, host, pid, pid_started, expires_at) "
            "VALUES (1, ?, ?, ?, ?, ?)",
            (taken.owner, taken.host, taken.pid, taken.pid_started, taken.expires_at),
        )
        db.execute(
            "INSERT OR REPLACE INTO scheduler_heartbeat (id, owner, host, pid, ticked_at) VALUES (1, ?, ?, ?, ?)",
            (taken.owner, taken.host, taken.pid, now_ts),
        )
        return taken


def release_lease(store: Store, owner: str) -> None:
    """Give the lease up (a standby scheduler takes it at its next look), if `owner` holds it."""
    with store.transaction() as db:
        db.execute("DELETE FROM scheduler_lease WHERE id = 1 AND owner = ?", (owner,))


def read_heartbeat(store: Store) -> Heartbeat | None:
    """The last tick of a scheduler that held the lease; None when no scheduler ever ran for the project."""
    row = store.db.execute("SELECT owner, host, pid, ticked_at FROM scheduler_heartbeat WHERE id = 1").fetchone()
    return Heartbeat(row["owner"], row["host"], row["pid"], row["ticked_at"]) if row is not None else None


# -- rows ---------------------------------------------------------------------------------------------------------


def _read_lease(db: sqlite3.Connection) -> LeaseRecord | None:
    row = db.execute("SELECT owner, host, pid, pid_started, expires_at FROM scheduler_lease WHERE id = 1").fetchone()
    if row is None:
        return None
    return LeaseRecord(row["owner"], row["host"], row["pid"], row["pid_started"], row["expires_at"])


def _schedule(row: sqlite3.Row) -> ScheduleRecord:
    return ScheduleRecord(
        name=row["name"],
        cron=row["cron"],
        every_s=row["every_s"],
        tz=row["tz"],
        targets=json.loads(row["targets"]),
        params=json.loads(row["params"]),
        paused=bool(row["paused"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        not_before=datetime.fromisoformat(row["not_before"]),
        last_fired=datetime.fromisoformat(row["last_fired"]) if row["last_fired"] else None,
        on_failure_command=row["on_failure_command"],
        on_failure_webhook=row["on_failure_webhook"],
        grid=json.loads(row["grid"] or "{}"),
        notify_on=json.loads(row["notify_on"]) if row["notify_on"] is not None else None,
        deadline=row["deadline"],
        notify_email=json.loads(row["notify_email"] or "[]"),
    )


def _utc(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds") if moment else None
