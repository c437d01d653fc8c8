"""Times as nbflow stores and shows them: aware datetimes, ISO 8601 text with the offset, durations in seconds.

The store keeps every time in UTC (`now()`), so times compare and sort as text whatever the zone of the process that
wrote them (`TZ` differs between a shell, a cron job, a server); they are shown in the reader's zone (`local`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def now() -> datetime:
    """This moment, in UTC: what the store keeps."""
    return datetime.now(timezone.utc)


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
def iso(moment: datetime | None) -> str | None:
    """ISO 8601 to the millisecond, with the offset."""
    return moment.isoformat(timespec="milliseconds") if moment else None


@overload
def local(text: str) -> str: ...
@overload
def local(text: None) -> None: ...
def local(text: str | None) -> str | None:
    """A stored time as ISO 8601 in this machine's zone (what the JSON and REST shapes show), to the millisecond."""
    return iso(datetime.fromisoformat(text).astimezone()) if text else None


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
