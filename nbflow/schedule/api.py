"""The schedules' API for the interfaces (CLI, server, panels): add, list, get, pause, resume, remove, and whether a
scheduler is running. Each function takes a project (a path inside it, or a `Project`) and returns the JSON shape
of `nbflow schedule list --json`; what a user gives is checked before anything is stored.

A change made here notifies the schedulers of this process (`subscribe`), so a scheduler hosted by a server fires
a schedule added through it without waiting for its next look at the store.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbflow.errors import PipelineError, UsageError
from nbflow.grids import parse_grid_values
from nbflow.notify_settings import check_addresses
from nbflow.params import PlaceholderError, oversized, placeholders
from nbflow.project import Project, load_project
from nbflow.schedule.model import (
    PLACEHOLDERS,
    Schedule,
    check_cron,
    check_deadline,
    check_every,
    current_time,
    fill_value,
    local_zone_name,
    parse_every,
    zone,
)
from nbflow.store import Store
from nbflow.store import schedules as rows
from nbflow.store.schedules import ScheduleRecord

EVENTS = ("failure", "success", "deadline")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

ProjectLike = Project | str | Path | None


class ScheduleNotFound(UsageError):
    """No schedule of that name in the project."""


# -- reading the store -------------------------------------------------------------------------------------------


def read_schedules(store: Store) -> list[Schedule]:
    return [Schedule.of(record) for record in rows.read_schedules(store)]


def read_schedule(store: Store, name: str) -> Schedule:
    """The schedule named `name`; ScheduleNotFound (with the closest name) when there is none."""
    record = rows.read_schedule(store, name)
    if record is None:
        from nbflow.graph import did_you_mean  # networkx, on this error path only

        raise ScheduleNotFound(
            f"no schedule {name!r} in this project{did_you_mean(name, rows.schedule_names(store))}; "
            "`nbflow schedule list` shows them."
        )
    return Schedule.of(record)


def running_scheduler(store: Store, now: datetime | None = None) -> dict[str, Any] | None:
    """The scheduler holding the store's lease, if one is running: `{"owner", "host", "pid", "expires_at"}`."""
    lease = rows.lease_holder(store, (now or current_time()).timestamp())
    if lease is None:
        return None
    return {
        "owner": lease.owner,
        "host": lease.host,
        "pid": lease.pid,
        "expires_at": datetime.fromtimestamp(lease.expires_at, timezone.utc).astimezone().isoformat(timespec="seconds"),
    }


# -- change notices within this process --------------------------------------------------------------------------

_listeners: dict[Path, set[Callable[[], None]]] = {}
_listeners_lock = threading.Lock()


def subscribe(root: Path, callback: Callable[[], None]) -> None:
    """Call `callback` whenever a schedule of the project at `root` is changed through this module."""
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


# -- checks --------------------------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise UsageError(
            f"schedule name {name!r}: use letters, digits, '_', '-' and '.' (at most 64), starting "
            "with a letter or digit."
        )
    return name


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameter values, where text may hold `{date}` / `{datetime}`; any other placeholder is a mistake."""
    checked = {}
    for name, value in (params or {}).items():
        if isinstance(value, str) and ("{" in value or "}" in value):
            try:
                unknown = [p for p in placeholders(value) if p not in PLACEHOLDERS]
                if unknown:
                    raise PlaceholderError(f"{{{unknown[0]}}} is not known here")
                fill_value(value, current_time())
            except (PlaceholderError, ValueError) as exc:
                raise UsageError(
                    f"parameter `{name}` = {value!r}: a schedule's values may use {{date}} and {{datetime}} (the "
                    f"fire time) and no other placeholder ({exc}); write a literal brace as {{{{ or }}}}."
                ) from exc
        checked[str(name)] = value
    too_big = oversized(checked.items())
    if too_big:
        raise UsageError(too_big[0])
    return checked


def check_events(events: Iterable[str] | None, deadline: str | None) -> list[str] | None:
    """The events a schedule notifies on, each known; `deadline` among them needs a deadline time."""
    if events is None:
        return None
    chosen = list(dict.fromkeys(str(event).strip() for event in events if str(event).strip()))
    for event in chosen:
        if event not in EVENTS:
            raise UsageError(f"notify on {event!r}: give events among {', '.join(EVENTS)} (a comma list).")
    if "deadline" in chosen and not deadline:
        raise UsageError("notify on `deadline` needs the deadline: a time of day such as 17:30 (--deadline).")
    return chosen


def check_grid(grid: Mapping[str, str] | None) -> dict[str, str]:
    """A run grid's values as text per name (`north,south`, `2026-11-01..{date}`), placeholders as for
    parameters; each read now, so a mistake shows when the schedule is added, not when it fires."""
    checked = {str(name): str(text) for name, text in (grid or {}).items()}
    for name, text in checked.items():
        check_params({f"-g {name}": text})
        parse_grid_values(name, fill_value(text, current_time()))
    return checked


def check_against_pipeline(
    project: Project, targets: Iterable[str], params: Mapping[str, Any], grid: Mapping[str, str] | None = None
) -> None:
    """Refuse targets and parameters the pipeline would refuse (typos), as `nbflow run` would, with the values of
    a firing now; an input missing today is not refused (it may be there by the time the schedule fires)."""
    # The pipeline (networkx, the run layer) is read only when a schedule is added, not to list schedules.
    from nbflow.graph import load
    from nbflow.run.prepare import prepare

    now = current_time()
    schedule = Schedule(
        "check", None, 60.0, "UTC", list(targets), dict(params), False, now, now, None, grid=dict(grid or {})
    )
    try:
        prepare(load(project.root), list(targets) or None, schedule.params_for(now), schedule.grid_for(now))
    except PipelineError as exc:
        # an input or a secret's variable missing here may be there where and when the scheduler fires it
        if any(p.kind not in ("missing-source", "missing-secret") for p in exc.problems):
            raise


# -- the API -------------------------------------------------------------------------------------------------------


def _open(project: ProjectLike) -> tuple[Project, Store]:
    resolved = project if isinstance(project, Project) else load_project(project)
    return resolved, Store(resolved.store_dir)


def add_schedule(
    project: ProjectLike,
    name: str,
    *,
    cron: str | None = None,
    every: str | float | None = None,
    tz: str | None = None,
    targets: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    grid: Mapping[str, str] | None = None,
    on_failure_command: str | None = None,
    on_failure_webhook: str | None = None,
    notify_on: Iterable[str] | None = None,
    deadline: str | None = None,
    notify_email: Iterable[str] | None = None,
    paused: bool = False,
    replace: bool = False,
    check: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add a schedule and return its JSON shape. `every` is `"10m"`-style text or seconds; string parameter values
    may use `{date}` / `{datetime}`, and so may `grid` (each firing's run grid: name -> values as `-g` text). With
    `check`, targets, parameters and grid are checked against the pipeline.

    Notifications: `notify_on` the events (`failure`, `success`, `deadline`) that notify this schedule's command,
    webhook and `notify_email` addresses (or the project's `[notify]` channels, when it names none); `deadline`
    ("17:30", in `tz`) notifies when no run of a day has succeeded by then."""
    resolved, store = _open(project)
    try:
        check_name(name)
        if (cron is None) == (every is None):
            raise UsageError("give a schedule either a cron expression or an interval (one of them).")
        every_s = None
        if every is not None:
            every_s = check_every(float(every), every) if isinstance(every, (int, float)) else parse_every(every)
        cron = check_cron(cron) if cron is not None else None
        tz = tz or local_zone_name()
        zone(tz)
        chosen = list(targets or [])
        checked = check_params(params)
        checked_grid = check_grid(grid)
        if on_failure_webhook and not re.match(r"https?://", on_failure_webhook):
            raise UsageError(f"webhook {on_failure_webhook!r}: give an http:// or https:// URL.")
        events = check_events(notify_on, deadline)
        deadline = check_deadline(deadline) if deadline else None
        emails = check_addresses(list(notify_email or []), "notify_email")
        if emails and resolved.notify.smtp is None:
            raise UsageError(
                f"notify_email: e-mail needs the mail server: add [notify.smtp] (host, port, sender) to "
                f"{resolved.settings_file}."
            )
        if check:
            check_against_pipeline(resolved, chosen, checked, checked_grid)
        created = (now or current_time()).replace(microsecond=0)
        record = ScheduleRecord(
            name,
            cron,
            every_s,
            tz,
            chosen,
            checked,
            paused,
            created_at=created,
            not_before=created,
            last_fired=None,
            on_failure_command=on_failure_command,
            on_failure_webhook=on_failure_webhook,
            grid=checked_grid,
            notify_on=events,
            deadline=deadline,
            notify_email=emails,
        )
        if not rows.insert_schedule(store, record, replace=replace):
            raise UsageError(f"a schedule named {name!r} exists already; remove it first, or replace it.")
        result = read_schedule(store, name).to_json(now)
    finally:
        store.close()
    _changed(resolved.root)
    return result


def list_schedules(project: ProjectLike, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every schedule of the project, by name, in the shape of `nbflow schedule list --json` (with next fire)."""
    _, store = _open(project)
    try:
        return [s.to_json(now) for s in read_schedules(store)]
    finally:
        store.close()


def get_schedule(project: ProjectLike, name: str, now: datetime | None = None) -> dict[str, Any]:
    _, store = _open(project)
    try:
        return read_schedule(store, name).to_json(now)
    finally:
        store.close()


def pause_schedule(project: ProjectLike, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Stop firing a schedule until it is resumed (a run in flight goes on)."""
    resolved, store = _open(project)
    try:
        if not read_schedule(store, name).paused:
            rows.pause_schedule(store, name)
        result = read_schedule(store, name).to_json(now)
    finally:
        store.close()
    _changed(resolved.root)
    return result


def resume_schedule(project: ProjectLike, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Fire a paused schedule again from its next slot on; the slots missed while paused are not caught up."""
    resolved, store = _open(project)
    try:
        if read_schedule(store, name).paused:
            rows.resume_schedule(store, name, not_before=now or current_time())
        result = read_schedule(store, name).to_json(now)
    finally:
        store.close()
    _changed(resolved.root)
    return result


def remove_schedule(project: ProjectLike, name: str) -> None:
    """Delete a schedule (its past runs stay in the history; a run in flight goes on)."""
    resolved, store = _open(project)
    try:
        if not rows.delete_schedule(store, name):
            read_schedule(store, name)  # raises ScheduleNotFound, with the closest name
    finally:
        store.close()
    _changed(resolved.root)


def scheduler_status(project: ProjectLike, now: datetime | None = None) -> dict[str, Any] | None:
    """The scheduler process holding the project's lease, if one is running: `{"owner", "host", "pid",
    "expires_at"}`."""
    _, store = _open(project)
    try:
        return running_scheduler(store, now)
    finally:
        store.close()
