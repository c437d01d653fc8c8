"""What `nbflow run` shows while it runs: a live table in a terminal, plain lines otherwise.

Plain lines carry no carriage returns or escape codes, so logs and CI output stay readable: one per state change
of an instance. The live table has a row per task: a grid task's row counts its instances by state, and only its
running instances and its first failures get rows of their own, so a backfill of hundreds of instances fits a
screen. Events come from the runner's thread, one per task state change.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from nbflow.models import Run, TaskRun, TaskState
from nbflow.times import duration

if TYPE_CHECKING:
    from rich.table import Table

STYLES = {
    TaskState.PENDING: "dim",
    TaskState.WAITING: "yellow",
    TaskState.RUNNING: "bold cyan",
    TaskState.SUCCEEDED: "green",
    TaskState.SKIPPED: "dim green",
    TaskState.FAILED: "bold red",
    TaskState.UPSTREAM_FAILED: "red",
    TaskState.CANCELLED: "yellow",
}


FAILURES_SHOWN = 3  # failed instances of a grid task with a row of their own in the live table


def describe_error(result: TaskRun) -> str:
    return str(result.error) if result.error else ""


def _note(result: TaskRun) -> str:
    if result.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED):
        return describe_error(result)
    if result.state is TaskState.RUNNING:
        notes = [f"attempt {result.attempts}"] if result.attempts > 1 else []
        progress = result.progress
        if progress is not None:  # the cell it runs, and the last line its cells printed
            notes += [str(progress)] + ([f"> {progress.tail[-1]}"] if progress.tail else [])
        return "; ".join(notes)
    if result.state is TaskState.WAITING:
        return "; ".join(result.reasons)  # which run it waits for
    return ""


def _elapsed(result: TaskRun) -> str:
    """How long the task took, or has been running (its duration so far)."""
    if result.state is TaskState.SKIPPED or not result.started_at:
        return ""
    seconds = duration(result.started_at, result.finished_at if result.state.finished else None)
    return f"{seconds:.1f}s" if seconds is not None else ""


class PlainProgress:
    """One line per state change: `10:15:31  clean  succeeded  1.2s`."""

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream
        self._lock = threading.Lock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        pass

    def __call__(self, run: Run, result: TaskRun) -> None:
        if result.state is TaskState.PENDING:
            return
        note = _note(result)
        took = _elapsed(result) if result.state.finished else ""  # a line is printed as a task starts: no time yet
        line = f"{datetime.now():%H:%M:%S}  {result.name}  {result.state}  {took}  {note}".rstrip()
        with self._lock:
            print(line, file=self.stream, flush=True)


class LiveProgress:
    """A rich table of every task (state, elapsed, note), redrawn a few times a second."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.run: Run | None = None
        self._live = Live(self, console=Console(), refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._live.__exit__(kind, exc, traceback)

    def __call__(self, run: Run, result: TaskRun) -> None:
        self.run = run

    def __rich__(self) -> Table:
        from rich.markup import escape
        from rich.table import Table

        from nbflow.render.summary import counts_text, most_urgent  # with rich: only a terminal's table needs them

        rows: list[tuple[str, str, str, str]] = []  # task, state (markup), elapsed, note

        def add(name: str, result: TaskRun) -> None:
            rows.append((name, f"[{STYLES.get(result.state, '')}]{result.state}[/]", _elapsed(result), _note(result)))

        by_task: dict[str, list[TaskRun]] = {}
        for result in (self.run.tasks if self.run else {}).values():
            by_task.setdefault(result.task, []).append(result)
        for task, results in by_task.items():
            if len(results) == 1:
                add(results[0].name, results[0])
                continue
            urgent = TaskState(most_urgent(r.state for r in results))
            rows.append(
                (
                    f"{task} ({len(results)})",
                    f"[{STYLES.get(urgent, '')}]{counts_text((r.state for r in results), str)}[/]",
                    "",
                    next((_note(r) for r in results if r.state is TaskState.WAITING), ""),  # which run it waits for
                )
            )
            failed = [r for r in results if r.state is TaskState.FAILED]
            for result in [r for r in results if r.state is TaskState.RUNNING] + failed[:FAILURES_SHOWN]:
                add(f"  {result.name}", result)
            if len(failed) > FAILURES_SHOWN:
                rows.append((f"  ... and {len(failed) - FAILURES_SHOWN} more failed", "", "", ""))

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        # names are never cut: the notes (errors) fold instead
        table.add_column("task", no_wrap=True, min_width=max((len(row[0]) for row in rows), default=4))
        table.add_column("state", no_wrap=True)
        table.add_column("elapsed", justify="right", no_wrap=True)
        table.add_column("", overflow="fold")
        for name, state, elapsed, note in rows:
            table.add_row(escape(name), state, elapsed, escape(note))
        return table


def progress_for(stream: TextIO = sys.stdout) -> LiveProgress | PlainProgress:
    return LiveProgress() if stream.isatty() else PlainProgress(stream)
