"""The one scheduling loop: ready tasks go to the executor, completions drive what runs next.

The loop blocks in `concurrent.futures.wait(FIRST_COMPLETED)`, waking only when a task finishes, a timeout falls
due, or a cancel is asked for; it polls only while an instance waits for another run that holds it (`claims`).
It alone decides states and writes them to the store as they happen, so a crash loses nothing that finished. It
never knows which executor it drives (`nbflow.run.jobs`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from types import ModuleType
from typing import Any

import networkx as nx

from nbflow import fingerprint, masking, paths
from nbflow.declare import paths_of
from nbflow.errors import StoreError
from nbflow.graph import Task
from nbflow.grids import notebook_file_name
from nbflow.models import Run, RunState, TaskError, TaskRun, TaskState
from nbflow.run.claims import POLL_S, Claims
from nbflow.run.jobs import Executor, Job, JobResult, StopReason
from nbflow.run.prepare import Prepared, injected_parameters
from nbflow.store import Store
from nbflow.store.reports import Report, record_report
from nbflow.times import iso, now

EventHook = Callable[[Run, TaskRun], None]


class _Retry(Exception):
    """A failed attempt that has retries left: `_finish` raises it, the loop submits the next attempt."""


def _load_report_writer() -> Future[ModuleType]:
    """`nbflow.run.report`, imported and made ready in a thread of its own. nbconvert takes about a second to import
    and its templates half as long to compile: paid while the first tasks run, not after the first report's
    notebook, when the loop would wait for it. Only that thread imports the module, so no other sees it
    half-imported."""
    loaded: Future[ModuleType] = Future()

    def load() -> None:
        try:
            from nbflow.run import report
        except BaseException as exc:  # raised where the report is written, as an import there would be
            loaded.set_exception(exc)
            return
        with contextlib.suppress(Exception):  # a conversion that fails says why when a report is written
            report.warm_up()
        loaded.set_result(report)

    threading.Thread(target=load, name="nbflow-report-writer", daemon=True).start()
    return loaded


class Runner:
    """Drives one run of the selected tasks through an executor."""

    def __init__(
        self,
        prepared: Prepared,
        store: Store,
        executor: Executor,
        run: Run,
        *,
        claims: Claims | None = None,
        force: bool = False,
        fail_fast: bool = False,
        timeout: float | None = None,
        retries: int | None = None,
        on_event: EventHook | None = None,
    ):
        self.pipeline, self.selected, self.task_params = prepared.pipeline, prepared.selected, prepared.task_params
        self.store, self.executor, self.run = store, executor, run
        self.claims = claims  # None: no other run can hold what this one runs (tests of the loop alone)
        self.force, self.fail_fast = force, fail_fast
        self.timeout, self.retries = timeout, retries
        self.on_event: EventHook = on_event or (lambda run, task: None)
        self.graph = self.pipeline.graph.subgraph(self.selected)
        self.runs_dir = self.pipeline.project.store_dir / "runs" / run.id
        self._cancel: Future[None] = Future()
        self._stopping = False  # cancelled, failed fast or interrupted: finish what runs, start nothing
        self._running: dict[Future[JobResult], tuple[Job, float | None]] = {}
        self._waiting: dict[str, str] = {}  # ready instances another run holds -> that run's id
        self._fingerprints: dict[str, dict[str, Any]] = {}
        self._outputs_before: dict[str, dict[str, paths.Signature | None]] = {}
        self._store_error: StoreError | None = None  # the store stopped taking writes (a full disk): the run ends
        self._writes_reports = any(self.pipeline.tasks[name].report for name in self.selected)
        self._report_writer: Future[ModuleType] | None = None  # nbflow.run.report, from the first submission on
        # kept as states change, so looking ahead costs what it finds, not a scan of every instance each round
        self._unstarted = {n: None for n in self.selected if run.tasks[n].state is TaskState.PENDING}  # in order
        self._expected = {n for n in self.selected if run.tasks[n].state is TaskState.RUNNING or run.tasks[n].state.ok}

    # -- the loop -----------------------------------------------------------------------------------------------

    def execute(self) -> Run:
        upstream_left = {name: self.graph.in_degree(name) for name in self.selected}
        ready = deque(name for name in self.selected if upstream_left[name] == 0)  # upstream finished, not judged
        queue: list[str] = []  # judged stale, waiting for a free slot
        try:
            while ready or queue or self._running or self._waiting:
                ready.extend(self._no_longer_held())
                # Judging needs no slot (an up-to-date task is skipped at once, freeing its dependants), but a
                # thousand ready tasks take a while to judge: enough of them first to fill the free slots and the
                # kernels started ahead, then the rest while those run.
                self._judge_ready(ready, queue, upstream_left, enough=self._free_slots() + self.executor.capacity)
                if not self._stopping:
                    self._submit_queued(queue)
                self._judge_ready(ready, queue, upstream_left, enough=None)
                if self._stopping:
                    queue.clear()
                    self._waiting.clear()
                else:
                    self._submit_queued(queue)
                    self._prewarm(queue)  # the submissions changed what comes next
                if not self._running and not self._waiting:
                    break
                if self.claims:
                    self.claims.flush()
                waited: list[Future[Any]] = [*self._running, self._cancel]
                done, _ = wait(waited, timeout=self._next_deadline(), return_when=FIRST_COMPLETED)
                if self._cancel.done() and not self._stopping:
                    self._stop_all(StopReason.CANCELLED)
                self._enforce_timeouts()
                for future in done:
                    if future is self._cancel:
                        continue
                    job, _ = self._running.pop(future)
                    try:
                        state = self._finish(job, future.result())
                    except _Retry:
                        self._submit(job.task, job.attempt + 1)
                        continue
                    if state.ok and not self._stopping:
                        ready.extend(self._release(job.task, upstream_left))
                    elif state is TaskState.FAILED and self.fail_fast and not self._stopping:
                        self._stop_all(StopReason.CANCELLED)
        except KeyboardInterrupt:
            if not self._cancel.done():
                self._cancel.set_result(None)
            self._stop_all(StopReason.CANCELLED)
            self._drain()
        except StoreError as exc:
            # Nothing more can be recorded, so nothing more may run: what runs is stopped, the error raised with
            # its own reason (the executed notebooks so far stay where they are).
            self._store_error = exc
            self._stop_all(StopReason.CANCELLED)
            raise
        finally:
            self._close_run()
        return self.run

    def _judge_ready(
        self, ready: deque[str], queue: list[str], upstream_left: dict[str, int], enough: int | None
    ) -> None:
        """Judge ready tasks until `enough` wait in the queue (None: all of them): a stale one is queued, an
        up-to-date one skipped (its dependants ready to be judged in turn), one another run holds left waiting."""
        while ready and (enough is None or len(queue) < enough):
            name = ready.popleft()
            if self._held_elsewhere(name):
                continue
            if self._judge(name):
                queue.append(name)
            else:
                ready.extend(self._release(name, upstream_left))

    def _free_slots(self) -> int:
        return max(0, self.executor.capacity - len(self._running))

    def _submit_queued(self, queue: list[str]) -> None:
        """Start the queued tasks the free slots take, with the kernels of those after them started ahead."""
        if not queue or not self._free_slots():
            return
        self._prewarm(queue)
        while queue and len(self._running) < self.executor.capacity:
            self._submit(queue.pop(0), 1)

    def cancel(self) -> None:
        """Ask the loop to stop: running kernels are killed, their tasks and all pending ones `cancelled`."""
        if not self._cancel.done():
            self._cancel.set_result(None)

    # -- one task -------------------------------------------------------------------------------------------------

    def _held_elsewhere(self, name: str) -> bool:
        """True when an older run that is still going holds this instance: it waits (state `waiting`)."""
        holder = self.claims.holder(name) if self.claims else None
        if holder is None:
            return False
        if self._waiting.get(name) != holder.run_id:
            self.run.tasks[name].reasons = [f"waiting for run {holder.run_id}, which has {holder.instance} to run"]
            self._set(name, TaskState.WAITING)
        self._waiting[name] = holder.run_id
        return True

    def _no_longer_held(self) -> list[str]:
        """Waiting instances whose holder is done with them (or died): ready to be judged."""
        free = [name for name in self._waiting if self.claims and self.claims.holder(name) is None]
        for name in free:
            del self._waiting[name]
        return free

    def _judge(self, name: str) -> bool:
        """True when the task must run; an up-to-date one is marked skipped here."""
        task = self.pipeline.tasks[name]
        verdict = fingerprint.judge(task, self.store, self.pipeline.project.relative, force=self.force)
        self._fingerprints[name] = verdict.fingerprint
        self.run.tasks[name].reasons = verdict.reasons
        if verdict.must_run:
            return True
        stamp = iso(now())
        self._set(name, TaskState.SKIPPED, fingerprint=verdict.fingerprint, started_at=stamp, finished_at=stamp)
        return False

    def _job(self, name: str, attempt: int) -> Job:
        task = self.pipeline.tasks[name]
        output = self.runs_dir / notebook_file_name(name)
        parameters = injected_parameters(self.pipeline, task, self.task_params.get(name, {}))
        return Job(
            task=name,
            notebook=str(task.spec.notebook),
            output_notebook=str(output),
            cwd=str(task.spec.notebook.parent),
            kernel=task.spec.kernel,
            parameters=parameters,
            attempt=attempt,
            environment=masking.environment(parameters),
        )

    def _submit(self, name: str, attempt: int) -> None:
        task = self.pipeline.tasks[name]
        job = self._job(name, attempt)
        output = Path(job.output_notebook)
        if attempt > 1 and output.exists():  # keep every attempt's notebook
            output.rename(output.with_name(f"{output.stem}.attempt-{attempt - 1}.ipynb"))
        # what the outputs are before the attempt, to tell afterwards that this attempt wrote them (the report is
        # nbflow's to write, after a success)
        self._outputs_before[name] = {path: paths.signature(path) for path in paths_of(task.outputs)}
        for path in paths_of(task.outputs):  # so a notebook can simply open its outputs (or write into its folders)
            os.makedirs(path if path.endswith("/") else os.path.dirname(path), exist_ok=True)
        if self._writes_reports and self._report_writer is None:  # a run with work to do, and reports to write
            self._report_writer = _load_report_writer()
        timeout = self._option(task, "timeout")
        future = self.executor.submit(job)
        self._running[future] = (job, time.monotonic() + timeout if timeout else None)
        self._set(
            name,
            TaskState.RUNNING,
            attempts=attempt,
            started_at=self.run.tasks[name].started_at or iso(now()),
            output_notebook=output,
            error=None,
            fingerprint=self._fingerprints[name],
        )

    def _finish(self, job: Job, result: JobResult) -> TaskState:
        """Record a finished attempt; its final state, or `_Retry` when it failed with retries left."""
        name, task = job.task, self.pipeline.tasks[job.task]
        state, error = result.state, result.error
        if state is TaskState.SUCCEEDED:
            before = self._outputs_before[name]
            unwritten = [p for p in before if paths.signature(p) in (None, before[p])]
            not_files = [(p, kind) for p in before if (kind := paths.not_a_file(p))]
            if unwritten:
                state = TaskState.FAILED
                error = TaskError.output_not_written(self.pipeline.project.relative(p) for p in unwritten)
            elif not_files:
                state = TaskState.FAILED
                error = TaskError.output_not_a_file((self.pipeline.project.relative(p), k) for p, k in not_files)
            elif task.report:
                error = self._write_report(job, task)
                state = TaskState.FAILED if error else state
        self.store.record_attempt(self.run.id, name, job.attempt, state, result.started_at, result.finished_at, error)
        if state is TaskState.FAILED and job.attempt <= self._option(task, "retries", 0) and not self._stopping:
            raise _Retry
        if state is TaskState.SUCCEEDED:
            outputs = fingerprint.output_hashes(task, self.store, self.pipeline.project.relative)
            self.store.record_success(task.base, self.run.id, {**self._fingerprints[name], "outputs": outputs})
        self._set(name, state, finished_at=result.finished_at, error=error)
        if state is TaskState.FAILED:
            for downstream in nx.descendants(self.graph, name):
                if self.run.tasks[downstream].state is TaskState.PENDING:
                    self._set(downstream, TaskState.UPSTREAM_FAILED, error=TaskError.upstream_failed(name))
        return state

    def _write_report(self, job: Job, task: Task) -> TaskError | None:
        """Write a succeeded instance's report, first as the run's copy, then at its declared path; the error that
        fails the task when either cannot be written (the declared path then keeps the last good report)."""
        assert task.report is not None and self._report_writer is not None  # started at the first submission
        report = self._report_writer.result()
        copy = self.runs_dir / (Path(notebook_file_name(task.name)).stem + ".html")
        try:
            report.write_report(
                Path(job.output_notebook), task.name, [copy, Path(task.report)], task.spec.notebook.parent, task.grid
            )
        except report.ReportError as exc:
            return TaskError.report_not_written(self.pipeline.project.relative(task.report), str(exc))
        params = self._fingerprints[task.name]["params"]
        record_report(
            self.store,
            Report(self.run.id, task.name, task.base, task.grid, params, Path(task.report), copy, iso(now())),
        )
        return None

    def _prewarm(self, queue: list[str]) -> None:
        upcoming = self._upcoming(queue, self.executor.capacity)  # no executor prepares further ahead than that
        if upcoming:
            self.executor.prepare([self._job(name, 1) for name in upcoming])

    def _upcoming(self, queue: list[str], limit: int) -> list[str]:
        """Up to `limit` tasks likely to be submitted next, in order: the queued ones, then pending ones whose
        upstream is all running, finished or itself upcoming (they will run unless what they read comes out
        unchanged)."""
        upcoming = queue[:limit]
        chosen = set(queue)
        for name in self._unstarted:
            if len(upcoming) >= limit:
                break
            if name not in chosen and all(p in self._expected or p in chosen for p in self.graph.predecessors(name)):
                upcoming.append(name)
                chosen.add(name)
        return upcoming

    def _release(self, name: str, upstream_left: dict[str, int]) -> list[str]:
        """Dependants of a finished task whose upstream is now all finished."""
        now_ready = []
        for downstream in self.graph.successors(name):
            upstream_left[downstream] -= 1
            if upstream_left[downstream] == 0 and self.run.tasks[downstream].state is TaskState.PENDING:
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
        if self._waiting:
            deadlines.append(time.monotonic() + POLL_S)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _enforce_timeouts(self) -> None:
        moment = time.monotonic()
        for future, (job, deadline) in self._running.items():
            if deadline is not None and moment >= deadline:
                self.executor.stop(job, StopReason.TIMEOUT)
                self._running[future] = (job, None)  # stopped once: now wait for it to report back

    def _stop_all(self, reason: StopReason) -> None:
        """Stop every running job; from now on nothing new starts and no failure is retried."""
        self._stopping = True
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
                self._finish(job, future.result())  # the run is cancelled, so no attempt is retried

    def _set(self, name: str, state: TaskState, *, fingerprint: dict[str, Any] | None = None, **fields: Any) -> None:
        """The instance's new state and fields, in the run and in the store; `fingerprint` (what it was judged
        with) goes to the store only, for `nbflow diff`."""
        result = self.run.tasks[name]
        result.state = state
        if state is TaskState.PENDING:
            self._unstarted.setdefault(name)  # back from waiting for another run
        else:
            self._unstarted.pop(name, None)
        if state is TaskState.RUNNING or state.ok:
            self._expected.add(name)
        else:
            self._expected.discard(name)
        for key, value in fields.items():
            setattr(result, key, value)
        kept = {"fingerprint": fingerprint} if fingerprint is not None else {}
        self.store.update_task(self.run.id, name, state=state, reasons=result.reasons, **fields, **kept)
        if state.finished and self.claims:
            self.claims.release(name)
        self.on_event(self.run, result)

    def _close_run(self) -> None:
        if self._store_error is not None:
            self.run.state, self.run.finished_at = RunState.FAILED, iso(now())
            try:  # the reason, if the store takes this one last write (else the next command marks it interrupted)
                self.store.finish_run(self.run.id, RunState.FAILED, f"the run store failed: {self._store_error}")
            except StoreError:
                pass
            return
        for name, result in self.run.tasks.items():
            if not result.state.finished:
                self._set(name, TaskState.CANCELLED, finished_at=iso(now()))
        if self._cancel.done():
            self.run.state = RunState.CANCELLED
        elif any(r.state.failed for r in self.run.tasks.values()):
            self.run.state = RunState.FAILED
        else:
            self.run.state = RunState.SUCCEEDED
        self.store.finish_run(self.run.id, self.run.state)
        self.run.finished_at = iso(now())
