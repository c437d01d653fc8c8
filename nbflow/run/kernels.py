"""The warm kernel pool: kernels for the jobs that come next are started while others run.

Kernel start-up is most of a short notebook's cost. The runner tells the executor which jobs
are likely next (`Executor.prepare`); the pool starts a kernel for each, in that job's folder, up to `max_idle`
kernels waiting at once. Each kernel serves exactly one job and is never reused, so no state passes between
notebooks. Shutdowns happen in the background, off the critical path; `close()` waits for all of them, so nothing
is left running. The pool has the fork server import what the notebooks import (`preload`), in the order the run
first needs them; each kernel forks once the modules of its own notebook are in, so the first tasks do not wait for
the imports of the last. What the server skipped, and why, is logged on `nbflow.preload` (`nbflow run --verbose`
shows it).

A kernel's own output (what its cells' output does not capture: ipykernel's echo, C libraries, subprocesses) goes
to a pipe that `KernelLog` copies into `TASK.kernel.log`, at most KERNEL_LOG_LIMIT_BYTES of it, and drains whatever
cannot be written: a kernel writing to a full disk directly would fail or block for good (ipykernel's thread
that echoes fd output stops at the first error, and the kernel then blocks once its pipe is full).
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import tempfile
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from nbflow.run.forks import ForkServer, adopt
from nbflow.run.jobs import NO_PRELOAD, Job, Preload

START_TIMEOUT = 60.0
log = logging.getLogger("nbflow.preload")
_NOT_PRELOADABLE: set[str] = set()  # modules found to start a thread as they are imported, in this process
KERNEL_LOG_LIMIT_BYTES = 10 * 1024 * 1024  # as a cell's output in the notebook


def ipc_prefix() -> str:
    """A socket-path prefix of this kernel's own. With IPC there is no TCP port to pick (and race for) when several
    kernels start at once; without an explicit prefix jupyter_client would name the sockets `kernel-ipc-N` in the
    current folder, shared by every kernel starting at the same moment."""
    return os.path.join(tempfile.gettempdir(), f"nbflow-{os.getpid()}-{secrets.token_hex(4)}")


@functools.lru_cache(maxsize=1)
def kernel_specs() -> Any:
    """One KernelSpecManager for the process: each new one works out the Jupyter data folders again, a cost paid
    per task. It reads the kernel specs themselves afresh at every lookup."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager()


def new_kernel_manager(kernel_name: str) -> Any:
    """A kernel manager for one kernel, talking to it over IPC sockets of its own, through `ReadyKernelClient`s."""
    from jupyter_client.manager import AsyncKernelManager

    from nbflow.run.readiness import ReadyKernelClient

    return AsyncKernelManager(
        kernel_name=kernel_name,
        transport="ipc",
        ip=ipc_prefix(),
        kernel_spec_manager=kernel_specs(),
        client_factory=ReadyKernelClient,
    )


class KernelLog:
    """Copies what a kernel writes to its stdout and stderr (the pipe `fd`) into its log file, at most
    KERNEL_LOG_LIMIT_BYTES and then a note; what cannot be written (a full disk) is drained and dropped, and
    `error` says why. The copy ends when every process holding the pipe has exited."""

    def __init__(self, path: str):
        self.path = path
        self.error: OSError | None = None
        read, self.fd = os.pipe()
        self._thread = threading.Thread(target=self._copy, args=(read,), daemon=True, name="nbflow-kernel-log")
        self._thread.start()

    def started(self) -> None:
        """The kernel has its copy of the pipe: this process closes its own, so the copy ends with the kernel."""
        os.close(self.fd)

    def _copy(self, read: int) -> None:
        room = KERNEL_LOG_LIMIT_BYTES
        try:
            log: Any = open(self.path, "ab")  # closed below, once the pipe ends
        except OSError as exc:
            log, self.error = None, exc
        try:
            while chunk := os.read(read, 65536):
                if log is None or room <= 0:
                    continue  # drained: the kernel must never block on its output
                try:
                    log.write(chunk[:room])
                    log.flush()
                    room -= len(chunk)
                    if room <= 0:
                        limit = KERNEL_LOG_LIMIT_BYTES // (1024 * 1024)
                        log.write(f"\n[nbflow: kernel log truncated at {limit} MiB; the rest was dropped]\n".encode())
                        log.flush()
                except OSError as exc:
                    self.error, room = exc, 0
        finally:
            os.close(read)
            if log is not None:
                try:
                    log.close()
                except OSError as exc:
                    self.error = self.error or exc

    def wait(self, timeout: float) -> None:
        """Wait (a while) for the copy to end, once the kernel has been shut down."""
        self._thread.join(timeout)


def start_kernel(job: Job, forks: ForkServer | None = None) -> Any:
    """A started kernel for `job`: its own process, in the job's folder, its output copied to the job's kernel
    log (`km.kernel_log`, a `KernelLog`); forked from `forks` when given (the native Python kernel only)."""
    from jupyter_core.utils import run_sync

    km = new_kernel_manager(job.kernel)
    os.makedirs(os.path.dirname(job.output_notebook), exist_ok=True)
    log = KernelLog(job.kernel_log)
    km.kernel_log = log
    try:
        if forks is not None:
            from nbflow.run.provisioner import ForkProvisioner

            # A provisioner set before the start is the one jupyter_client uses (as it keeps one across restarts).
            km.kernel_id = str(uuid.uuid4())
            km.provisioner = ForkProvisioner(
                kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km, server=forks, log_fd=log.fd
            )
        environment = {"env": {**os.environ, **job.environment}} if job.environment else {}
        run_sync(km.start_kernel)(cwd=job.cwd, stdout=log.fd, stderr=log.fd, **environment)
    finally:
        log.started()
    return km


def start_listening_kernel(job: Job, forks: ForkServer | None = None) -> Any:
    """`start_kernel`, returning once the kernel is ready for a client."""
    from nbflow.run.readiness import wait_listening

    km = start_kernel(job, forks)
    try:
        wait_listening(km, START_TIMEOUT)
    except BaseException:
        shutdown_kernel(km)
        raise
    return km


def shutdown_kernel(km: Any) -> None:
    """Kill the kernel now and remove its files; a kernel that is already gone is no error."""
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # already dead: make sure the process is gone and its files removed
        try:
            run_sync(km.cleanup_resources)()
        except Exception:
            pass


def _key(job: Job) -> tuple[str, int]:
    return job.task, job.attempt


_importing_client = threading.Lock()
_client_imported = False


def import_kernel_client() -> None:
    """Import jupyter_client before any other thread uses it: two threads importing it at once can see it
    half-initialised (a circular import between its modules). The first caller imports; the others wait for it."""
    global _client_imported
    with _importing_client:
        if _client_imported:
            return
        import jupyter_client.manager
        import jupyter_client.provisioning  # noqa: F401
        import jupyter_core.utils  # noqa: F401

        import nbflow.run.provisioner
        import nbflow.run.readiness  # noqa: F401

        _client_imported = True


def import_kernel_client_soon() -> None:
    """Start importing jupyter_client in the background (about 0.3 s), so the first kernel does not wait for it
    after the pipeline is read and judged."""
    threading.Thread(target=import_kernel_client, name="nbflow-import-client", daemon=True).start()


class KernelPool:
    """Kernels started ahead for the jobs likely to come next, each kept for its own job."""

    def __init__(self, max_idle: int, fork: bool = True, preload: Preload = NO_PRELOAD):
        self.max_idle = max(1, max_idle)
        self._forks = adopt() if fork else None
        self._lock = threading.Lock()
        self._starting: dict[tuple[str, int], Future[Any]] = {}
        self._claimed: dict[tuple[str, int], Future[Any]] = {}
        self._threads = ThreadPoolExecutor(max_workers=self.max_idle + 1, thread_name_prefix="nbflow-kernels")
        self._closed = False
        self._preload = preload
        # While the server preloads, each kernel start waits at a gate (the modules its notebook needs) that opens
        # once those are settled; then it asks for its fork, which the server makes before its next import.
        self._gates: list[tuple[frozenset[str], threading.Event]] = []
        self._settled: set[str] = set()
        wanted = [name for name in preload.modules if name not in _NOT_PRELOADABLE]
        self._preloading = bool(self._forks and wanted)
        if self._preloading:
            self._threads.submit(self._preload_all, wanted)
        # after the preload is asked for: the server's imports (the first kernels' wait) need no kernel client
        import_kernel_client()

    def _preload_all(self, names: list[str]) -> None:
        """Have the fork server import `names`; a module that starts a thread as it is imported costs that server
        (it must not fork any more): a new one imports the rest. Never raises: a kernel then imports for itself."""
        try:
            self._preload_into_servers(names)
        finally:
            with self._lock:
                self._preloading = False
                gates, self._gates = self._gates, []
            for _, gate in gates:
                gate.set()

    def _settle(self, name: str | None) -> int:
        """The server has imported (or skipped) `name` (None: it is about to import the first): open the gates of
        the kernels waiting for no more than what is in; how many."""
        with self._lock:
            if name is not None:
                self._settled.add(name)
            done = self._settled | _NOT_PRELOADABLE
            opened = [gate for needs, gate in self._gates if needs <= done]
            self._gates = [(needs, gate) for needs, gate in self._gates if not needs <= done]
        for gate in opened:
            gate.set()
        return len(opened)

    def _preload_into_servers(self, names: list[str]) -> None:
        for _ in range(len(names) + 1):
            assert self._forks is not None
            try:
                answer = self._forks.preload(names, self._settle)
            except (OSError, ValueError, RuntimeError) as exc:  # the server died or hung mid-import
                log.info("preloading stopped: the fork server did not answer (%s); kernels import for themselves", exc)
                self._forks.renew()
                return
            for name, why in answer["skipped"].items():
                log.info("not preloaded: %s (%s)", name, why)
            tainted = answer.get("tainted")
            if tainted is None:
                shown = ", ".join(answer["imported"]) or "nothing new"
                log.info("preloaded in the fork server: %s (%.1f s)", shown, answer.get("seconds", 0.0))
                return
            log.info("not preloaded: %s (%s as it is imported: not safe to fork)", tainted, answer["why"])
            with self._lock:
                _NOT_PRELOADABLE.add(tainted)
                self._settled.clear()  # the new server has imported none of them yet
            self._forks.renew()
            names = [name for name in names if name not in _NOT_PRELOADABLE]

    def _start(self, job: Job) -> Any:
        from jupyter_client.kernelspec import NATIVE_KERNEL_NAME  # imported with the pool (import_kernel_client)

        gate = threading.Event()
        with self._lock:
            # let through at the server's next pause between two imports; a kernel of another name is not forked
            # (the server would wait for it in vain)
            if self._preloading and job.kernel == NATIVE_KERNEL_NAME:
                self._gates.append((self._preload.needed_by(job.notebook), gate))
            else:
                gate.set()
        gate.wait()
        return start_listening_kernel(job, self._forks)

    def prepare(self, upcoming: Iterable[Job]) -> None:
        """Keep (or start) kernels for the first `max_idle` of these jobs; let the others go."""
        wanted: list[Job] = []
        for job in upcoming:
            if len(wanted) == self.max_idle:
                break
            wanted.append(job)
        wanted_keys = {_key(j) for j in wanted}
        with self._lock:
            if self._closed:
                return
            for key in [k for k in self._starting if k not in wanted_keys]:
                self._retire_future(self._starting.pop(key))
            for job in wanted:
                if _key(job) not in self._starting:
                    self._starting[_key(job)] = self._threads.submit(self._start, job)

    @property
    def fork_server_deaths(self) -> int:
        """How many times the kernels' fork server has died (and been replaced) so far."""
        return self._forks.deaths if self._forks is not None else 0

    def claim(self, job: Job) -> None:
        """Keep this job's kernel for it from now on, whatever `prepare` is told next. Called when the job is
        submitted: the thread that will `take` it may start after the runner has moved on to the next jobs."""
        with self._lock:
            future = self._starting.pop(_key(job), None)
            if future is not None:
                self._claimed[_key(job)] = future

    def take(self, job: Job) -> Any | None:
        """The kernel started for this job (waiting for it if it is still starting), or None."""
        with self._lock:
            future = self._claimed.pop(_key(job), None) or self._starting.pop(_key(job), None)
        if future is None:
            return None
        try:
            return future.result(timeout=START_TIMEOUT)
        except Exception:  # a start that failed or hung: the job starts its own kernel instead
            self._retire_future(future)
            return None

    def retire(self, km: Any) -> None:
        """Shut a used kernel down in the background (right here once the pool is closing)."""
        try:
            self._threads.submit(shutdown_kernel, km)
        except RuntimeError:
            shutdown_kernel(km)

    def _retire_future(self, future: Future[Any]) -> None:
        """Retire the kernel this start gives, once it has started (a start that failed left none)."""

        def retire_started(started: Future[Any]) -> None:
            if started.exception() is None:
                self.retire(started.result())

        future.add_done_callback(retire_started)

    def close(self) -> None:
        """Shut down every kernel not taken, and wait for all shutdowns to finish."""
        with self._lock:
            self._closed = True
            leftovers = [*self._starting.values(), *self._claimed.values()]
            self._starting.clear()
            self._claimed.clear()
        for future in leftovers:
            self._retire_future(future)
        for future in leftovers:
            try:
                future.result(timeout=START_TIMEOUT)
            except Exception:
                pass
        self._threads.shutdown(wait=True)
        if self._forks is not None:
            self._forks.close()
