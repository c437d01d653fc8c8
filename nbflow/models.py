"""The shared vocabulary: task and run states, task statuses and the error a task ends with.

Every layer speaks these types: the run loop sets states, the store records them, the interfaces show them. The
enums are `str` subclasses, so they compare equal to their values, serialise to JSON as those values and read back
from the store with `TaskState(text)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from nbflow.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED
from nbflow.times import duration


class _Text(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class TaskState(_Text):
    """Where a task stands within one run."""

    PENDING = "pending"
    WAITING = "waiting"  # ready, but another run holds this instance: judged once that run is done with it
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"  # up to date: not run
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """The task will not change state again in this run."""
        return self not in (TaskState.PENDING, TaskState.WAITING, TaskState.RUNNING)

    @property
    def ok(self) -> bool:
        """Its outputs are good: it ran successfully or was up to date, so its dependants may go on."""
        return self in (TaskState.SUCCEEDED, TaskState.SKIPPED)

    @property
    def failed(self) -> bool:
        """The run counts it against itself."""
        return self in (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)


class RunState(_Text):
    """Where a run stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the process running it died; marked by the next command that opens the store
    SKIPPED = "skipped"  # a schedule's firing not run because its previous run was still going

    @property
    def finished(self) -> bool:
        return self is not RunState.RUNNING


class TaskStatus(_Text):
    """A task judged outside any run, with the parameter values in force (`nbflow status`)."""

    UP_TO_DATE = "up_to_date"
    STALE = "stale"
    NEVER_RUN = "never_run"
    FAILED = "failed"


@dataclass
class TaskError:
    """Why a task did not succeed, as the store keeps it and every interface shows it.

    `cell_index` counts the cells of the executed notebook (the injected parameters cell included); None where no
    cell is to blame (a timeout between cells, an output that was not written, an upstream failure). `source_cell`
    is the same cell as the user sees it in the source notebook (its index there) and `source_line` its first line.
    """

    ename: str
    evalue: str
    cell_index: int | None = None
    traceback: list[str] = field(default_factory=list)
    source_cell: int | None = None
    source_line: str | None = None

    # -- named constructors: one per way a task can end badly --------------------------------------------------

    @classmethod
    def in_cell(cls, ename: str, evalue: str, cell_index: int | None, traceback: Iterable[str] = ()) -> TaskError:
        """An exception raised by the notebook's own code."""
        return cls(ename, evalue, cell_index, list(traceback))

    @classmethod
    def timeout(cls, detail: str = "the task ran past its timeout", cell_index: int | None = None) -> TaskError:
        """The task's wall-clock limit passed; its kernel was stopped."""
        return cls("TaskTimeout", detail, cell_index)

    @classmethod
    def cancelled(cls, detail: str = "the run was cancelled", cell_index: int | None = None) -> TaskError:
        return cls("Cancelled", detail, cell_index)

    @classmethod
    def dead_kernel(cls, detail: str, cell_index: int | None = None) -> TaskError:
        """The kernel process died under the task (a signal, out of memory, `os._exit`)."""
        return cls("DeadKernelError", detail, cell_index)

    @classmethod
    def fork_server_died(cls, detail: str, cell_index: int | None = None) -> TaskError:
        """The kernel died together with the fork server it was forked from (both killed, out of memory): not
        something the notebook did. The server is restarted for the next kernels."""
        return cls(
            "ForkServerDied",
            f"{detail}, at the same time as nbflow's kernel fork server (killed, or out of memory); the notebook "
            "itself is not known to be at fault: run it again",
            cell_index,
        )

    @classmethod
    def no_space(cls, path: str) -> TaskError:
        """The disk filled up under what nbflow writes for the task (its executed notebook, its kernel's log)."""
        return cls(
            "NoSpaceLeft",
            f"no space left on the device holding {path}: free some space and run the task again (what was "
            "written before the disk filled up is kept)",
        )

    @classmethod
    def no_kernel(cls, detail: str) -> TaskError:
        return cls("NoSuchKernel", detail)

    @classmethod
    def output_not_written(cls, paths: Iterable[str]) -> TaskError:
        """Declared outputs the task did not write in this attempt (missing, or left from an earlier run)."""
        return cls("OutputNotWritten", "declared output not written by this run: " + ", ".join(paths))

    @classmethod
    def output_not_a_file(cls, found: Iterable[tuple[str, str]]) -> TaskError:
        """Declared file outputs the task left as something else: (path, what it is), e.g. a folder."""
        listed = ", ".join(f"{path} is a {kind}" for path, kind in found)
        return cls(
            "OutputNotAFile",
            f"declared output not a file: {listed}; declare a folder with a trailing slash (data/out/)",
        )

    @classmethod
    def report_not_written(cls, path: str, reason: str) -> TaskError:
        """The notebook ran, but its report could not be written; the last good report is left as it was."""
        return cls("ReportNotWritten", f"the report {path} could not be written: {reason}")

    @classmethod
    def upstream_failed(cls, upstream: str) -> TaskError:
        return cls("UpstreamFailed", f"upstream task {upstream} failed")

    @classmethod
    def from_exception(cls, exc: BaseException, cell_index: int | None = None) -> TaskError:
        """Anything else that went wrong around the notebook (a kernel that could not start, a write that failed)."""
        return cls(type(exc).__name__, str(exc), cell_index)

    # -- the stored and shown shape -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TaskError | None:
        if not data:
            return None
        return cls(
            str(data.get("ename", "")),
            str(data.get("evalue", "")),
            data.get("cell_index"),
            list(data.get("traceback") or []),
            data.get("source_cell"),
            data.get("source_line"),
        )

    def __str__(self) -> str:
        if self.source_cell is not None:
            first = f" (`{self.source_line}`)" if self.source_line else ""
            where = f" in cell {self.source_cell}{first}"
        else:
            where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        return f"{self.ename}{where}: {self.evalue}"


@dataclass
class CellProgress:
    """How far a running instance's notebook has got: its `cell`-th cell of `cells` (counted from 1 in the executed
    notebook, the injected parameters cell included), that cell's first line, and the tail of what the cells have
    printed (stdout and stderr, at most TAIL_LINES lines of at most LINE_CHARS characters)."""

    TAIL_LINES = 20
    LINE_CHARS = 200

    cell: int
    cells: int
    line: str = ""
    tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CellProgress | None:
        if not data:
            return None
        return cls(int(data["cell"]), int(data["cells"]), str(data.get("line", "")), list(data.get("tail", [])))

    def __str__(self) -> str:
        return f"cell {self.cell}/{self.cells}" + (f": {self.line}" if self.line else "")


@dataclass
class TaskRun:
    """One task instance in one run: what the loop sets, the store keeps and every interface shows."""

    name: str  # the instance's name (the task's, without a grid)
    state: TaskState = TaskState.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    error: TaskError | None = None
    output_notebook: Path | None = None  # the executed notebook (absolute; shown relative to the project root)
    reasons: list[str] = field(default_factory=list)  # why it ran (or `--force`); empty when skipped
    kernel_pid: int | None = None
    run_id: str | None = None
    task: str = ""  # the task it is an instance of; the same as `name` without a grid
    grid: dict[str, Any] = field(default_factory=dict)  # the instance's grid values
    progress: CellProgress | None = None  # while it runs, and as far as it got once it ended

    def __post_init__(self) -> None:
        self.task = self.task or self.name

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at) if self.started_at and self.finished_at else None


@dataclass
class RunRecord:
    """A run as the store keeps it, with its tasks counted by state."""

    id: str
    trigger: str  # cli, api, lab, schedule:NAME
    state: RunState
    started_at: str
    finished_at: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)  # the run's own grid (`-g`): name -> values
    pid: int | None = None
    message: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at)


@dataclass
class Run:
    """A run as it goes: what `Pipeline.run` returns and what the progress display follows."""

    id: str
    trigger: str
    params: dict[str, Any]
    tasks: dict[str, TaskRun]
    state: RunState = RunState.RUNNING
    started_at: str | None = None
    finished_at: str | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)  # the run's own grid (`-g`): name -> values

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at)

    @property
    def exit_code(self) -> int:
        """What `nbflow run` exits with: 0 succeeded, 130 cancelled, else 1."""
        return {RunState.SUCCEEDED: EXIT_OK, RunState.CANCELLED: EXIT_INTERRUPTED}.get(self.state, EXIT_TASK_FAILED)
