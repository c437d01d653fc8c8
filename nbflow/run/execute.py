"""Execute one Job with papermill, in a fresh kernel started in the notebook's folder.

papermill's own `cwd` changes the whole process's directory, which is not thread-safe; instead nbflow starts the
kernel itself with that folder as its working directory (taken warm from the `KernelPool`, or started on the spot)
and hands it to the `nbflow` papermill engine, registered in papermill's engine registry. Holding the kernel lets a
timeout or a Ctrl-C kill it from another thread. Errors come back as data (ename, evalue, cell index, a short
traceback), never raised.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable

from nbflow.models import TaskError, TaskState
from nbflow.run.jobs import Job, JobResult
from nbflow.run.kernels import KernelPool, shutdown_kernel, start_kernel
from nbflow.times import iso, now

TRACEBACK_LINES = 30
OUTPUT_LIMIT_BYTES = 10 * 1024 * 1024  # per cell: a cell printing gigabytes must not fill memory or the notebook
# papermill writes the whole notebook at every cell start and end; nbflow at most every SAVE_EVERY_S seconds, and
# never more than SAVE_SHARE of the time (saving a large notebook takes long).
SAVE_EVERY_S = 1.0
SAVE_SHARE = 0.2
KERNEL_START_TRIES = 3
IOPUB_SETTLE_S = 0.05
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# nbclient logs kernel deaths and timeouts that nbflow records itself; they reach a user only if logging is set up.
_log = logging.getLogger("nbflow.kernel")
logging.getLogger("nbflow").addHandler(logging.NullHandler())


class KernelControl:
    """The link between a running job and whoever may need to kill its kernel (timeout, cancel)."""

    def __init__(self, on_pid: Callable[[int], None] | None = None):
        self._lock = threading.Lock()
        self.pid: int | None = None
        self.stop_reason: str | None = None
        self.cell_index: int | None = None  # the cell being executed (in the executed notebook)
        self._on_pid = on_pid

    def attach(self, pid: int) -> None:
        with self._lock:
            self.pid = pid
            stop_now = self.stop_reason is not None
        if self._on_pid:
            self._on_pid(pid)
        if stop_now:
            _kill(pid)

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            pid = self.pid
        if pid is not None:
            _kill(pid)


def _kill(pid: int) -> None:
    # Kernels are started in a session of their own, so the group also holds whatever the notebook spawned.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def wait_ready(kc, km, timeout: float) -> None:
    """The kernel answers on shell and IOPub: what jupyter_client's wait_for_ready checks, without its final
    0.2 s wait for IOPub to fall silent, paid by every task. IOPub is known to work once the `idle` status of our
    own kernel_info request arrives there; until it does (a subscription still settling: the status went out
    before we were listening), ask again soon: a round trip costs milliseconds, a long wait for a lost message is
    paid in full."""
    from queue import Empty

    from jupyter_core.utils import ensure_async

    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        reply = None
        try:
            while reply is None:
                msg = await ensure_async(kc.shell_channel.get_msg(timeout=1))
                if msg["parent_header"].get("msg_id") == msg_id:
                    reply = msg
        except Empty:
            pass
        if reply is not None:
            try:
                while True:
                    msg = await ensure_async(kc.iopub_channel.get_msg(timeout=IOPUB_SETTLE_S))
                    if (
                        msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"
                    ):
                        kc._handle_kernel_info_reply(reply)
                        return
            except Empty:
                pass
        if not await ensure_async(km.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


_engine_registered = False


def _register_engine() -> None:
    global _engine_registered
    if _engine_registered:
        return
    import nbformat
    from jupyter_core.utils import ensure_async, run_sync
    from nbclient.util import run_hook
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    class NbflowClient(PapermillNotebookClient):
        """papermill's client, plus: a faster readiness check, and at most OUTPUT_LIMIT_BYTES of output per cell,
        then one note saying how much was dropped."""

        async def async_start_new_kernel_client(self):
            # nbclient's own, with wait_ready() in place of the client's wait_for_ready().
            try:
                self.kc = self.km.client()
                await ensure_async(self.kc.start_channels())
                await wait_ready(self.kc, self.km, self.startup_timeout)
            except Exception:
                await self._async_cleanup_kernel()
                raise
            self.kc.allow_stdin = False
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)  # what setup_kernel() calls

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
            kept = self._kept.get(cell_index, 0)
            if kept + size <= OUTPUT_LIMIT_BYTES:
                self._kept[cell_index] = kept + size
                return super().output(outs, msg, display_id, cell_index)
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(
                    nbformat.v4.new_output(
                        "stream",
                        name="stderr",
                        text=f"\n[nbflow: output truncated: this cell wrote more than "
                        f"{OUTPUT_LIMIT_BYTES // (1024 * 1024)} MiB; the rest was "
                        "dropped]\n",
                    )
                )
            return None

    class ThrottledManager(NotebookExecutionManager):
        """Saves the executed notebook at most every SAVE_EVERY_S seconds while cells run, and spends at most
        SAVE_SHARE of the time saving (a 10,000-cell notebook would otherwise be written 20,000 times); always
        saves at an error and at the end."""

        _final = False
        _interval = SAVE_EVERY_S

        def save(self, **kwargs):
            if self._final or (self.now() - self.last_save_time).total_seconds() >= self._interval:
                started = time.monotonic()
                super().save(**kwargs)
                self._interval = max(SAVE_EVERY_S, (time.monotonic() - started) / SAVE_SHARE)

        def cell_exception(self, cell, cell_index=None, **kwargs):
            self._final = True
            return super().cell_exception(cell, cell_index, **kwargs)

        def notebook_complete(self, **kwargs):
            self._final = True
            return super().notebook_complete(**kwargs)

    class NbflowEngine(NBClientEngine):
        """papermill's nbclient engine, run on a kernel nbflow started (in the notebook's folder) and tracks, with
        the notebook saved as ThrottledManager says."""

        @classmethod
        def execute_notebook(
            cls,
            nb,
            kernel_name,
            output_path=None,
            progress_bar=True,
            log_output=False,
            autosave_cell_every=30,
            **kwargs,
        ):
            # papermill's Engine.execute_notebook, with nbflow's manager.
            nb_man = ThrottledManager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            control: KernelControl = kwargs.pop("nbflow_control")
            km = kwargs.pop("nbflow_km")
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                log=_log,
            )
            client = NbflowClient(nb_man, km=km, **final)
            client._kept, client._truncated = {}, set()

            def on_cell(cell_index, **_):
                control.cell_index = cell_index

            client.on_cell_start = on_cell
            try:
                return client.execute()
            finally:
                # nbclient leaves running the channels of a client it made for a kernel manager it was given,
                # heartbeat thread included: one thread per task, for the life of a server or scheduler.
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register("nbflow", NbflowEngine)
    # nbflow checks parameter names itself (before anything runs); papermill's guesses about them are noise here.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    _engine_registered = True


_import_lock = threading.Lock()


def import_papermill() -> None:
    """Import papermill and register the engine, once. The executor starts this in a thread of its own while the
    first kernels start; a task thread calling it too waits here instead of getting a half-imported module."""
    with _import_lock:
        import papermill  # noqa: F401

        _register_engine()
        _warm_validator()


def _warm_validator() -> None:
    # papermill validates every notebook it reads and writes; nbformat compiles its schema validator at the
    # first use (a few hundredths of a second). Compiled here, that happens while the first kernels start.
    from nbformat import v4
    from nbformat.validator import get_validator

    get_validator(version=4, version_minor=v4.nbformat_minor)


def execute_job(job: Job, control: KernelControl, pool: KernelPool | None = None) -> JobResult:
    """Run the job to the end and describe how it went; the executed notebook is left at job.output_notebook."""
    import_papermill()
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    os.makedirs(os.path.dirname(job.output_notebook), exist_ok=True)
    started = iso(now())
    error = None
    for start_try in range(1, KERNEL_START_TRIES + 1):
        km = None
        try:
            km = (pool.take(job) if pool and start_try == 1 else None) or start_kernel(job)
            control.attach(km.provisioner.pid)
            papermill.execute_notebook(
                job.notebook,
                job.output_notebook,
                parameters=job.parameters,
                engine_name="nbflow",
                kernel_name=job.kernel,
                progress_bar=False,
                log_output=False,
                start_timeout=job.start_timeout,
                nbflow_control=control,
                nbflow_km=km,
            )
        except PapermillExecutionError as exc:
            error = TaskError.in_cell(exc.ename, exc.evalue, exc.cell_index, _short_traceback(exc.traceback))
        except DeadKernelError:
            error = _dead_kernel_error(control)
        except NoSuchKernel:
            error = TaskError.no_kernel(_no_such_kernel(job.kernel))
        except RuntimeError as exc:
            # A kernel that did not answer in time while starting: start another (NOTES: starts hang now and then).
            if (
                control.cell_index is None
                and control.stop_reason is None
                and "didn't respond" in str(exc)
                and start_try < KERNEL_START_TRIES
            ):
                continue
            error = TaskError.from_exception(exc)
        except Exception as exc:  # anything else the run raised is the task's failure, told as data
            error = TaskError.from_exception(exc)
        finally:
            if km is not None:
                pool.retire(km) if pool else shutdown_kernel(km)
        break
    if control.stop_reason == "cancelled":
        state = TaskState.CANCELLED
    else:
        state = TaskState.FAILED if error is not None else TaskState.SUCCEEDED
    return JobResult(state, started, iso(now()), error, control.pid)


def _dead_kernel_error(control: KernelControl) -> TaskError:
    cell_index = control.cell_index
    where = f" while running cell {cell_index}" if cell_index is not None else ""
    if control.stop_reason == "timeout":
        return TaskError.timeout(f"the task ran past its timeout; its kernel was stopped{where}", cell_index)
    if control.stop_reason == "cancelled":
        return TaskError.cancelled(f"the run was cancelled{where}", cell_index)
    return TaskError.dead_kernel(
        f"the kernel died{where} (killed by a signal, out of memory, or the notebook exited the process, e.g. "
        "os._exit)",
        cell_index,
    )


def _no_such_kernel(name: str) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    installed = sorted(KernelSpecManager().find_kernel_specs())
    return (
        f"no kernel named {name!r} is installed (installed: {', '.join(installed) or 'none'}); set "
        "metadata.nbflow.kernel in the notebook, or install the kernel (python -m ipykernel install --user "
        f"--name {name})"
    )


def _short_traceback(lines: list[str]) -> list[str]:
    text = _ANSI.sub("", "\n".join(lines))
    flat = text.splitlines()
    return flat[-TRACEBACK_LINES:]
