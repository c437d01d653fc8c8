"""The Dask worker's side of the Dask executor: the task that runs one job there, and the calls the runner makes.

`run_on_worker` runs `execute_job` on the worker, in a fresh kernel whose working directory is the notebook's
folder, and sends the executed notebook and the kernel's log back as bytes (`WorkerResult`), so the runner's disk
need not be shared with the workers; the executor writes them where a local run leaves them. Data paths are
another matter: the notebooks open them themselves, so they must be at the same path on every worker. While the
notebook runs, its progress goes to the runner as events (`nbflow.run.dask_progress`).

Only the standard library and nbflow's vocabulary are imported here at import time: the runner imports this
module too, and dask is an optional extra.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.models import CellProgress, TaskError, TaskState
from nbflow.run.jobs import Job, JobResult, StopReason
from nbflow.times import iso, now
from nbflow.version import __version__

WATCH_INTERVAL = 0.5  # seconds between a running task's looks at whether the cluster still wants it


class WorkerDied(Exception):
    """The Dask worker running the task died mid-task. Dask would run it again on another worker; nbflow's
    retries decide that instead."""

    def __init__(self, worker: str | None = None):
        named = f" ({worker})" if worker else ""
        super().__init__(
            f"the Dask worker running it{named} died mid-task (killed, out of memory, or its machine went away); "
            "nbflow's retries decide whether it runs again"
        )


class FolderNotOnWorker(Exception):
    """The notebook's folder is not on the worker: the project is not on a filesystem the workers share."""

    def __init__(self, folder: str, worker: str):
        super().__init__(
            f"the notebook's folder {folder} does not exist on the Dask worker {worker}: each notebook runs in its "
            "own folder, so the project (its data at least) must be at the same path on every worker, on a shared "
            "filesystem"
        )


@dataclass
class WorkerResult:
    """What a task sends back: how the job ended, and the files it left on the worker."""

    result: JobResult
    notebook: bytes | None = field(default=None, repr=False)  # the executed notebook
    kernel_log: bytes | None = field(default=None, repr=False)  # the kernel's own output
    progress: CellProgress | None = None  # where the notebook got to: the last of its progress, never lost


# The kernels of the jobs running in this worker process, by Dask key, for `stop_on_worker`.
_running: dict[str, Any] = {}
_running_lock = threading.Lock()


def worker_ready() -> dict[str, str]:
    """Run on each worker when the executor connects: proves nbflow imports there, and warms papermill up."""
    from nbflow.run.dask_plugin import warm_imports

    threading.Thread(target=warm_imports, name="nbflow-import", daemon=True).start()
    return {"nbflow": __version__, "python": sys.version.split()[0]}


def stop_on_worker(key: str, reason: StopReason) -> bool:
    """Run on each worker by `DaskExecutor.stop`: kill the kernel of that job if it runs here."""
    with _running_lock:
        control = _running.get(key)
    if control is None:
        return False
    control.stop(reason)
    return True


def run_on_worker(
    job: Job, source: bytes, key: str, plugin: str | None = None, topic: str | None = None
) -> WorkerResult:
    """The Dask task: run one job here and bring its executed notebook and kernel log back as bytes. Its kernel
    is forked by the worker's fork server when the run registered its plugin (`plugin`, its name) here. Its
    progress is sent as it moves on the event topic `topic`, when the run listens to one."""
    from distributed import Event, get_client, get_worker

    from nbflow.run.dask_plugin import in_folder, new_folder, worker_plugin
    from nbflow.run.dask_progress import ProgressSender
    from nbflow.run.execute import KernelControl, execute_job

    started = iso(now())
    worker = get_worker()
    sender = ProgressSender(key, functools.partial(worker.log_event, topic)) if topic else None
    control = KernelControl(on_change=sender.moved if sender else None)
    if sender is not None:
        sender.start(control.progress)
    with _running_lock:
        _running[key] = control
    finished = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(worker, key, control, finished), daemon=True, name=f"nbflow-watch-{key}"
    )
    watcher.start()
    folder = None
    try:
        marker = Event(key, client=get_client())
        if marker.is_set():  # Dask reran this task after the worker running it died
            return WorkerResult(_failed(started, WorkerDied()))
        marker.set()
        if not os.path.isdir(job.cwd):
            return WorkerResult(_failed(started, FolderNotOnWorker(job.cwd, worker.address)))
        warm = worker_plugin(plugin) if plugin else None
        # a kernel started ahead for this folder, or one starting now while the notebook is written
        here, pool = warm.start(job, key) if warm else (in_folder(job, key, new_folder()), None)
        folder = os.path.dirname(here.notebook)
        Path(here.notebook).write_bytes(source)
        result = execute_job(here, control, pool)
        result.kernel_pid = None  # a pid on another machine means nothing to the run store
        result.started_at = started  # as a local attempt's, the start counts the kernel's
        return WorkerResult(result, _read(here.output_notebook), _read(here.kernel_log), control.progress())
    finally:
        finished.set()
        if sender is not None:
            sender.stop()
        with _running_lock:
            _running.pop(key, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _failed(started: str, exc: Exception) -> JobResult:
    return JobResult(TaskState.FAILED, started, iso(now()), TaskError.from_exception(exc))


def _read(path: str) -> bytes | None:
    """The file's bytes; None when there is none, or it is empty."""
    try:
        return Path(path).read_bytes() or None
    except FileNotFoundError:
        return None


def _watch(worker: Any, key: str, control: Any, finished: threading.Event) -> None:
    """Kill the kernel when the cluster no longer wants this task (its future cancelled, its client gone)."""
    while not finished.wait(WATCH_INTERVAL):
        try:
            task = worker.state.tasks.get(key)
            state = task.state if task is not None else "forgotten"
        except Exception:
            return  # a worker whose state is not readable so: rely on explicit stops
        if state in ("cancelled", "released", "forgotten") or _closing(worker):
            control.stop(StopReason.CANCELLED)
            return


def _closing(worker: Any) -> bool:
    """The worker is shutting down (its scheduler is gone, or it was told to close): its task is lost anyway."""
    from distributed.core import Status

    return getattr(worker, "status", None) in (Status.closing, Status.closed, Status.failed)
