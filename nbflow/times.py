"""Times as nbflow stores and shows them: aware datetimes, ISO 8601 text with the offset, durations in seconds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def now() -> datetime:
    """This moment in the machine's zone (stored with its offset, so any reader converts it exactly)."""
    return datetime.now(timezone.utc).astimezone()


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
def iso(moment: datetime | None) -> str | None:
    """ISO 8601 to the millisecond, with the offset."""
    return moment.isoformat(timespec="milliseconds") if moment else None


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def duration(started: str | None, finished: str | None) -> float | None:
    """Seconds from `started` to `finished` (to now while it is not finished); None before it started."""
    if not started:
        return None
    end = parse_time(finished) if finished else now()
    start = parse_time(started)
    assert end is not None and start is not None
    return round((end - start).total_seconds(), 3)
