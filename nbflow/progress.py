"""What `nbflow run` shows while it runs: a live table in a terminal, plain lines otherwise.

Plain lines carry no carriage returns or escape codes, so logs and CI output stay readable. Events come from the
runner's thread, one per task state change.
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


def describe_error(result: TaskRun) -> str:
    return str(result.error) if result.error else ""


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
        note = describe_error(result) if result.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) else ""
        if result.state is TaskState.RUNNING and result.attempts > 1:
            note = f"attempt {result.attempts}"
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
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        table.add_column("", overflow="fold")
        for name, result in (self.run.tasks if self.run else {}).items():
            note = describe_error(result) if result.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) else ""
            if result.state is TaskState.RUNNING and result.attempts > 1:
                note = f"attempt {result.attempts}"
            table.add_row(name, f"[{STYLES.get(result.state, '')}]{result.state}[/]", _elapsed(result), note)
        return table


def progress_for(stream: TextIO = sys.stdout) -> LiveProgress | PlainProgress:
    return LiveProgress() if stream.isatty() else PlainProgress(stream)
