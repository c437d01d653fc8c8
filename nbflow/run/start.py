"""One run from start to end: prepared, recorded with its claims, executed, closed.

This is what `Pipeline.run`, `nbflow run`, the panels, the server and the scheduler all call. It is also the one
place that cleans up after a run whose process died: reading the store never stops a process, starting a run does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbflow.graph import Pipeline
from nbflow.models import Run, RunState, TaskRun
from nbflow.run.cell_progress import ProgressRecorder
from nbflow.run.claims import Claims, stop_orphan_kernels
from nbflow.run.executors import make_executor
from nbflow.run.jobs import NO_PRELOAD, Executor, ExecutorOptions
from nbflow.run.loop import EventHook, Runner
from nbflow.run.preload import preload_plan
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
    grid: Mapping[str, Iterable[Any]] | None = None,
    upstream: bool = True,
    downstream: bool = False,
    no_wait: bool = False,
    fail_fast: bool = False,
    timeout: float | None = None,
    retries: int | None = None,
    executor: str | Executor = "local",
    dask_address: str | None = None,
    prewarm: bool = True,
    preload: bool = True,
    trigger: str = "api",
    on_event: EventHook | None = None,
    on_start: Callable[[Runner], None] | None = None,
    on_record: Callable[[Store], None] | None = None,
) -> Run:
    """Run the targets (default: all) and their upstream; blocks until done and returns the Run.

    `grid` makes the run a grid (name -> values): every selected task using a name runs once per value. Where
    another run that is still going holds an instance this run needs, that instance waits for it, or, with
    `no_wait`, the run does not start (LockedError). `executor` names a registered executor (`local`, `dask`, ...),
    made for this run and closed after it, or is an `Executor` the caller made and closes itself. `preload=False`
    has the kernels import everything themselves (`preload = false` in nbflow.toml for every run). `on_record` is
    called inside the transaction that records the run (the scheduler claims its slot there): raising there leaves
    no trace of the run, and the error is raised here. With `upstream=False` only the targets run: their upstream
    is taken as done (its outputs must be there); with `downstream=True` what lies downstream of the targets runs
    too."""
    prepared = prepare(pipeline, targets, params, grid, upstream, downstream)
    project = prepared.pipeline.project
    store = open_store(project.store_dir)
    run_id = new_run_id()
    try:
        options = ExecutorOptions(
            run_id=run_id,
            workers=workers or project.workers,  # -j, else `workers` in nbflow.toml, else the executor's default
            address=dask_address,
            prewarm=prewarm,
            preload=preload_plan(prepared.pipeline, prepared.selected) if preload else NO_PRELOAD,
            on_kernel_pid=lambda job, pid: store.update_task(run_id, job.task, kernel_pid=pid),
        )
        chosen = make_executor(executor, options) if isinstance(executor, str) else executor
        try:
            recorded, run_grid = prepared.recorded_params, prepared.pipeline.run_grid
            instances = [prepared.pipeline.tasks[name] for name in prepared.selected]
            tasks = {t.name: TaskRun(t.name, task=t.base, grid=t.grid) for t in instances}
            run = Run(run_id, trigger, recorded, tasks, started_at=iso(now()), grid=run_grid)
            claims = Claims.of(store, run_id, prepared.pipeline, prepared.selected)
            store.create_run(
                run_id,
                trigger,
                recorded,
                list(targets or []),
                list(tasks.values()),
                grid=run_grid,
                claims=claims.keys,
                within=lambda inside: _recording(inside, claims if no_wait else None, on_record),
            )
            try:
                claims.started()
                stop_orphan_kernels(store)
                runner = Runner(
                    prepared,
                    store,
                    chosen,
                    run,
                    claims=claims,
                    force=force,
                    fail_fast=fail_fast,
                    timeout=timeout,
                    retries=retries,
                    on_event=on_event,
                )
                if on_start:
                    on_start(runner)
            except BaseException as exc:  # recorded but never going: not left `running` (a schedule would wait on it)
                store.finish_run(run_id, RunState.FAILED, f"the run could not start: {exc}")
                raise
            with ProgressRecorder(chosen, store, run):
                return runner.execute()
        finally:
            if chosen is not executor:
                chosen.close()
    finally:
        store.close_all()  # the executor's threads wrote kernel pids through it too


def _recording(store: Store, refusing: Claims | None, on_record: Callable[[Store], None] | None) -> None:
    """What runs inside the transaction recording a run: refusing it when an older run holds one of its instances
    (`no_wait`), then the caller's `on_record`."""
    if refusing is not None:
        refusing.refuse_if_claimed(store)
    if on_record is not None:
        on_record(store)
