"""Schedules (SPEC section 8): the model, when each one fires, and the queries on the project's store.

A schedule is a row of the store's `schedules` table: a cron expression (read by croniter in the schedule's time
zone) or an interval (`every_s`, its slots aligned to the schedule's creation time), the targets and parameters of
its runs, whether it is paused, the last slot fired, and what to do when one of its runs fails. The loop that fires
schedules lives in `nbflow.scheduler`; the interfaces (CLI, server, panels) call the functions below, which take a
project (a path inside it, or a `Project`) and return the JSON shape of `nbflow schedule list --json`.

Slots: a schedule fires at slot times. The slot due at a moment is the latest slot at or before it, provided it is
later than both the last slot fired and `not_before` (the creation time, or the last resume), so after downtime a
schedule fires once, for its most recent slot, and a slot is never fired twice.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbflow.errors import PipelineError, UsageError
from nbflow.params import PlaceholderError, fill, placeholders
from nbflow.project import Project, load_project
from nbflow.store import Store

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PLACEHOLDERS = ("date", "datetime")
MIN_EVERY = 1.0  # seconds: a shorter interval would only fill the history with skipped runs
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_COLUMNS = (
    "name, cron, every_s, tz, targets, params, paused, created_at, not_before, last_fired, "
    "on_failure_command, on_failure_webhook"
)


class ScheduleNotFound(UsageError):
    """No schedule of that name in the project."""


# -- reading what users give -----------------------------------------------------------------------------------------


def parse_every(text: str) -> float:
    """`30s`, `10m`, `2h`, `1d` (or a sum such as `1h30m`) -> seconds."""
    compact = str(text).replace(" ", "").lower()
    parts = _EVERY_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise UsageError(f"--every {text!r}: give a number and a unit: 30s, 10m, 2h, 1d (or a sum such as 1h30m).")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds < MIN_EVERY:
        raise UsageError(f"--every {text!r}: the interval must be at least 1s.")
    return seconds


def format_every(seconds: float) -> str:
    """Seconds -> the shortest `1d2h30m` form (the inverse of `parse_every`)."""
    parts = []
    rest = seconds
    for unit in ("d", "h", "m"):
        count, rest = divmod(rest, _UNITS[unit])
        if count:
            parts.append(f"{int(count)}{unit}")
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def check_cron(expression: str) -> str:
    from croniter import croniter

    expression = " ".join(str(expression).split())
    if not expression or not croniter.is_valid(expression):
        raise UsageError(
            f"--cron {expression!r}: not a cron expression; five fields, minute hour day-of-month "
            "month day-of-week, e.g. '0 17 * * *' (17:00 every day) or '*/15 * * * 1-5'."
        )
    return expression


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"--tz {name!r}: unknown time zone; give an IANA name such as Europe/Paris, America/New_York or UTC."
        ) from exc


def local_zone_name() -> str:
    """The machine's time zone as an IANA name: $TZ, else /etc/localtime's target, else /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as fh:
            candidates.append(fh.read().strip())
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameter values, where text may hold `{date}` / `{datetime}`; any other placeholder is a mistake."""
    checked = {}
    for name, value in (params or {}).items():
        if isinstance(value, str) and ("{" in value or "}" in value):
            try:
                unknown = [p for p in placeholders(value) if p not in PLACEHOLDERS]
                if unknown:
                    raise PlaceholderError(f"{{{unknown[0]}}} is not known here")
                fill_value(value, datetime.now(timezone.utc))
            except (PlaceholderError, ValueError) as exc:
                raise UsageError(
                    f"-p {name} {value!r}: a schedule's values may use {{date}} and {{datetime}} (the "
                    f"fire time) and no other placeholder ({exc}); write a literal brace as {{{{ or }}}}."
                ) from exc
        checked[str(name)] = value
    return checked


class _Moment(datetime):
    """A fire time that formats as ISO 8601 to the second, unless a format is given (`{datetime:%H%M}`)."""

    def __format__(self, spec: str) -> str:
        return self.isoformat(timespec="seconds") if not spec else super().__format__(spec)

    def __str__(self) -> str:
        return self.isoformat(timespec="seconds")


def fill_value(template: str, slot: datetime) -> str:
    """One value at fire time: `{date}` -> `2026-11-24`, `{datetime}` -> `2026-11-24T17:00:00+01:00`, in the slot's
    own time zone (a format may follow: `{date:%Y%m}`). The result stays text: `{date:%m}` gives "08", not 8."""
    moment = _Moment.combine(slot.date(), slot.timetz())
    return fill(template, {"date": date(slot.year, slot.month, slot.day), "datetime": moment})


# -- the model -----------------------------------------------------------------------------------------------------


@dataclass
class Schedule:
    name: str
    cron: str | None
    every_s: float | None
    tz: str
    targets: list[str]
    params: dict[str, Any]
    paused: bool
    created_at: datetime
    not_before: datetime
    last_fired: datetime | None
    on_failure_command: str | None = None
    on_failure_webhook: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)

    @property
    def trigger(self) -> str:
        return f"schedule:{self.name}"

    @property
    def every(self) -> str | None:
        return format_every(self.every_s) if self.every_s else None

    def latest_slot(self, moment: datetime) -> datetime | None:
        """The latest slot at or before `moment` (in the schedule's zone), or None before the first one."""
        if self.every_s:
            k = math.floor((moment - self.created_at).total_seconds() / self.every_s)
            while k >= 1 and self._interval_slot(k) > moment:
                k -= 1
            while self._interval_slot(k + 1) <= moment:
                k += 1
            return self._interval_slot(k) if k >= 1 else None
        from croniter import croniter

        local = moment.astimezone(self.zone)
        previous = croniter(self.cron, local).get_prev(datetime)
        following = croniter(self.cron, previous).get_next(datetime)
        return following if following <= local else previous  # get_prev is strictly before a moment on a slot

    def slot_after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        if self.every_s:
            k = max(1, math.floor((moment - self.created_at).total_seconds() / self.every_s))
            while self._interval_slot(k) <= moment:
                k += 1
            while k > 1 and self._interval_slot(k - 1) > moment:
                k -= 1
            return self._interval_slot(k)
        from croniter import croniter

        return croniter(self.cron, moment.astimezone(self.zone)).get_next(datetime)

    def _interval_slot(self, k: int) -> datetime:
        return (self.created_at + timedelta(seconds=k * self.every_s)).astimezone(self.zone)

    def due_slot(self, now: datetime) -> datetime | None:
        """The slot to fire at `now`: the most recent one not fired yet (one catch-up after downtime), or None."""
        if self.paused:
            return None
        latest = self.latest_slot(now)
        if latest is None or latest <= self.not_before or (self.last_fired and latest <= self.last_fired):
            return None
        return latest

    def next_fire(self, now: datetime) -> datetime | None:
        """When the scheduler fires this schedule next: a slot due now (overdue), else the next one; None if
        paused."""
        if self.paused:
            return None
        return self.due_slot(now) or self.slot_after(max(now, self.not_before))

    def params_for(self, slot: datetime) -> dict[str, Any]:
        """The run's parameter values at this slot, `{date}` and `{datetime}` filled in the schedule's zone."""
        local = slot.astimezone(self.zone)
        return {
            name: fill_value(value, local) if isinstance(value, str) and "{" in value else value
            for name, value in self.params.items()
        }

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The shape of `nbflow schedule list --json` (SPEC section 4), times in the schedule's zone."""
        try:
            tz: Any = self.zone
            fire = self.next_fire(now or current_time())
        except (UsageError, ValueError, KeyError):  # a zone this machine no longer knows: shown, never fired
            tz, fire = timezone.utc, None
        return {
            "name": self.name,
            "cron": self.cron,
            "every": self.every,
            "tz": self.tz,
            "targets": list(self.targets),
            "params": dict(self.params),
            "paused": self.paused,
            "next_fire": _local_iso(fire, tz),
            "last_fired": _local_iso(self.last_fired, tz),
            "created_at": _local_iso(self.created_at, tz),
            "on_failure_command": self.on_failure_command,
            "on_failure_webhook": self.on_failure_webhook,
        }


def current_time() -> datetime:
    return datetime.now(timezone.utc)


def _local_iso(moment: datetime | None, tz: Any) -> str | None:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _from_row(row: tuple) -> Schedule:
    import json

    def when(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    return Schedule(
        name=row[0],
        cron=row[1],
        every_s=row[2],
        tz=row[3],
        targets=json.loads(row[4]),
        params=json.loads(row[5]),
        paused=bool(row[6]),
        created_at=when(row[7]),
        not_before=when(row[8]),
        last_fired=when(row[9]),
        on_failure_command=row[10],
        on_failure_webhook=row[11],
    )


# -- store queries -------------------------------------------------------------------------------------------------


def read_schedules(store: Store) -> list[Schedule]:
    return [_from_row(r) for r in store.db.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY name").fetchall()]


def read_schedule(store: Store, name: str) -> Schedule:
    row = store.db.execute(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [s.name for s in read_schedules(store)]
        from nbflow.graph import did_you_mean

        raise ScheduleNotFound(
            f"no schedule {name!r} in this project{did_you_mean(name, known)}; `nbflow schedule list` shows them."
        )
    return _from_row(row)


def claim_slot(store: Store, schedule: Schedule, slot: datetime, owner: str, now_ts: float) -> bool:
    """Record `slot` as fired, if the schedule still stands where it was read and `owner` holds the scheduler
    lease: one transaction decides, so two schedulers (or a restarted one) never fire a slot twice."""
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE schedules SET last_fired = ? WHERE name = ? AND paused = 0 AND created_at = ? "
            "AND last_fired IS ? AND EXISTS (SELECT 1 FROM scheduler_lease WHERE id = 1 AND owner = ? "
            "AND expires_at > ?)",
            (
                _utc(slot),
                schedule.name,
                _utc(schedule.created_at),
                _utc(schedule.last_fired) if schedule.last_fired else None,
                owner,
                now_ts,
            ),
        )
        return cursor.rowcount == 1


# -- in-process change notices (the scheduler a server hosts wakes when a schedule changes) ---------------------------

_listeners: dict[Path, set[Callable[[], None]]] = {}
_listeners_lock = threading.Lock()


def subscribe(root: Path, callback: Callable[[], None]) -> None:
    with _listeners_lock:
        _listeners.setdefault(Path(root), set()).add(callback)


def unsubscribe(root: Path, callback: Callable[[], None]) -> None:
    with _listeners_lock:
        _listeners.get(Path(root), set()).discard(callback)


def _changed(root: Path) -> None:
    with _listeners_lock:
        callbacks = list(_listeners.get(Path(root), ()))
    for callback in callbacks:
        callback()


# -- the API the interfaces call -----------------------------------------------------------------------------------


def _open(project: Project | str | Path | None) -> tuple[Project, Store]:
    resolved = project if isinstance(project, Project) else load_project(project)
    return resolved, Store(resolved.store_dir)


def check_against_pipeline(project: Project, targets: Iterable[str], params: Mapping[str, Any]) -> None:
    """Refuse targets and parameters the pipeline would refuse (typos), as `nbflow run` would, with the values of
    a firing now; an input missing today is not refused (it may be there by the time the schedule fires)."""
    from nbflow.graph import load
    from nbflow.run.prepare import prepare

    pipeline = load(project.root)
    sample = Schedule(
        "check", None, 60.0, "UTC", list(targets), dict(params), False, current_time(), current_time(), None
    ).params_for(current_time())
    try:
        prepare(pipeline, list(targets) or None, sample)
    except PipelineError as exc:
        if any(p.kind != "missing-source" for p in exc.problems):
            raise


def add_schedule(
    project: Project | str | Path | None,
    name: str,
    *,
    cron: str | None = None,
    every: str | float | None = None,
    tz: str | None = None,
    targets: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    on_failure_command: str | None = None,
    on_failure_webhook: str | None = None,
    paused: bool = False,
    replace: bool = False,
    check: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add a schedule and return its JSON shape. `every` is `"10m"`-style text or seconds; string parameter values
    may use `{date}` / `{datetime}`. With `check`, targets and parameters are checked against the pipeline."""
    resolved, store = _open(project)
    try:
        if not NAME_PATTERN.fullmatch(name or ""):
            raise UsageError(
                f"schedule name {name!r}: use letters, digits, '_', '-' and '.' (at most 64), starting "
                "with a letter or digit."
            )
        if (cron is None) == (every is None):
            raise UsageError("give a schedule either --cron EXPRESSION or --every INTERVAL (one of them).")
        every_s = None
        if every is not None:
            every_s = float(every) if isinstance(every, (int, float)) else parse_every(every)
            if every_s < MIN_EVERY:
                raise UsageError(f"--every {every!r}: the interval must be at least 1s.")
        cron = check_cron(cron) if cron is not None else None
        tz = tz or local_zone_name()
        zone(tz)
        targets = list(targets or [])
        checked = check_params(params)
        if on_failure_webhook and not re.match(r"https?://", on_failure_webhook):
            raise UsageError(f"--on-failure-webhook {on_failure_webhook!r}: give an http:// or https:// URL.")
        if check:
            check_against_pipeline(resolved, targets, checked)
        created = (now or current_time()).replace(microsecond=0)
        import json

        with store.transaction() as db:
            exists = db.execute("SELECT 1 FROM schedules WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise UsageError(
                    f"a schedule named {name!r} exists already; remove it first, or add again with --replace."
                )
            db.execute("DELETE FROM schedules WHERE name = ?", (name,))
            db.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    cron,
                    every_s,
                    tz,
                    json.dumps(targets),
                    json.dumps(checked, sort_keys=True),
                    int(bool(paused)),
                    _utc(created),
                    _utc(created),
                    None,
                    on_failure_command or None,
                    on_failure_webhook or None,
                ),
            )
        result = read_schedule(store, name).to_json(now)
    finally:
        store.close()
    _changed(resolved.root)
    return result


def list_schedules(project: Project | str | Path | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every schedule of the project, by name, in the shape of `nbflow schedule list --json` (with next fire)."""
    _, store = _open(project)
    try:
        return [s.to_json(now) for s in read_schedules(store)]
    finally:
        store.close()


def get_schedule(project: Project | str | Path | None, name: str, now: datetime | None = None) -> dict[str, Any]:
    _, store = _open(project)
    try:
        return read_schedule(store, name).to_json(now)
    finally:
        store.close()


def pause_schedule(project: Project | str | Path | None, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Stop firing a schedule until it is resumed (a run in flight goes on)."""
    return _set_paused(project, name, True, now)


def resume_schedule(project: Project | str | Path | None, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Fire a paused schedule again from its next slot on; the slots missed while paused are not caught up."""
    return _set_paused(project, name, False, now)


def _set_paused(project: Project | str | Path | None, name: str, paused: bool, now: datetime | None) -> dict:
    resolved, store = _open(project)
    try:
        schedule = read_schedule(store, name)
        if schedule.paused != paused:
            with store.transaction() as db:
                if paused:
                    db.execute("UPDATE schedules SET paused = 1 WHERE name = ?", (name,))
                else:
                    db.execute(
                        "UPDATE schedules SET paused = 0, not_before = ? WHERE name = ?",
                        (_utc(now or current_time()), name),
                    )
        result = read_schedule(store, name).to_json(now)
    finally:
        store.close()
    _changed(resolved.root)
    return result


def remove_schedule(project: Project | str | Path | None, name: str) -> None:
    """Delete a schedule (its past runs stay in the history; a run in flight goes on)."""
    resolved, store = _open(project)
    try:
        read_schedule(store, name)
        with store.transaction() as db:
            db.execute("DELETE FROM schedules WHERE name = ?", (name,))
    finally:
        store.close()
    _changed(resolved.root)


def scheduler_status(project: Project | str | Path | None, now: datetime | None = None) -> dict[str, Any] | None:
    """The scheduler process holding the project's lease, if one is running: `{"host", "pid", "expires_at"}`."""
    from nbflow.scheduler import lease_holder

    _, store = _open(project)
    try:
        return lease_holder(store, (now or current_time()).timestamp())
    finally:
        store.close()


__all__ = [
    "Schedule",
    "ScheduleNotFound",
    "add_schedule",
    "list_schedules",
    "get_schedule",
    "pause_schedule",
    "resume_schedule",
    "remove_schedule",
    "scheduler_status",
    "parse_every",
    "format_every",
]
