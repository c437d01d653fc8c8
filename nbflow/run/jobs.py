"""The executor interface: a `Job` goes in, a `JobResult` comes back through a concurrent.futures.Future.

The runner only speaks this interface, so the local thread pool and the Dask cluster are interchangeable. Jobs and
results are plain picklable data so they can travel to another machine.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nbflow.models import CellProgress, TaskError, TaskState


class StopReason(str, Enum):
    """Why the loop stops a running job."""

    TIMEOUT = "timeout"  # its wall-clock limit passed
    CANCELLED = "cancelled"  # the run is cancelled, failed fast or interrupted

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Job:
    """One attempt at one task."""

    task: str
    notebook: str  # absolute path of the source notebook (never written to)
    output_notebook: str  # absolute path where the executed notebook is written
    cwd: str  # the kernel's working directory: the notebook's folder
    kernel: str
    parameters: dict[str, Any]  # injected by papermill after the `parameters` cell (a secret as its `Secret`)
    attempt: int = 1
    start_timeout: float = 60.0
    # set in the kernel's environment: the values of the secrets among the parameters, which the kernel reads
    # from there; a job carries them to wherever it runs, and never shows them
    environment: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def kernel_log(self) -> str:
        """Where the job's kernel writes its own output (what the notebook's cells do not capture)."""
        return os.path.splitext(self.output_notebook)[0] + ".kernel.log"


@dataclass
class JobResult:
    """How one attempt ended. The executed notebook is at the job's `output_notebook` (and the kernel's own output
    beside it) by the time the executor resolves the job's Future, wherever the job ran."""

    state: TaskState  # SUCCEEDED, FAILED or CANCELLED
    started_at: str
    finished_at: str
    error: TaskError | None = None
    kernel_pid: int | None = None


@dataclass(frozen=True)
class Preload:
    """What a fork server imports for a run's kernels (`nbflow.run.preload`): `modules` in the order the run first
    needs them, and for each notebook the ones among them it needs. A kernel forks once its notebook's modules are
    in, not waiting for the rest; a notebook not listed waits for all."""

    modules: tuple[str, ...] = ()
    needs: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def needed_by(self, notebook: str) -> frozenset[str]:
        found = self.needs.get(notebook)
        return frozenset(self.modules) if found is None else found


NO_PRELOAD = Preload()


@dataclass
class ExecutorOptions:
    """What a run tells the executor it makes (`nbflow.run.executors.make_executor`)."""

    run_id: str
    workers: int | None = None  # -j; None: the executor's own default (the CPU count, a cluster's threads)
    address: str | None = None  # where a remote executor's scheduler listens
    prewarm: bool = True  # start the kernels of the next jobs ahead
    preload: Preload = field(default_factory=Preload)  # what a fork server imports for the kernels it forks
    on_kernel_pid: Callable[[Job, int], None] | None = None  # a job's kernel started: its process id


class Executor(abc.ABC):
    """Runs jobs somewhere; how is the only thing that differs between executors."""

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: ExecutorOptions) -> Executor:
        """The executor for one run; raises UsageError when it cannot be had (no cluster at the address)."""

    #: how many jobs may run at once
    capacity: int = 1

    @abc.abstractmethod
    def submit(self, job: Job) -> Future[JobResult]:
        """Start the job; the Future resolves to a JobResult (it never raises for a failing notebook), once the
        executed notebook and the kernel's log are at the job's paths on this machine."""

    @abc.abstractmethod
    def stop(self, job: Job, reason: StopReason) -> None:
        """Stop a running job now (its kernel is killed)."""

    def prepare(self, upcoming: list[Job]) -> None:  # noqa: B027 (optional hook: doing nothing is right)
        """A hint: these jobs (at most `capacity`, soonest first) are likely to be submitted next; an executor may
        start their kernels early."""

    def progress(self) -> dict[str, CellProgress]:
        """How far the running jobs' notebooks have got, by task instance, for those that got further since the
        last call (asked a few times a second while the run goes on). An executor that cannot tell says nothing."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release everything the executor holds (threads, kernels, connections)."""
