"""Many task instances in few words: counted by state, the state that matters most, a run grid's values in short,
and a run over a run grid as a partition x task table of states.

A grid task shown as one (a node, a line of `status`, a row of the live table) says how many of its instances are
in which state ("3 ok · 1 failed") and takes the look of its most urgent state: what needs a look now comes first
(running, then what went wrong, then what has yet to run), and a task is shown as fine only when every instance is.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from nbflow.grids import format_value
from nbflow.models import TaskRun, TaskState, TaskStatus

# Most urgent first: a state going on, then the ones that went wrong, then what is still to come, then what may be
# out of date, then the good ones (a task that ran outranks one that was up to date: something changed).
URGENCY: tuple[str, ...] = (
    TaskState.RUNNING,
    TaskState.FAILED,  # also TaskStatus.FAILED: the same word, the same urgency
    TaskState.UPSTREAM_FAILED,
    TaskState.CANCELLED,
    TaskState.WAITING,
    TaskState.PENDING,
    TaskStatus.STALE,
    TaskStatus.NEVER_RUN,
    TaskState.SUCCEEDED,
    TaskState.SKIPPED,
    TaskStatus.UP_TO_DATE,
)
_RANK = {str(state): rank for rank, state in enumerate(URGENCY)}

# The order counts are written in: the good ones first, then what goes on, then what went wrong or is out of date.
_COUNT_ORDER = (
    TaskState.SUCCEEDED,
    TaskState.SKIPPED,
    TaskStatus.UP_TO_DATE,
    TaskState.RUNNING,
    TaskState.WAITING,
    TaskState.PENDING,
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.CANCELLED,
    TaskStatus.STALE,
    TaskStatus.NEVER_RUN,
)
_COUNT_RANK = {str(state): rank for rank, state in enumerate(_COUNT_ORDER)}

# Where room is short (a box, a cell), every good outcome is "ok": its outputs are there and current.
_SHORT = {"succeeded": "ok", "skipped": "ok", "up_to_date": "ok"}

Words = Callable[[str], str]


def short_word(state: str) -> str:
    """A state in the fewest words: `ok` for succeeded, skipped and up to date; the others as they are named."""
    return _SHORT.get(str(state), str(state).replace("_", " "))


def most_urgent(states: Iterable[str | None]) -> str | None:
    """The state a group of instances is shown in (see URGENCY); None when none has a state."""
    known = [str(s) for s in states if s]
    return min(known, key=lambda s: _RANK.get(s, len(_RANK))) if known else None


def counted(states: Iterable[str | None], word: Words = short_word) -> list[tuple[str, int]]:
    """(words, how many) for the states given, in a stable order; states with the same words are added up."""
    tally = Counter(str(s) for s in states if s)
    totals: dict[str, int] = {}
    for state in sorted(tally, key=lambda s: (_COUNT_RANK.get(s, len(_COUNT_RANK)), s)):
        totals[word(state)] = totals.get(word(state), 0) + tally[state]
    return list(totals.items())


def counts_text(states: Iterable[str | None], word: Words = short_word, sep: str = " · ") -> str:
    """`3 ok · 1 failed`; `word` names each state (`str` for the states' own values)."""
    return sep.join(f"{n} {words}" for words, n in counted(states, word))


# -- a run grid's values in short ------------------------------------------------------------------------------------


def values_text(values: Sequence[Any], listed: int = 6) -> str:
    """A grid's values as `-g` would take them: `2026-11-01..2026-11-30` (a step shown as `/7d`), `1..10`, or a
    comma list, cut short past `listed` values (`a,b,c,...,z`)."""
    shown = [format_value(v) for v in values]
    if len(values) >= 3:
        ranged = _range_text(values)
        if ranged:
            return ranged
    if len(shown) > listed:
        shown = [*shown[: listed - 2], "...", shown[-1]]
    return ",".join(shown)


def _range_text(values: Sequence[Any]) -> str | None:
    """`first..last[/step]` when the values are dates or whole numbers at one even step, rising; else None."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        numbers: list[int] = list(values)
    elif all(isinstance(v, str) for v in values):
        try:
            numbers = [date.fromisoformat(v).toordinal() for v in values]
        except ValueError:
            return None
    else:
        return None
    steps = {b - a for a, b in itertools.pairwise(numbers)}
    if len(steps) != 1 or (step := steps.pop()) < 1:
        return None
    unit = "d" if isinstance(values[0], str) else ""
    return f"{format_value(values[0])}..{format_value(values[-1])}" + (f"/{step}{unit}" if step != 1 else "")


def grid_text(grid: Mapping[str, Sequence[Any]]) -> str:
    """A run grid in one line: `report_date 2026-11-01..2026-11-30 (30)`, names joined by ` × `."""
    return " × ".join(f"{name} {values_text(values)} ({len(values)})" for name, values in grid.items())


# -- a run over a run grid: values by tasks ----------------------------------------------------------------------------


@dataclass
class PartitionTable:
    """A run over a run grid: one row per value (per combination, for several names), one column per task varied
    by it, each cell holding that task's instances for that row (several where the task has a grid of its own)."""

    names: list[str]  # the run grid's names: what a row's values are
    rows: list[tuple[Any, ...]]
    tasks: list[str]  # the columns, in the run's order
    cells: dict[tuple[int, str], list[TaskRun]] = field(default_factory=dict)
    once: list[TaskRun] = field(default_factory=list)  # instances using no name of the run grid: run once, not per row

    def row_label(self, row: int) -> str:
        return ", ".join(format_value(v) for v in self.rows[row])

    def states(self, row: int, task: str) -> list[TaskState]:
        return [t.state for t in self.cells.get((row, task), [])]

    def cell_text(self, row: int, task: str, word: Words = str) -> str:
        """The state of the one instance, the counts of several, `-` for none."""
        states = self.states(row, task)
        if len(states) == 1:
            return word(states[0])
        return counts_text(states, word, sep=", ") if states else "-"


def partition_table(grid: Mapping[str, Sequence[Any]], tasks: Iterable[TaskRun]) -> PartitionTable | None:
    """The table of a run with a run grid (`RunRecord.grid`) from its task runs; None for a run without one."""
    if not grid:
        return None
    names = list(grid)
    rows = list(itertools.product(*(grid[n] for n in names)))
    shown_rows = [tuple(format_value(v) for v in row) for row in rows]
    row_of = {row: number for number, row in enumerate(shown_rows)}
    table = PartitionTable(names, rows, [])
    for task in tasks:
        used = [i for i, n in enumerate(names) if n in task.grid]
        if not used:
            table.once.append(task)
            continue
        if task.task not in table.tasks:
            table.tasks.append(task.task)
        wanted = {i: format_value(task.grid[names[i]]) for i in used}
        if len(used) == len(names):  # the usual case: one row
            found = row_of.get(tuple(wanted[i] for i in range(len(names))))
            numbers = [] if found is None else [found]
        else:  # a task using some of the names: every row with its values
            numbers = [n for n, row in enumerate(shown_rows) if all(row[i] == v for i, v in wanted.items())]
        for number in numbers:
            table.cells.setdefault((number, task.task), []).append(task)
    return table
