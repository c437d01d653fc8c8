"""The Dask executor: each job runs on a `dask.distributed` cluster.

The runner's side (`DaskExecutor`, here) submits one Dask task per job and bridges the Dask future to the
concurrent.futures.Future the runner waits on. The worker's side (`nbflow.run.dask_worker`) runs the job there and
sends the executed notebook and the kernel's log back; the executor writes them at the job's paths before it
resolves the job's Future, so a run's notebooks are where a local run leaves them.

What the cluster decides and what nbflow decides:

- Parallelism: the runner submits at most `capacity` jobs: the cluster's total worker threads (one notebook per
  thread: the thread waits while the kernel process works), or fewer when `-j` / `workers` says so.
- Retries: nbflow's `retries` alone. Dask reruns a task whose worker died (up to the scheduler's
  `allowed-failures`); the task notices that it is such a rerun (a marker it set on its first start is still on
  the scheduler) and reports `WorkerDied` instead of running the notebook a second time behind the runner's back,
  so each nbflow attempt runs the notebook at most once and is recorded once (the marker is a `distributed.Event`
  named after the task's key, cleared when the task is over). A `KilledWorker` (a scheduler configured with
  allowed-failures 0) becomes the same failure.
- Stopping (timeouts, Ctrl-C): Dask cannot interrupt a running task, so `stop` asks every worker to kill the job's
  kernel (`Client.run`); the task then returns normally, its notebook kept. A job not started yet is cancelled.
  A task whose future the cluster releases (the run's client went away) kills its own kernel: it watches its state
  on the worker.
- "running": a task is `running` once submitted. The runner never submits more than the cluster's threads, so it
  starts at once unless other work fills the cluster; the attempt's recorded start is the worker's real one.
- Progress: each task sends its notebook's progress as Dask events on the run's topic (`nbflow.run.dask_progress`).

Only the standard library and nbflow's own modules are imported here at import time: dask is an optional extra.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbflow.declare.reading import ipynb_text
from nbflow.errors import UsageError
from nbflow.models import CellProgress, TaskError, TaskState
from nbflow.run.dask_connect import CONNECT_TIMEOUT, QUICK_CONNECT, connect, import_distributed, scheduler_address
from nbflow.run.dask_progress import DaskProgress, progress_topic
from nbflow.run.dask_worker import WorkerDied, WorkerResult, run_on_worker, stop_on_worker, worker_ready
from nbflow.run.jobs import Executor, ExecutorOptions, Job, JobResult, StopReason
from nbflow.times import iso, now
from nbflow.version import __version__

CAPACITY_TTL = 2.0  # seconds between two asks for the cluster's thread count
STOP_TIMEOUT = 30.0  # seconds a stop or clean-up call to the cluster may take
TRACEBACK_LINES = 30


class DaskSubmitError(Exception):
    """The task could not be submitted to the cluster."""


class DaskCancelled(Exception):
    """The cluster dropped the task: the connection to its scheduler was lost, or it was shut down."""


class DaskError(Exception):
    """The task's result could not be fetched from the cluster."""


@dataclass
class _Submitted:
    job: Job
    key: str
    result: Future[JobResult]  # what the runner waits on
    dask_future: Any = None
    stop_reason: StopReason | None = None
    forgotten: bool = False  # its marker is off the scheduler
    lock: threading.Lock = field(default_factory=threading.Lock)


class DaskExecutor(Executor):
    """Runs each job as one task on the Dask cluster at `address`."""

    def __init__(
        self,
        address: str | None,
        run_id: str | None = None,
        max_workers: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        prewarm: bool = True,
        preload: Sequence[str] = (),
    ):
        import_distributed()  # before the address: with no dask here, say how to install it
        self.address = scheduler_address(address)
        self.client = connect(self.address, connect_timeout)
        self._prefix = f"nbflow-{run_id or os.getpid()}"
        self._jobs: dict[tuple[str, int], _Submitted] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers  # -j / `workers`: at most this many of the cluster's threads
        self._capacity = 1
        self._capacity_at = float("-inf")
        self._closed = False
        # stops and clean-ups talk to the cluster; the runner's loop must not wait for them
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nbflow-dask")
        self._plugin: str | None = None  # the run's worker plugin, once registered
        self._progress = DaskProgress(self.client, progress_topic(self._prefix))
        try:
            self._check_workers()
            if prewarm:  # as the local executor: without it, each kernel starts cold
                self._register_plugin(preload)
        except BaseException:  # a UsageError, or Ctrl-C while checking: nothing may stay connected
            self.close()
            raise

    # -- the Executor interface

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> DaskExecutor:
        return cls(
            options.address,
            run_id=options.run_id,
            max_workers=options.workers,
            prewarm=options.prewarm,
            preload=options.preload.modules,  # a worker's kernels wait for all: the spares serve any notebook
        )

    @property
    def capacity(self) -> int:  # type: ignore[override]
        """The cluster's worker threads (at least 1; at most -j when given), asked again every few seconds as
        workers come and go."""
        moment = time.monotonic()
        if moment - self._capacity_at >= CAPACITY_TTL and self.client.status == "running":
            self._capacity_at = moment
            try:
                self._capacity = max(1, sum(self.client.nthreads().values()))
            except Exception:  # keep the last known value; a lost scheduler shows up as failed tasks
                pass
        return min(self._capacity, self._max_workers) if self._max_workers else self._capacity

    def submit(self, job: Job) -> Future[JobResult]:
        key = f"{self._prefix}-{job.task}-{job.attempt}"
        entry = _Submitted(job, key, Future())
        with self._lock:
            self._jobs[(job.task, job.attempt)] = entry
        self._progress.expect(key, job.task)
        try:
            # the notebook runs as fingerprinted here, shared disk or not (a text notebook as jupytext reads it)
            source = ipynb_text(Path(job.notebook)).encode()
            entry.dask_future = self.client.submit(
                run_on_worker, job, source, key, self._plugin, self._progress.topic, key=key, pure=False, retries=0
            )
        except Exception as exc:
            problem = DaskSubmitError(
                f"could not submit the task to the Dask cluster at {self.address}: {type(exc).__name__}: {exc}"
            )
            self._resolve(entry, _failed(problem))
            return entry.result
        entry.dask_future.add_done_callback(lambda future: self._done(entry, future))
        return entry.result

    def stop(self, job: Job, reason: StopReason) -> None:
        with self._lock:
            entry = self._jobs.get((job.task, job.attempt))
        if entry is None or entry.result.done():
            return
        with entry.lock:
            if entry.stop_reason is not None:
                return
            entry.stop_reason = reason
        try:
            self._background.submit(self._stop, entry, reason)
        except RuntimeError:  # closing
            pass

    def progress(self) -> dict[str, CellProgress]:
        return self._progress.moved()

    def close(self) -> None:
        """Cancel what is still on the cluster, remove nbflow's markers from the scheduler, disconnect."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            entries = list(self._jobs.values())
        self._background.shutdown(wait=True)
        connected = self.client.status == "running"
        unfinished = [e.dask_future for e in entries if e.dask_future is not None and not e.dask_future.done()]
        if unfinished and connected:
            try:
                self.client.cancel(unfinished)
            except Exception:
                pass
        for entry in entries:
            if not entry.result.done():
                self._resolve(entry, _stopped(entry.stop_reason or StopReason.CANCELLED))
        if connected:
            self._forget_markers([e for e in entries if not e.forgotten])
            self._unregister_plugin()
            self._progress.close()
            try:
                self.client.close(timeout=STOP_TIMEOUT)
            except Exception:
                pass
            return
        # The scheduler is gone: the client's reconnect loop would log tracebacks nobody can act on (the tasks
        # already failed, saying so), and closing would wait for that loop's own timeout.
        quiet = logging.getLogger("distributed.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL + 1)
        try:
            self.client.close(timeout=QUICK_CONNECT)
        except Exception:
            pass
        finally:
            quiet.setLevel(level)

    # -- inside

    def _check_workers(self) -> None:
        """Every worker must be able to import nbflow: a worker that cannot even unpickle nbflow's task dies of
        it, leaving the run waiting for workers forever. Say so now (exit 2) instead."""
        try:
            answers = self._background.submit(self.client.run, worker_ready, on_error="return").result(
                timeout=STOP_TIMEOUT
            )
        except Exception as exc:  # workers that do not answer in time: their tasks will tell
            print(f"nbflow: could not check the Dask workers ({type(exc).__name__}: {exc}); going on", file=sys.stderr)
            return
        broken = {worker: answer for worker, answer in answers.items() if isinstance(answer, BaseException)}
        if broken:
            listed = "; ".join(f"{worker}: {answer}" for worker, answer in sorted(broken.items()))
            raise UsageError(
                f"{len(broken)} of the {len(answers)} Dask workers at {self.address} cannot run nbflow's "
                f"tasks ({listed}). Install nbflow (this version, {__version__}) in the workers' "
                "environment, with the kernels your notebooks use. Nothing ran."
            )
        if not answers:
            print(
                f"nbflow: the Dask cluster at {self.address} has no workers yet; tasks wait until one joins "
                f"(`dask worker {self.address}`)",
                file=sys.stderr,
            )

    def _register_plugin(self, preload: Sequence[str]) -> None:
        """Give every worker (and each that joins later) a fork server for this run's kernels; a cluster that
        refuses leaves the tasks to start cold kernels, as they did before."""
        from nbflow.run.dask_plugin import NbflowWorkerPlugin, plugin_name

        name = plugin_name(self._prefix)
        try:
            self.client.register_plugin(NbflowWorkerPlugin(preload), name=name)
        except Exception as exc:
            print(
                f"nbflow: could not give the Dask workers a kernel fork server ({type(exc).__name__}: {exc}); "
                "their kernels start cold",
                file=sys.stderr,
            )
            return
        self._plugin = name

    def _unregister_plugin(self) -> None:
        """Stop the run's fork servers and the kernels they started ahead, on every worker."""
        if self._plugin is None:
            return
        try:
            self.client.unregister_worker_plugin(self._plugin)
        except Exception:  # a worker that went away took its fork server with it
            pass

    def _stop(self, entry: _Submitted, reason: StopReason) -> None:
        """Kill the job's kernel wherever it runs; a job that runs nowhere yet is cancelled instead."""
        try:
            answers = self.client.run(stop_on_worker, entry.key, reason)
        except Exception:
            answers = {}
        if any(answers.values()) or entry.dask_future.done():
            return  # the task returns (with its kernel dead): its notebook and the reason come back as usual
        try:
            self.client.cancel([entry.dask_future])  # if it starts meanwhile, it sees that and kills its kernel
        except Exception:
            pass
        self._resolve(entry, _stopped(reason))

    def _done(self, entry: _Submitted, future: Any) -> None:
        """Runs in Dask's callback thread when the task is over, however it ended."""
        progress: CellProgress | None = None
        try:
            if future.status == "finished":
                returned = future.result()
                if not isinstance(returned, WorkerResult):
                    raise TypeError(f"the task returned {type(returned).__name__}, not a WorkerResult")
                result = _keep(entry.job, returned)
                progress = getattr(returned, "progress", None)  # a worker of another nbflow may send none
            elif future.status == "cancelled":
                result = (
                    _stopped(entry.stop_reason)
                    if entry.stop_reason
                    else _failed(
                        DaskCancelled(
                            f"the Dask cluster at {self.address} dropped the task (the connection to the scheduler "
                            "was lost, or the cluster was shut down)"
                        )
                    )
                )
            else:
                result = self._error_result(future.exception(), future)
        except Exception as exc:
            problem = DaskError(
                f"could not fetch the task's result from the Dask cluster at {self.address}: "
                f"{type(exc).__name__}: {exc}"
            )
            result = _failed(problem)
        self._progress.finished(entry.key, progress)  # before the runner hears of the end: it records this last
        self._resolve(entry, result)
        if not self._closed:
            try:
                self._background.submit(self._forget_markers, [entry])
                future.release()
            except Exception:
                pass

    def _error_result(self, exc: BaseException, future: Any) -> JobResult:
        """The task raised, or the cluster gave up on it."""
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):  # a scheduler with allowed-failures 0: its first worker death is final
            return _failed(WorkerDied(getattr(exc.last_worker, "address", None)))
        if isinstance(exc, ImportError):
            return _failed(
                exc,
                f"the Dask worker could not load nbflow's task ({type(exc).__name__}: {exc}); install nbflow, the "
                "same version, in the workers' environment",
            )
        try:
            lines = "".join(traceback.format_tb(future.traceback())).splitlines()
        except Exception:
            lines = []
        return _failed(exc, f"the Dask task failed outside the notebook: {exc}", lines[-TRACEBACK_LINES:])

    def _resolve(self, entry: _Submitted, result: JobResult) -> None:
        with entry.lock:
            if not entry.result.done():
                entry.result.set_result(result)

    def _forget_markers(self, entries: list[_Submitted]) -> None:
        from distributed import Event

        for entry in entries:
            if self.client.status != "running":  # the scheduler is gone, and its events with it
                return
            try:
                Event(entry.key, client=self.client).clear()  # a cleared event is deleted from the scheduler
                entry.forgotten = True
            except Exception:
                return


def _failed(exc: BaseException, told: str | None = None, traceback_lines: list[str] | None = None) -> JobResult:
    """A job that failed around its notebook, under the exception's name, `told` in nbflow's words if given."""
    error = TaskError.from_exception(exc)
    if told is not None:
        error = replace(error, evalue=told, traceback=traceback_lines or [])
    stamp = iso(now())
    return JobResult(TaskState.FAILED, stamp, stamp, error)


def _stopped(reason: StopReason) -> JobResult:
    """A job stopped before it ran anywhere."""
    stamp = iso(now())
    if reason is StopReason.TIMEOUT:
        error = TaskError.timeout("the task ran past its timeout before a Dask worker started it")
        return JobResult(TaskState.FAILED, stamp, stamp, error)
    error = TaskError.cancelled("the run was cancelled before a Dask worker started the task")
    return JobResult(TaskState.CANCELLED, stamp, stamp, error)


def _keep(job: Job, returned: WorkerResult) -> JobResult:
    """Write what the task sent back where a local run leaves it: the executed notebook at the job's path, the
    kernel's output appended to the job's kernel log. A job whose files cannot be written here failed."""
    result = returned.result
    try:
        Path(job.output_notebook).parent.mkdir(parents=True, exist_ok=True)
        if returned.notebook is not None:
            Path(job.output_notebook).write_bytes(_as_if_local(returned.notebook, job))
        if returned.kernel_log is not None:
            with open(job.kernel_log, "ab") as log:
                log.write(returned.kernel_log)
    except OSError as exc:
        if result.state is TaskState.SUCCEEDED:
            return replace(result, state=TaskState.FAILED, error=TaskError.from_exception(exc))
    return result


def _as_if_local(data: bytes, job: Job) -> bytes:
    """papermill records the paths it read and wrote; make them the runner's, as a local run's notebook has."""
    try:
        nb = json.loads(data)
        meta = nb.get("metadata", {}).get("papermill")
        if not isinstance(meta, dict):
            return data
        meta["input_path"], meta["output_path"] = job.notebook, job.output_notebook
        return (json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    except ValueError:
        return data
