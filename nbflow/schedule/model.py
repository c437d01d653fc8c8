"""What a schedule is: its timing as users write it, the slots it fires at, and its values at fire time.

A schedule fires at slot times: those of a cron expression, read by croniter in the schedule's time zone, or those
of an interval (`every_s`), counted from the schedule's creation time. The slot due at a moment is the latest slot at
or before it, provided it is later than both the last slot fired and `not_before` (the creation time, or the last
resume); so after downtime a schedule fires once, for its most recent slot, and no slot fires twice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal
from croniter import CroniterError, croniter

from nbflow.errors import UsageError
from nbflow.grids import parse_grid_values
from nbflow.params import fill
from nbflow.store.schedules import ScheduleRecord

PLACEHOLDERS = ("date", "datetime")  # what a schedule's parameter values may use: the fire time
MIN_EVERY = 1.0  # seconds: a shorter interval would only fill the history with skipped runs
MAX_EVERY = 3650 * 86400.0  # seconds: ten years; beyond, slot times leave what dates can hold
CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DEADLINE = re.compile(r"(\d{1,2}):(\d{2})")


# -- timing, as users give it ------------------------------------------------------------------------------------


def parse_every(text: str) -> float:
    """`30s`, `10m`, `2h`, `1d` (or a sum such as `1h30m`) -> seconds."""
    compact = str(text).replace(" ", "").lower()
    parts = _EVERY_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise UsageError(f"interval {text!r}: give a number and a unit: 30s, 10m, 2h, 1d (or a sum such as 1h30m).")
    return check_every(sum(float(number) * _UNITS[unit] for number, unit in parts), text)


def check_every(seconds: float, given: Any = None) -> float:
    shown = given if given is not None else seconds
    if not math.isfinite(seconds) or seconds > MAX_EVERY:
        raise UsageError(f"interval {shown!r}: it must be at most {MAX_EVERY // 86400:.0f}d (ten years).")
    if seconds < MIN_EVERY:
        raise UsageError(f"interval {shown!r}: it must be at least 1s.")
    return seconds


def format_every(seconds: float) -> str:
    """Seconds -> the shortest `1d2h30m` form (the inverse of `parse_every`)."""
    if not math.isfinite(seconds) or seconds > MAX_EVERY:  # a row stored before the bound: shown as it is
        return f"{seconds:g}s"
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
    """A cron expression with its spaces normalised; UsageError with croniter's reason when it refuses it."""
    expression = " ".join(str(expression).split())
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError) as exc:
        raise UsageError(
            f"cron expression {expression!r}: not valid ({_cron_reason(expression, exc)}); give five fields, "
            "minute hour day-of-month month day-of-week, e.g. '0 17 * * *' (17:00 every day) or '*/15 * * * 1-5'."
        ) from None
    return expression


def _cron_reason(expression: str, exc: Exception) -> str:
    """croniter's reason, and which field it is about: croniter judges each field alone, the others `*`."""
    reason = f"croniter: {exc}"
    fields = expression.split()
    if len(fields) == len(CRON_FIELDS):
        for index, name in enumerate(CRON_FIELDS):
            alone = ["*"] * len(fields)
            alone[index] = fields[index]
            if not croniter.is_valid(" ".join(alone)):
                return f"{reason}, in the {name} field {fields[index]!r}"
    return reason


def check_deadline(text: str) -> str:
    """`17:30` (24-hour, in the schedule's zone) -> `17:30`; UsageError otherwise."""
    match = _DEADLINE.fullmatch(str(text).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise UsageError(
            f"deadline {text!r}: give a time of day as HH:MM (24-hour, in the schedule's zone), e.g. 17:30."
        )
    return f"{int(match[1]):02d}:{match[2]}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"time zone {name!r}: unknown; give an IANA name such as Europe/Paris, America/New_York or UTC."
        ) from exc


def local_zone_name() -> str:
    """The machine's time zone as an IANA name (tzlocal reads $TZ and the system's settings), else UTC."""
    try:
        name = tzlocal.get_localzone_name()
        if name:
            ZoneInfo(name)
            return name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass  # a configuration tzlocal cannot read, or a zone this machine's database lacks
    return "UTC"


def current_time() -> datetime:
    return datetime.now(timezone.utc)


# -- values at fire time -------------------------------------------------------------------------------------------


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


# -- the model -------------------------------------------------------------------------------------------------------


@dataclass
class Schedule(ScheduleRecord):
    """A stored schedule with its meaning: its zone, its slots, its run's trigger and values, its JSON shape."""

    @classmethod
    def of(cls, record: ScheduleRecord) -> Schedule:
        return cls(**vars(record))

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
        local = moment.astimezone(self.zone)
        previous: datetime = croniter(self.cron, local).get_prev(datetime)
        following: datetime = croniter(self.cron, previous).get_next(datetime)
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
        following: datetime = croniter(self.cron, moment.astimezone(self.zone)).get_next(datetime)
        return following

    def _interval_slot(self, k: int) -> datetime:
        assert self.every_s is not None
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

    def grid_for(self, slot: datetime) -> dict[str, list[Any]]:
        """The run grid at this slot: each name's values text, `{date}` and `{datetime}` filled, then read as
        `nbflow run -g` reads it."""
        local = slot.astimezone(self.zone)
        return {name: parse_grid_values(name, fill_value(text, local)) for name, text in self.grid.items()}

    @property
    def has_channels(self) -> bool:
        """The schedule names where to notify itself (else its events go to the project's `[notify]` channels)."""
        return bool(self.notify_email or self.on_failure_command or self.on_failure_webhook)

    @property
    def events(self) -> list[str]:
        """The events of this schedule that notify: `notify_on` as given (failures when unset and the schedule has
        a command, webhook or address of its own), and `deadline` whenever a deadline is set."""
        chosen = self.notify_on if self.notify_on is not None else (["failure"] if self.has_channels else [])
        return [*[e for e in chosen if e != "deadline"], *(["deadline"] if self.deadline else [])]

    def deadline_passed(self, now: datetime) -> tuple[date, datetime] | None:
        """Today's deadline in the schedule's zone (its day and moment) when it has passed at `now` and the day had a
        slot before it (a weekday schedule has no deadline on Sundays); None otherwise, or when paused."""
        if not self.deadline or self.paused:
            return None
        local = now.astimezone(self.zone)
        hours, minutes = (int(part) for part in self.deadline.split(":"))
        moment = datetime(local.year, local.month, local.day, hours, minutes, tzinfo=self.zone)
        if local < moment:
            return None
        slot = self.latest_slot(moment)
        if slot is None or slot.astimezone(self.zone).date() != local.date() or slot <= self.not_before:
            return None
        return local.date(), moment

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The shape of `nbflow schedule list --json`, times in the schedule's zone."""
        try:
            tz: Any = self.zone
            fire = self.next_fire(now or current_time())
        except (UsageError, ValueError, KeyError, OverflowError):  # an unknown zone, timing past what dates hold
            tz, fire = timezone.utc, None
        return {
            "name": self.name,
            "cron": self.cron,
            "every": self.every,
            "tz": self.tz,
            "targets": list(self.targets),
            "params": dict(self.params),
            "grid": dict(self.grid),
            "paused": self.paused,
            "next_fire": _local_iso(fire, tz),
            "last_fired": _local_iso(self.last_fired, tz),
            "created_at": _local_iso(self.created_at, tz),
            "on_failure_command": self.on_failure_command,
            "on_failure_webhook": self.on_failure_webhook,
            "notify_on": self.events,
            "deadline": self.deadline,
            "notify_email": list(self.notify_email),
        }


def _local_iso(moment: datetime | None, tz: Any) -> str | None:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment else None
