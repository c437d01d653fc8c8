"""The local executor: each job runs in a thread of this process, with papermill driving a fresh kernel.

Threads are enough: the work happens in the kernel processes, and an in-process papermill pays its import (the
largest part of starting a notebook run) once per run, not once per task.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from nbflow.models import CellProgress
from nbflow.run.execute import KernelControl, execute_job, import_papermill
from nbflow.run.jobs import NO_PRELOAD, Executor, ExecutorOptions, Job, JobResult, Preload, StopReason
from nbflow.run.kernels import KernelPool, import_kernel_client


class LocalExecutor(Executor):
    """Runs each job in a thread of this process, on a kernel from the warm pool (or started for it)."""

    def __init__(
        self,
        workers: int,
        on_kernel_pid: Callable[[Job, int], None] | None = None,
        prewarm: bool = True,
        preload: Preload = NO_PRELOAD,
    ):
        self.capacity = workers
        self._prewarm = prewarm
        self._preload = preload
        self._kernels: KernelPool | None = None
        self._pool: ThreadPoolExecutor | None = None  # started with the first job: a no-op run needs none of it
        self._controls: dict[tuple[str, int], KernelControl] = {}
        self._on_kernel_pid = on_kernel_pid
        self._moved: set[tuple[str, int]] = set()  # jobs whose progress changed since `progress()` last asked
        self._moved_lock = threading.Lock()

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> LocalExecutor:
        return cls(
            options.workers or os.cpu_count() or 1,
            on_kernel_pid=options.on_kernel_pid,
            prewarm=options.prewarm,
            preload=options.preload,
        )

    def _start(self) -> ThreadPoolExecutor:
        if self._pool is None:
            import_kernel_client()  # before any thread imports it
            self._kernels = KernelPool(max_idle=self.capacity, preload=self._preload) if self._prewarm else None
            self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="nbflow-task")
            # papermill's import is slow: pay it while the first kernels start.
            self._pool.submit(import_papermill)
        return self._pool

    def submit(self, job: Job) -> Future[JobResult]:
        report = self._on_kernel_pid
        key = (job.task, job.attempt)
        control = KernelControl((lambda pid: report(job, pid)) if report else None, lambda: self._moved_add(key))
        self._controls[key] = control
        threads = self._start()
        if self._kernels is not None:
            self._kernels.claim(job)
        return threads.submit(execute_job, job, control, self._kernels)

    def stop(self, job: Job, reason: StopReason) -> None:
        control = self._controls.get((job.task, job.attempt))
        if control is not None:
            control.stop(reason)

    def _moved_add(self, key: tuple[str, int]) -> None:
        with self._moved_lock:
            self._moved.add(key)

    def progress(self) -> dict[str, CellProgress]:
        with self._moved_lock:
            moved, self._moved = self._moved, set()
        found = {task: self._controls[(task, attempt)].progress() for task, attempt in moved}
        return {task: progress for task, progress in found.items() if progress is not None}

    def prepare(self, upcoming: list[Job]) -> None:
        self._start()
        if self._kernels is not None:
            self._kernels.prepare(upcoming)

    def close(self) -> None:
        # The runner has stopped unfinished jobs; wait for them, then for every kernel to be shut down.
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._kernels is not None:
            self._kernels.close()
