"""Task instances: their names (`TASK[name=value]`), selecting them by name, and a run grid's values from text.

A grid task runs once per value of its grid (the product, for several names); each run is an instance with its
own name, fingerprint, state and executed notebook. This module is the one place that writes and reads those
names, so the CLI's `-t`, the store's rows and every interface agree on them.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbflow.errors import UsageError
from nbflow.params import parse_value

# A run (or a task's grid) making more instances than this is almost surely a mistake in a range or a list, and
# would flood the store and the interfaces.
MAX_INSTANCES = 10_000

_FILE_UNSAFE = re.compile(r'[\x00-\x1f\\:*?"<>|]')  # what some filesystem or shell cannot hold or quote simply
_MAX_FILE_STEM = 180  # bytes: room for `.attempt-N.ipynb` within the 255 most filesystems allow
_SELECTOR = re.compile(r"(?P<task>[^\[\]]+)\[(?P<values>[^\[\]]*)\]")
_RANGE = re.compile(r"(?P<start>[^.]+)\.\.(?P<end>[^/]+)(?:/(?P<step>\d+)(?P<unit>[dw]?))?")


def format_value(value: Any) -> str:
    """A grid value as instance names show it: text as it is, anything else as its Python literal."""
    return value if isinstance(value, str) else repr(value)


def instance_name(task: str, values: Mapping[str, Any]) -> str:
    """`daily_report` with `{"region": "north"}` -> `daily_report[region=north]`; the task's name without values."""
    if not values:
        return task
    return task + "[" + ",".join(f"{k}={format_value(v)}" for k, v in values.items()) + "]"


@dataclass(frozen=True)
class Selector:
    """What `-t` names: a task (every instance), or some instances by some of their grid values."""

    task: str
    values: dict[str, str]  # name -> value as instance names show it; empty: every instance

    def matches(self, task: str, values: Mapping[str, Any]) -> bool:
        return task == self.task and all(
            name in values and format_value(values[name]) == shown for name, shown in self.values.items()
        )


def parse_selector(text: str) -> Selector:
    """`daily_report` or `daily_report[region=north]` (several: `[a=1,b=x]`, any subset, any order)."""
    match = _SELECTOR.fullmatch(text.strip())
    if match is None:
        return Selector(text.strip(), {})
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in match.group("values").split(","))):
        name, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise UsageError(
                f"target `{text}`: {pair!r} is not NAME=VALUE; name instances as TASK[NAME=VALUE], e.g. "
                "daily_report[region=north]."
            )
        values[name] = value
    return Selector(match.group("task").strip(), values)


def notebook_file_name(instance: str) -> str:
    """The executed notebook's file name for a task or instance, one per name: `/` becomes `__`, control
    characters and those Windows filesystems refuse `_`. A name changed that way, or too long (cut), ends in `~`
    and a hash of the whole name, and `~` is itself a changed character: so `x/b` and `x__b`, or `q="x?"` and
    `q=_x__`, never share a file."""
    stem = _FILE_UNSAFE.sub("_", instance.replace("/", "__").replace("~", "_"))
    if stem != instance or len(stem.encode()) > _MAX_FILE_STEM:
        digest = hashlib.sha256(instance.encode()).hexdigest()[:12]
        stem = stem.encode()[: _MAX_FILE_STEM - 13].decode(errors="ignore") + "~" + digest
    return stem + ".ipynb"


def parse_grid_values(name: str, text: str) -> list[Any]:
    """A run grid's values for `-g NAME TEXT`: a comma list (`north,south`, each read as `-p` reads a value), or
    a range of dates `2026-11-01..2026-11-30` or whole numbers `1..10`, both ends included, with an optional step
    (`/7d`, `/2w`; `/5` for numbers). Raises UsageError naming the parameter when the text is none of these."""
    text = text.strip()
    match = _RANGE.fullmatch(text)
    if match is None:
        values = [parse_value(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise UsageError(f"-g {name}: no values given; write a comma list (a,b,c) or a range (A..B).")
        _bounded(name, values)
        shown = collections.Counter(format_value(v) for v in values)  # as instance names show them: one each
        duplicates = sorted(text for text, count in shown.items() if count > 1)
        if duplicates:
            raise UsageError(f"-g {name}: {', '.join(duplicates)} given more than once; list each value once.")
        return values
    start, end, step, unit = match.group("start", "end", "step", "unit")
    size = int(step) if step else 1
    if size < 1:
        raise UsageError(f"-g {name}: the step of {text!r} must be at least 1.")
    first, last = _date(start), _date(end)
    if first is not None and last is not None:
        days = size * (7 if unit == "w" else 1)
        if last < first:
            raise UsageError(f"-g {name}: {text!r} ends before it starts; write the earlier date first.")
        count = (last - first).days // days + 1
        _bounded(name, range(count))
        return [(first + dt.timedelta(days=i * days)).isoformat() for i in range(count)]
    low, high = parse_value(start), parse_value(end)
    if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool) or isinstance(high, bool) or unit:
        raise UsageError(
            f"-g {name}: {text!r} is no range nbflow reads: a range runs between two dates (2026-11-01..2026-11-30, "
            "step /7d or /1w) or two whole numbers (1..10, step /2)."
        )
    if high < low:
        raise UsageError(f"-g {name}: {text!r} ends before it starts; write the smaller number first.")
    return _bounded(name, list(range(low, high + 1, size)))


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _bounded(name: str, values: Sequence[Any]) -> list[Any]:
    if len(values) > MAX_INSTANCES:
        raise UsageError(
            f"-g {name}: {len(values):,} values; a run makes at most {MAX_INSTANCES:,} instances of a task. "
            "Split the range into several runs."
        )
    return list(values)
