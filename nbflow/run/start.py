"""One run from start to end: prepared, recorded, locked, executed, closed.

This is what `Pipeline.run`, `nbflow run`, the panels, the server and the scheduler all call. It is also the one
place that cleans up after a run whose process died: reading the store never stops a process, starting a run does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbflow import processes
from nbflow.graph import Pipeline
from nbflow.models import Run, TaskRun
from nbflow.run.executors import make_executor
from nbflow.run.jobs import Executor, ExecutorOptions
from nbflow.run.lock import ProjectLock
from nbflow.run.loop import EventHook, Runner
from nbflow.run.prepare import new_run_id, prepare
from nbflow.store import Store, open_store
from nbflow.times import iso, now


def run_pipeline(
    pipeline: Pipeline,
    targets: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    workers: int | None = None,
    force: bool = False,
    *,
    fail_fast: bool = False,
    timeout: float | None = None,
    retries: int | None = None,
    executor: str | Executor = "local",
    dask_address: str | None = None,
    prewarm: bool = True,
    trigger: str = "api",
    on_event: EventHook | None = None,
    on_start: Callable[[Runner], None] | None = None,
) -> Run:
    """Run the targets (default: all) and their upstream; blocks until done and returns the Run.

    `executor` names a registered executor (`local`, `dask`, ...), made for this run and closed after it, or is an
    `Executor` the caller made and closes itself."""
    prepared = prepare(pipeline, targets, params)
    project = prepared.pipeline.project
    store = open_store(project.store_dir)
    lock = ProjectLock(project.store_dir)
    run_id = new_run_id()
    lock.acquire(run_id)
    try:
        stop_orphan_kernels(store)
        options = ExecutorOptions(
            run_id=run_id,
            workers=workers or project.workers,  # -j, else `workers` in nbflow.toml, else the executor's default
            address=dask_address,
            prewarm=prewarm,
            on_kernel_pid=lambda job, pid: store.update_task(run_id, job.task, kernel_pid=pid),
        )
        chosen = make_executor(executor, options) if isinstance(executor, str) else executor
        recorded = prepared.recorded_params
        run = Run(run_id, trigger, recorded, {name: TaskRun(name) for name in prepared.selected}, started_at=iso(now()))
        store.create_run(run_id, trigger, recorded, list(targets or []), prepared.selected)
        runner = Runner(
            prepared,
            store,
            chosen,
            run,
            force=force,
            fail_fast=fail_fast,
            timeout=timeout,
            retries=retries,
            on_event=on_event,
        )
        if on_start:
            on_start(runner)
        try:
            return runner.execute()
        finally:
            if chosen is not executor:
                chosen.close()
    finally:
        lock.release()
        store.close()


def stop_orphan_kernels(store: Store) -> list[int]:
    """Kill the kernels that runs whose process died left running (only those still kernels: pids are reused).
    Called while holding the project's lock, so no live run owns them."""
    stopped = []
    for run_id, task, pid in store.orphan_kernels():
        if pid != os.getpid() and processes.alive(pid) and processes.is_kernel(pid) and processes.kill_group(pid):
            stopped.append(pid)
        store.forget_kernel(run_id, task)
    return stopped
