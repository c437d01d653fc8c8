"""The one scheduling loop: ready tasks go to the executor, completions drive what runs next (SPEC section 3).

The loop blocks in `concurrent.futures.wait(FIRST_COMPLETED)`, waking only when a task finishes, a timeout falls
due, or a cancel is asked for; it never polls. It alone decides states and writes them to the store as they happen,
so a crash loses nothing that finished. Executors differ only in how a job is submitted (`nbflow.run.jobs`).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from nbflow import fingerprint
from nbflow.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, PipelineError, Problem, UsageError
from nbflow.graph import Pipeline, Task, did_you_mean
from nbflow.history import open_store
from nbflow.run.jobs import Executor, Job, JobResult
from nbflow.run.lock import ProjectLock
from nbflow.store import Store, duration, iso, now

FINISHED = ("succeeded", "skipped")
TERMINAL = ("succeeded", "skipped", "failed", "upstream_failed", "cancelled")


@dataclass
class TaskResult:
    name: str
    state: str = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    error: dict | None = None
    output_notebook: Path | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at) if self.started_at and self.finished_at else None


@dataclass
class Run:
    """A run of the pipeline: returned by `Pipeline.run`, and what the progress display follows."""

    id: str
    trigger: str
    params: dict[str, Any]
    tasks: dict[str, TaskResult]
    state: str = "running"
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def duration_s(self) -> float | None:
        return duration(self.started_at, self.finished_at)

    @property
    def exit_code(self) -> int:
        return {"succeeded": EXIT_OK, "cancelled": EXIT_INTERRUPTED}.get(self.state, EXIT_TASK_FAILED)


def new_run_id() -> str:
    """Sorts by start time: UTC timestamp to the millisecond, then a random suffix."""
    stamp = time.time()
    return (
        time.strftime("%Y%m%dT%H%M%S", time.gmtime(stamp)) + f"{int(stamp * 1000) % 1000:03d}-" + secrets.token_hex(2)
    )


def split_params(params: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`{"x": 1, "clean.y": 2}` -> pipeline parameters `{"x": 1}` and per-task ones `{"clean": {"y": 2}}`."""
    pipeline_params: dict[str, Any] = {}
    task_params: dict[str, dict[str, Any]] = {}
    for key, value in (params or {}).items():
        if "." in key:
            task, name = key.rsplit(".", 1)
            task_params.setdefault(task, {})[name] = value
        else:
            pipeline_params[key] = value
    return pipeline_params, task_params


def prepare(
    pipeline: Pipeline, targets: Iterable[str] | None, params: Mapping[str, Any] | None
) -> tuple[Pipeline, list[str], dict[str, dict[str, Any]]]:
    """Resolve with the run's parameters, select the tasks, and check every name given; nothing runs yet."""
    pipeline_params, task_params = split_params(params)
    problems = []
    for task, names in task_params.items():
        if task not in pipeline.specs:
            problems.append(
                Problem(
                    "unknown-param",
                    f"-p {task}.{next(iter(names))}: {task!r} is no task{did_you_mean(task, pipeline.specs)}.",
                )
            )
            continue
        for name in names:
            if name not in pipeline.specs[task].params:
                problems.append(
                    Problem(
                        "unknown-param",
                        f"-p {task}.{name}: {pipeline.specs[task].notebook.name} "
                        f"does not assign `{name}` in its parameters cell"
                        f"{did_you_mean(name, pipeline.specs[task].params)}.",
                    )
                )
    if problems:
        raise UsageError(PipelineError(problems).describe())
    resolved = pipeline.with_params(pipeline_params, task_params) if params else pipeline
    selected = resolved.select(targets)
    known = set(pipeline.project.params).union(*(resolved.specs[t].params for t in selected))
    unknown = [name for name in pipeline_params if name not in known]
    if unknown:
        raise UsageError(
            "\n".join(
                f"-p {name}: no selected task assigns `{name}` in its parameters cell"
                f"{did_you_mean(name, known)}; check the name."
                for name in unknown
            )
        )
    _check_sources(resolved, selected)
    return resolved, selected, task_params


def _check_sources(pipeline: Pipeline, selected: list[str]) -> None:
    problems = []
    for name in selected:
        task = pipeline.tasks[name]
        written = {via for pred in pipeline.graph.predecessors(name) for via in pipeline.graph.edges[pred, name]["via"]}
        for path in task.input_paths:
            if path not in written and not os.path.exists(path):
                problems.append(
                    Problem(
                        "missing-source",
                        f"{task.notebook}: input {pipeline.project.relative(path)} "
                        "does not exist and no task writes it; create it, fix the "
                        "path, or add the task that writes it.",
                    )
                )
    if problems:
        raise PipelineError(problems)


def injected_parameters(pipeline: Pipeline, task: Task, task_params: Mapping[str, Any]) -> dict[str, Any]:
    """What papermill injects: inputs/outputs as paths that open from the notebook's folder, relative where the
    declaration was relative (so executed notebooks stay portable), and the parameters set from outside."""
    folder = task.spec.notebook.parent

    def portable(declared: Any, filled: Any) -> Any:
        if isinstance(declared, dict):
            return {key: portable(declared[key], filled[key]) for key in declared}
        if isinstance(declared, list):
            return [portable(d, f) for d, f in zip(declared, filled)]
        if os.path.isabs(os.path.expanduser(declared)):
            return filled
        relative = os.path.relpath(filled, folder)
        return relative + "/" if filled.endswith("/") else relative

    injected = {k: v for k, v in task.params.items() if k in pipeline.params or k in task_params}
    for name in ("inputs", "outputs"):
        declared = getattr(task.spec, name)
        if declared or declared == [] and name in task.spec.code_cells[task.spec.parameters_cell_index]:
            injected[name] = portable(declared, getattr(task, name))
    return injected


class Runner:
    """Drives one run of the selected tasks through an executor."""

    def __init__(
        self,
        pipeline: Pipeline,
        selected: list[str],
        task_params: Mapping[str, Mapping[str, Any]],
        store: Store,
        executor: Executor,
        run: Run,
        *,
        force: bool = False,
        fail_fast: bool = False,
        timeout: float | None = None,
        retries: int | None = None,
        on_event: Callable[[Run, TaskResult], None] | None = None,
    ):
        self.pipeline, self.selected, self.task_params = pipeline, selected, task_params
        self.store, self.executor, self.run = store, executor, run
        self.force, self.fail_fast = force, fail_fast
        self.timeout, self.retries = timeout, retries
        self.on_event = on_event or (lambda run, task: None)
        self.graph = pipeline.graph.subgraph(selected)
        self.runs_dir = pipeline.project.store_dir / "runs" / run.id
        self._cancel = Future()
        self._running: dict[Future, tuple[Job, float | None]] = {}
        self._fingerprints: dict[str, dict] = {}

    # -- the loop -----------------------------------------------------------------------------------------------

    def execute(self) -> Run:
        waiting = {name: self.graph.in_degree(name) for name in self.selected}
        ready = [name for name in self.selected if waiting[name] == 0]  # upstream all finished, not yet judged
        queue: list[str] = []  # judged stale, waiting for a free slot
        stopping = False
        try:
            while ready or queue or self._running:
                while ready:  # judging needs no slot: an up-to-date task is skipped at once, freeing its dependants
                    name = ready.pop(0)
                    if self._judge(name):
                        queue.append(name)
                    else:
                        ready.extend(self._release(name, waiting))
                if stopping:
                    queue.clear()
                else:
                    self._prewarm(queue)
                    while queue and len(self._running) < self.executor.capacity:
                        self._submit(queue.pop(0), 1)
                    self._prewarm(queue)  # the submissions changed what comes next
                if not self._running:
                    break
                done, _ = wait(
                    [*self._running, self._cancel], timeout=self._next_deadline(), return_when=FIRST_COMPLETED
                )
                if self._cancel.done() and not stopping:
                    stopping = True
                    self._stop_all("cancelled")
                self._enforce_timeouts()
                for future in done:
                    if future is self._cancel:
                        continue
                    job, _ = self._running.pop(future)
                    outcome = self._finish(job, future.result())
                    if outcome == "retry":
                        self._submit(job.task, job.attempt + 1)
                    elif outcome in FINISHED and not stopping:
                        ready.extend(self._release(job.task, waiting))
                    elif outcome == "failed" and self.fail_fast and not stopping:
                        stopping = True
                        self._stop_all("cancelled")
        except KeyboardInterrupt:
            stopping = True
            self._cancel.set_result(None) if not self._cancel.done() else None
            self._stop_all("cancelled")
            self._drain()
        finally:
            self._close_run()
        return self.run

    def cancel(self) -> None:
        """Ask the loop to stop: running kernels are killed, their tasks and all pending ones `cancelled`."""
        if not self._cancel.done():
            self._cancel.set_result(None)

    # -- one task -------------------------------------------------------------------------------------------------

    def _judge(self, name: str) -> bool:
        """True when the task must run; an up-to-date one is marked skipped here."""
        task = self.pipeline.tasks[name]
        relative = self.pipeline.project.relative
        current = fingerprint.task_fingerprint(task, self.store, relative)
        self._fingerprints[name] = current
        last = self.store.last_success(name)
        reasons = fingerprint.stale_reasons(
            current, fingerprint.output_hashes(task, self.store, relative), last[1] if last else None
        )
        result = self.run.tasks[name]
        result.reasons = reasons if not self.force else ["--force"]
        if reasons or self.force:
            return True
        stamp = iso(now())
        self._set(name, "skipped", started_at=stamp, finished_at=stamp)
        return False

    def _job(self, name: str, attempt: int) -> Job:
        task = self.pipeline.tasks[name]
        output = self.runs_dir / (name.replace("/", "__") + ".ipynb")
        return Job(
            task=name,
            notebook=str(task.spec.notebook),
            output_notebook=str(output),
            cwd=str(task.spec.notebook.parent),
            kernel=task.spec.kernel,
            parameters=injected_parameters(self.pipeline, task, self.task_params.get(name, {})),
            attempt=attempt,
        )

    def _submit(self, name: str, attempt: int) -> None:
        task = self.pipeline.tasks[name]
        job = self._job(name, attempt)
        output = Path(job.output_notebook)
        if attempt > 1 and output.exists():  # keep every attempt's notebook
            output.rename(output.with_name(f"{output.stem}.attempt-{attempt - 1}.ipynb"))
        for path in task.output_paths:  # so a notebook can simply open its outputs for writing
            os.makedirs(os.path.dirname(path.rstrip("/")), exist_ok=True)
        timeout = self._option(task, "timeout")
        future = self.executor.submit(job)
        self._running[future] = (job, time.monotonic() + timeout if timeout else None)
        self._set(
            name,
            "running",
            attempts=attempt,
            started_at=self.run.tasks[name].started_at or iso(now()),
            output_notebook=output,
            error=None,
        )

    def _finish(self, job: Job, result: JobResult) -> str:
        name, task = job.task, self.pipeline.tasks[job.task]
        if result.notebook_bytes is not None:  # the executor ran it elsewhere: keep its executed notebook here
            Path(job.output_notebook).parent.mkdir(parents=True, exist_ok=True)
            Path(job.output_notebook).write_bytes(result.notebook_bytes)
        if result.kernel_log is not None:  # likewise its kernel's output, appended as a local kernel's would be
            Path(job.output_notebook).parent.mkdir(parents=True, exist_ok=True)
            with open(os.path.splitext(job.output_notebook)[0] + ".kernel.log", "ab") as log:
                log.write(result.kernel_log)
        error = result.error
        state = result.state
        if state == "succeeded":
            missing = [p for p in task.output_paths if not os.path.exists(p)]
            if missing:
                state = "failed"
                error = {
                    "ename": "OutputNotWritten",
                    "cell_index": None,
                    "traceback": [],
                    "evalue": "declared output not written: "
                    + ", ".join(self.pipeline.project.relative(p) for p in missing),
                }
        self.store.record_attempt(self.run.id, name, job.attempt, state, result.started_at, result.finished_at, error)
        if state == "failed" and job.attempt <= self._option(task, "retries", 0) and not self._cancel.done():
            return "retry"
        if state == "succeeded":
            relative = self.pipeline.project.relative
            outputs = fingerprint.output_hashes(task, self.store, relative)
            self.store.record_success(name, self.run.id, {**self._fingerprints[name], "outputs": outputs})
        self._set(name, state, finished_at=result.finished_at, error=error)
        if state == "failed":
            for downstream in nx.descendants(self.graph, name):
                if self.run.tasks[downstream].state == "pending":
                    self._set(
                        downstream,
                        "upstream_failed",
                        error={
                            "ename": "UpstreamFailed",
                            "evalue": f"upstream task {name} failed",
                            "cell_index": None,
                            "traceback": [],
                        },
                    )
        return state

    def _prewarm(self, queue: list[str]) -> None:
        upcoming = self._upcoming(queue)[: self.executor.capacity]  # no executor prepares further ahead than that
        if upcoming:
            self.executor.prepare([self._job(name, 1) for name in upcoming])

    def _upcoming(self, queue: list[str]) -> list[str]:
        """Tasks likely to be submitted next, in order: the queued ones, then pending ones whose upstream is all
        running, finished or itself upcoming (they will run unless what they read comes out unchanged)."""
        tasks = self.run.tasks
        expected = {n for n, r in tasks.items() if r.state in ("running", *FINISHED)} | set(queue)
        upcoming = list(queue)
        for name in self.selected:
            if (
                tasks[name].state == "pending"
                and name not in expected
                and all(p in expected for p in self.graph.predecessors(name))
            ):
                upcoming.append(name)
                expected.add(name)
        return upcoming

    def _release(self, name: str, waiting: dict[str, int]) -> list[str]:
        """Dependants of a finished task whose upstream is now all finished."""
        now_ready = []
        for downstream in self.graph.successors(name):
            waiting[downstream] -= 1
            if waiting[downstream] == 0 and self.run.tasks[downstream].state == "pending":
                now_ready.append(downstream)
        return now_ready

    def _option(self, task: Task, key: str, default: Any = None) -> Any:
        """CLI / API value, else the notebook's metadata.nbflow, else nbflow.toml."""
        for value in (getattr(self, key), getattr(task.spec, key), getattr(self.pipeline.project, key)):
            if value is not None:
                return value
        return default

    # -- time, stopping, recording --------------------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        deadlines = [deadline for _, deadline in self._running.values() if deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _enforce_timeouts(self) -> None:
        moment = time.monotonic()
        for job, deadline in self._running.values():
            if deadline is not None and moment >= deadline:
                self.executor.stop(job, "timeout")

    def _stop_all(self, reason: str) -> None:
        for job, _ in self._running.values():
            self.executor.stop(job, reason)

    def _drain(self) -> None:
        """After a Ctrl-C: wait for the killed jobs to come back, then record them."""
        while self._running:
            try:
                done, _ = wait(list(self._running), timeout=30, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                continue
            if not done:
                break
            for future in done:
                job, _ = self._running.pop(future)
                self._finish(job, future.result())

    def _set(self, name: str, state: str, **fields: Any) -> None:
        result = self.run.tasks[name]
        result.state = state
        for key, value in fields.items():
            setattr(result, key, value)
        stored = {k: (self.pipeline.project.relative(v) if isinstance(v, Path) else v) for k, v in fields.items()}
        self.store.update_task(self.run.id, name, state=state, reasons=result.reasons, **stored)
        self.on_event(self.run, result)

    def _close_run(self) -> None:
        for name, result in self.run.tasks.items():
            if result.state in ("pending", "running"):
                self._set(name, "cancelled", finished_at=iso(now()))
        states = {r.state for r in self.run.tasks.values()}
        if self._cancel.done():
            self.run.state = "cancelled"
        elif states & {"failed", "upstream_failed", "cancelled"}:
            self.run.state = "failed"
        else:
            self.run.state = "succeeded"
        self.store.finish_run(self.run.id, self.run.state)
        self.run.finished_at = iso(now())


def make_executor(
    kind: str, workers: int | None, store: Store, run_id: str, dask_address: str | None = None, prewarm: bool = True
) -> Executor:
    """The executor registry: `local` (threads + papermill) or `dask` (a dask.distributed cluster)."""
    if kind == "local":
        from nbflow.run.local import LocalExecutor

        return LocalExecutor(
            workers or os.cpu_count() or 1,
            prewarm=prewarm,
            on_kernel_pid=lambda job, pid: store.update_task(run_id, job.task, kernel_pid=pid),
        )
    if kind == "dask":
        from nbflow.run.dask import DaskExecutor

        return DaskExecutor(dask_address, run_id=run_id, max_workers=workers)
    raise UsageError(f"unknown executor {kind!r} (known: local, dask)")


def plan(
    pipeline: Pipeline,
    targets: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    force: bool = False,
) -> list[tuple[str, str, list[str]]]:
    """What a run would do, without running: (task, "run" | "skip" | "run if upstream changes", reasons)."""
    resolved, selected, _ = prepare(pipeline, targets, params)
    store = open_store(resolved.project)
    relative = resolved.project.relative
    actions: dict[str, str] = {}
    steps = []
    for name in selected:
        task = resolved.tasks[name]
        last = store.last_success(name)
        current = fingerprint.task_fingerprint(task, store, relative)
        reasons = (
            ["--force"]
            if force
            else fingerprint.stale_reasons(
                current, fingerprint.output_hashes(task, store, relative), last[1] if last else None
            )
        )
        upstream = [u for u in resolved.graph.predecessors(name) if actions.get(u, "skip") != "skip"]
        if reasons:
            actions[name] = "run"
        elif upstream:
            actions[name] = "run if upstream changes"
            reasons = [f"upstream {u} will run" for u in upstream]
        else:
            actions[name] = "skip"
        steps.append((name, actions[name], reasons))
    store.close()
    return steps


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
    executor: str = "local",
    dask_address: str | None = None,
    prewarm: bool = True,
    trigger: str = "api",
    on_event: Callable[[Run, TaskResult], None] | None = None,
    on_start: Callable[[Runner], None] | None = None,
) -> Run:
    """Run the targets (default: all) and their upstream; blocks until done and returns the Run."""
    resolved, selected, task_params = prepare(pipeline, targets, params)
    project = resolved.project
    # -j, else `workers` in nbflow.toml, else the CPU count; on a Dask cluster, else the cluster's threads
    workers = workers or project.workers or (None if executor == "dask" else os.cpu_count() or 1)
    store = open_store(project)
    lock = ProjectLock(project.store_dir)
    run_id = new_run_id()
    lock.acquire(run_id)
    try:
        recorded = {
            **resolved.params,
            **{f"{t}.{k}": v for t, values in task_params.items() for k, v in values.items()},
        }
        chosen = make_executor(executor, workers, store, run_id, dask_address, prewarm)
        run = Run(run_id, trigger, recorded, {name: TaskResult(name) for name in selected}, started_at=iso(now()))
        store.create_run(run_id, trigger, recorded, list(targets or []), selected)
        runner = Runner(
            resolved,
            selected,
            task_params,
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
            chosen.close()
    finally:
        lock.release()
        store.close()
