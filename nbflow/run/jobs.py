"""The executor interface: a `Job` goes in, a `JobResult` comes back through a concurrent.futures.Future.

The runner only speaks this interface, so the local thread pool and the Dask cluster are interchangeable. Jobs and
results are plain picklable data so they can travel to another machine.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from nbflow.models import TaskError, TaskState


@dataclass(frozen=True)
class Job:
    """One attempt at one task."""

    task: str
    notebook: str  # absolute path of the source notebook (never written to)
    output_notebook: str  # absolute path where the executed notebook is written
    cwd: str  # the kernel's working directory: the notebook's folder
    kernel: str
    parameters: dict[str, Any]  # injected by papermill after the `parameters` cell
    attempt: int = 1
    start_timeout: float = 60.0


@dataclass
class JobResult:
    state: TaskState  # SUCCEEDED, FAILED or CANCELLED
    started_at: str
    finished_at: str
    error: TaskError | None = None
    kernel_pid: int | None = None
    notebook_bytes: bytes | None = field(default=None, repr=False)  # for executors whose disk is not ours
    kernel_log: bytes | None = field(default=None, repr=False)  # likewise: the kernel's output, for TASK.kernel.log


@dataclass
class ExecutorOptions:
    """What a run tells the executor it makes (`nbflow.run.executors.make_executor`)."""

    run_id: str
    workers: int | None = None  # -j; None: the executor's own default (the CPU count, a cluster's threads)
    address: str | None = None  # where a remote executor's scheduler listens
    prewarm: bool = True  # start the kernels of the next jobs ahead
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
    def submit(self, job: Job) -> Future:
        """Start the job; the Future resolves to a JobResult (it never raises for a failing notebook)."""

    @abc.abstractmethod
    def stop(self, job: Job, reason: str) -> None:
        """Stop a running job now (its kernel is killed); `reason` is "timeout" or "cancelled"."""

    def prepare(self, upcoming: list[Job]) -> None:  # noqa: B027 (optional hook: doing nothing is right)
        """A hint: these jobs (at most `capacity`, soonest first) are likely to be submitted next; an executor may
        start their kernels early."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release everything the executor holds (threads, kernels, connections)."""
