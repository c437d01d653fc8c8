"""The Dask executor: each job runs on a `dask.distributed` cluster (SPEC section 9).

The runner's side (`DaskExecutor`) submits one Dask task per job and bridges the Dask future to the
concurrent.futures.Future the runner waits on. The worker's side (`run_on_worker`) runs `execute_job` there, in a
fresh kernel whose working directory is the notebook's folder, and sends the executed notebook (and the kernel's
log) back as bytes, so the run store needs no disk shared with the workers. Data paths, on the other hand, are
opened by the notebooks themselves: they must be visible to every worker at the same path (a shared filesystem).

What the cluster decides and what nbflow decides:

- Parallelism: the runner submits at most `capacity` jobs: the cluster's total worker threads (one notebook per
  thread: the thread waits while the kernel process works), or fewer when `-j` / `workers` says so.
- Retries: nbflow's `retries` alone. Dask reruns a task whose worker died (up to the scheduler's
  `allowed-failures`); the task notices that it is such a rerun (a marker it set on its first start is still on
  the scheduler) and reports "the Dask worker running it died" instead of running the notebook a second time behind
  the runner's back, so each nbflow attempt runs the notebook at most once and is recorded once (the marker is a
  `distributed.Event` named after the task's key, cleared when the task is over). A `KilledWorker`
  (a scheduler configured with allowed-failures 0) becomes the same failure.
- Stopping (timeouts, Ctrl-C): Dask cannot interrupt a running task, so `stop` asks every worker to kill the job's
  kernel (`Client.run`); the task then returns normally, its notebook kept. A job not started yet is cancelled.
  A task whose future the cluster releases (the run's client went away) kills its own kernel: it watches its state
  on the worker.
- "running": a task is `running` once submitted. The runner never submits more than the cluster's threads, so it
  starts at once unless other work fills the cluster; the attempt's recorded start is the worker's real one.

Only `nbflow.run.jobs` and the standard library are imported here at import time: dask is an optional extra.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbflow.errors import UsageError
from nbflow.models import TaskError, TaskState
from nbflow.run.jobs import Executor, ExecutorOptions, Job, JobResult
from nbflow.times import iso, now

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler before giving up (exit 2)
QUICK_CONNECT = 2.0  # the first try's share of it (see _connect)
CAPACITY_TTL = 2.0  # seconds between two asks for the cluster's thread count
WATCH_INTERVAL = 0.5  # seconds between a running task's looks at whether the cluster still wants it
STOP_TIMEOUT = 30.0  # seconds a stop or clean-up call to the cluster may take
WORKER_DIED = (
    "the Dask worker running it{} died mid-task (killed, out of memory, or its machine went away); "
    "nbflow's retries decide whether it runs again"
)
INSTALL_HINT = "pip install 'nbflow[dask]'"
HELP = (
    "Start a cluster with `dask scheduler` and `dask worker tcp://HOST:8786` (nbflow installed in the workers' "
    "environment too), or point --dask-address at an existing one (see README: On a Dask cluster)"
)


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(
            f"the dask executor needs dask and distributed, which are not installed here ({exc}); "
            f"install them with: {INSTALL_HINT}"
        ) from None
    return distributed


def scheduler_address(address: str | None) -> str:
    """The address given, else Dask's own setting (`DASK_SCHEDULER_ADDRESS` / `scheduler-address`)."""
    if address:
        return address
    import dask

    configured = dask.config.get("scheduler-address", None)
    if configured:
        return configured
    raise UsageError(
        "--executor dask needs the scheduler's address: --dask-address tcp://HOST:8786 (or the "
        f"DASK_SCHEDULER_ADDRESS environment variable). {HELP}."
    )


# -- the runner's side ---------------------------------------------------------------------------------------------


@dataclass
class _Submitted:
    job: Job
    key: str
    result: Future  # what the runner waits on
    dask_future: Any = None
    stop_reason: str | None = None
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
    ):
        distributed = import_distributed()
        self.address = scheduler_address(address)
        self.client = _connect(distributed, self.address, connect_timeout)
        self._prefix = f"nbflow-{run_id or os.getpid()}"
        self._jobs: dict[tuple[str, int], _Submitted] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers  # -j / `workers`: at most this many of the cluster's threads
        self._capacity = 1
        self._capacity_at = float("-inf")
        self._closed = False
        # stops and clean-ups talk to the cluster; the runner's loop must not wait for them
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nbflow-dask")
        try:
            self._check_workers()
        except BaseException:  # a UsageError, or Ctrl-C while checking: nothing may stay connected
            self.close()
            raise

    # -- the Executor interface

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> DaskExecutor:
        return cls(options.address, run_id=options.run_id, max_workers=options.workers)

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

    def submit(self, job: Job) -> Future:
        key = f"{self._prefix}-{job.task}-{job.attempt}"
        entry = _Submitted(job, key, Future())
        with self._lock:
            self._jobs[(job.task, job.attempt)] = entry
        try:
            source = Path(job.notebook).read_bytes()  # the notebook runs as fingerprinted here, shared disk or not
            entry.dask_future = self.client.submit(run_on_worker, job, source, key, key=key, pure=False, retries=0)
        except Exception as exc:
            self._resolve(
                entry,
                _failure(
                    f"could not submit the task to the Dask cluster at {self.address}: {type(exc).__name__}: {exc}",
                    "DaskSubmitError",
                ),
            )
            return entry.result
        entry.dask_future.add_done_callback(lambda future: self._done(entry, future))
        return entry.result

    def stop(self, job: Job, reason: str) -> None:
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
                self._resolve(entry, _stopped(entry.stop_reason or "cancelled"))
        if connected:
            self._forget_markers([e for e in entries if not e.forgotten])
            try:
                self.client.close(timeout=STOP_TIMEOUT)
            except Exception:
                pass
            return
        # The scheduler is gone: the client's reconnect loop would log tracebacks nobody can act on (the tasks
        # already failed, saying so), and closing would wait for that loop's own timeout.
        import logging

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
                f"tasks ({listed}). Install nbflow (this version, {_version()}) in the workers' "
                "environment, with the kernels your notebooks use. Nothing ran."
            )
        if not answers:
            print(
                f"nbflow: the Dask cluster at {self.address} has no workers yet; tasks wait until one joins "
                f"(`dask worker {self.address}`)",
                file=sys.stderr,
            )

    def _stop(self, entry: _Submitted, reason: str) -> None:
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
        try:
            if future.status == "finished":
                result = future.result()
                if not isinstance(result, JobResult):
                    raise TypeError(f"the task returned {type(result).__name__}, not a JobResult")
            elif future.status == "cancelled":
                result = (
                    _stopped(entry.stop_reason)
                    if entry.stop_reason
                    else _failure(
                        f"the Dask cluster at {self.address} dropped the task (the connection to the scheduler was "
                        "lost, "
                        "or the cluster was shut down)",
                        "DaskCancelled",
                    )
                )
            else:
                result = self._error_result(future.exception(), future)
        except Exception as exc:
            result = _failure(
                f"could not fetch the task's result from the Dask cluster at {self.address}: "
                f"{type(exc).__name__}: {exc}",
                "DaskError",
            )
        self._resolve(entry, result)
        if not self._closed:
            try:
                self._background.submit(self._forget_markers, [entry])
                future.release()
            except Exception:
                pass

    def _error_result(self, exc: BaseException, future: Any) -> JobResult:
        name = type(exc).__name__
        if name == "KilledWorker":  # a scheduler with allowed-failures 0: its first worker death is final
            last = getattr(getattr(exc, "last_worker", None), "address", None)
            return _failure(WORKER_DIED.format(f" ({last})" if last else ""), "WorkerDied")
        if isinstance(exc, ImportError):
            return _failure(
                f"the Dask worker could not load nbflow's task ({name}: {exc}); install nbflow, the same "
                "version, in the workers' environment",
                name,
            )
        try:
            import traceback

            lines = traceback.format_tb(future.traceback())
        except Exception:
            lines = []
        error = TaskError(name, f"the Dask task failed outside the notebook: {exc}")
        error.traceback = "".join(lines).splitlines()[-30:]
        return JobResult(TaskState.FAILED, iso(now()), iso(now()), error)

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


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A Client of the scheduler, or a UsageError (exit 2) saying why not.

    The scheduler is probed first with a bare Dask connection (handshake, then close: nothing in the scheduler's
    log), so that a failure leaves no half-started Client behind (its clean-up would hang the exit). Dask retries a
    refused connection until its timeout: after a short first try, a plain TCP connect tells a refused port or an
    unknown host at once, while a slow but reachable scheduler still gets the whole timeout."""
    deadline = time.monotonic() + timeout
    problem = _probe(distributed, address, min(QUICK_CONNECT, timeout))
    if problem is not None and problem[0] == "unreachable":
        refused = _refused(address, max(0.5, deadline - time.monotonic()))
        if refused is not None:
            problem = ("unreachable", refused)
        elif deadline - time.monotonic() > 0:
            problem = _probe(distributed, address, deadline - time.monotonic())
    if problem is None:
        try:
            return distributed.Client(
                address, timeout=max(QUICK_CONNECT, deadline - time.monotonic()), set_as_default=False, name="nbflow"
            )  # "Client-nbflow-..." in the logs
        except Exception as exc:
            problem = ("unreachable", f"{type(exc).__name__}: {exc}")
    kind, detail = problem
    if kind == "address":
        message = f"{address!r} is not a Dask scheduler address ({detail}); give one like tcp://HOST:8786"
    elif kind == "protocol":
        message = (
            f"something answers at {address}, but not as a Dask scheduler ({detail}); check the port (the "
            "scheduler's is 8786 unless it was started with --port)"
        )
    else:
        message = f"cannot reach the Dask scheduler at {address} ({detail})"
    raise UsageError(f"{message}. Nothing ran. {HELP}.")


def _probe(distributed: Any, address: str, timeout: float) -> tuple[str, str] | None:
    """None when a Dask server at `address` completes a handshake in time, else (kind, detail)."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        await comm.close()

    outcome: list[tuple[str, str] | None] = [("unreachable", f"no answer within {timeout:.0f} s")]

    def attempt() -> None:  # in a thread of its own: the caller may be inside a running event loop (Jupyter)
        try:
            asyncio.run(handshake())
            outcome[0] = None
        except ValueError as exc:  # raised while parsing the address, before any connection
            outcome[0] = ("address", str(exc))
        except OSError as exc:  # refused, timed out, unknown host: distributed says which
            outcome[0] = ("unreachable", str(exc))
        except Exception as exc:  # a server that is not a Dask scheduler sends what Dask cannot read
            outcome[0] = ("protocol", f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, name="nbflow-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return outcome[0]


def _refused(address: str, timeout: float) -> str | None:
    """Why a TCP connection to the scheduler fails at once (refused, unknown host), or None."""
    import socket

    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return None
    host, _, port = rest.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return f"{type(exc).__name__}: {exc}"
    except (OSError, ValueError):
        return None


def _version() -> str:
    from nbflow import __version__

    return __version__


def _failure(message: str, ename: str) -> JobResult:
    stamp = iso(now())
    return JobResult(TaskState.FAILED, stamp, stamp, TaskError(ename, message))


def _stopped(reason: str) -> JobResult:
    """A job stopped before it ran anywhere."""
    if reason == "timeout":
        return _failure("the task ran past its timeout before a Dask worker started it", "TaskTimeout")
    stamp = iso(now())
    return JobResult(
        TaskState.CANCELLED,
        stamp,
        stamp,
        TaskError.cancelled("the run was cancelled before a Dask worker started the task"),
    )


# -- the worker's side ---------------------------------------------------------------------------------------------

# The kernels of the jobs running in this worker process, by Dask key, for `stop_on_worker`.
_running: dict[str, Any] = {}
_running_lock = threading.Lock()


def worker_ready() -> dict:
    """Run on each worker when the executor connects: proves nbflow imports there, and warms papermill up."""
    from nbflow.run.execute import import_papermill

    threading.Thread(target=import_papermill, name="nbflow-import", daemon=True).start()
    import nbflow

    return {"nbflow": nbflow.__version__, "python": sys.version.split()[0]}


def stop_on_worker(key: str, reason: str) -> bool:
    """Run on each worker by `DaskExecutor.stop`: kill the kernel of that job if it runs here."""
    with _running_lock:
        control = _running.get(key)
    if control is None:
        return False
    control.stop(reason)
    return True


def run_on_worker(job: Job, source: bytes, key: str) -> JobResult:
    """The Dask task: run one job here and bring its executed notebook back as bytes."""
    from distributed import Event, get_client, get_worker

    from nbflow.run.execute import KernelControl, execute_job

    started = iso(now())
    worker = get_worker()
    control = KernelControl()
    with _running_lock:
        _running[key] = control
    finished = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(worker, key, control, finished), daemon=True, name=f"nbflow-watch-{key}"
    )
    watcher.start()
    folder = tempfile.mkdtemp(prefix="nbflow-dask-")
    try:
        marker = Event(key, client=get_client())
        if marker.is_set():  # Dask reran this task after the worker running it died
            return JobResult(TaskState.FAILED, started, iso(now()), TaskError("WorkerDied", WORKER_DIED.format("")))
        marker.set()
        if not os.path.isdir(job.cwd):
            return JobResult(
                TaskState.FAILED,
                started,
                iso(now()),
                TaskError(
                    "FolderNotOnWorker",
                    f"the notebook's folder {job.cwd} does not exist on the Dask worker {worker.address}: each "
                    "notebook runs in its own folder, so the project (its data at least) must be at the same path on "
                    "every worker, on a shared filesystem",
                ),
            )
        here = replace(
            job,
            notebook=os.path.join(folder, "source.ipynb"),
            output_notebook=os.path.join(folder, "out", "executed.ipynb"),
        )
        Path(here.notebook).write_bytes(source)
        result = execute_job(here, control)
        if os.path.exists(here.output_notebook):
            result.notebook_bytes = _as_if_local(Path(here.output_notebook).read_bytes(), job)
        log = os.path.splitext(here.output_notebook)[0] + ".kernel.log"
        if os.path.exists(log) and os.path.getsize(log):
            result.kernel_log = Path(log).read_bytes()
        result.kernel_pid = None  # a pid on another machine means nothing to the run store
        return result
    finally:
        finished.set()
        with _running_lock:
            _running.pop(key, None)
        shutil.rmtree(folder, ignore_errors=True)


def _watch(worker: Any, key: str, control: Any, finished: threading.Event) -> None:
    """Kill the kernel when the cluster no longer wants this task (its future cancelled, its client gone)."""
    while not finished.wait(WATCH_INTERVAL):
        try:
            task = worker.state.tasks.get(key)
            state = task.state if task is not None else "forgotten"
        except Exception:
            return  # a worker whose state is not readable so: rely on explicit stops
        if state in ("cancelled", "released", "forgotten") or _closing(worker):
            control.stop("cancelled")
            return


def _closing(worker: Any) -> bool:
    """The worker is shutting down (its scheduler is gone, or it was told to close): its task is lost anyway."""
    status = getattr(getattr(worker, "status", None), "name", "")
    return status in ("closing", "closed", "failed")


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
