"""Schedules: runs of a project's pipeline at set times (a cron expression in a time zone, or an interval).

`model` says what a schedule is, when it fires and when its deadline passes, `api` is what the interfaces call;
the loop that fires schedules is `nbflow.scheduler`, and `nbflow.notify` tells of their runs. The store's queries
behind all of them are in `nbflow.store.schedules`.
"""

from nbflow.schedule.api import (
    NAME_PATTERN,
    ScheduleNotFound,
    add_schedule,
    check_against_pipeline,
    check_params,
    get_schedule,
    list_schedules,
    pause_schedule,
    read_schedule,
    read_schedules,
    remove_schedule,
    resume_schedule,
    running_scheduler,
    scheduler_status,
    subscribe,
    unsubscribe,
)
from nbflow.schedule.model import (
    Schedule,
    check_cron,
    current_time,
    fill_value,
    format_every,
    local_zone_name,
    parse_every,
    zone,
)

__all__ = [
    "NAME_PATTERN",
    "Schedule",
    "ScheduleNotFound",
    "add_schedule",
    "check_against_pipeline",
    "check_cron",
    "check_params",
    "current_time",
    "fill_value",
    "format_every",
    "get_schedule",
    "list_schedules",
    "local_zone_name",
    "parse_every",
    "pause_schedule",
    "read_schedule",
    "read_schedules",
    "remove_schedule",
    "resume_schedule",
    "running_scheduler",
    "scheduler_status",
    "subscribe",
    "unsubscribe",
    "zone",
]
