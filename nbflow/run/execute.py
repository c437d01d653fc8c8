"""Execute one Job with papermill, in a fresh kernel started in the notebook's folder.

papermill's own `cwd` changes the whole process's directory, which is not thread-safe; instead nbflow starts the
kernel itself with that folder as its working directory (taken warm from the `KernelPool`, or started on the spot)
and hands it to the `nbflow` papermill engine (`nbflow.run.engine`). Holding the kernel lets a timeout or a
Ctrl-C kill it from another thread. Errors come back as data (a `TaskError`), never raised. Secrets are injected
by the engine as code reading the kernel's environment; their values are masked in what the run leaves behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbflow import masking, processes
from nbflow.declare.reading import NOTEBOOK_SUFFIX, ipynb_text
from nbflow.models import CellProgress, TaskError, TaskState
from nbflow.run.jobs import Job, JobResult, StopReason
from nbflow.run.kernels import KernelPool, shutdown_kernel, start_kernel
from nbflow.times import iso, now

TRACEBACK_LINES = 30
TAIL_CHARS = 8 * 1024  # what a running task's progress keeps of its cells' printed output
KERNEL_START_TRIES = 3
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class KernelControl:
    """The link between a running job and whoever may need to kill its kernel (timeout, cancel), or to know how
    far it has got (`progress`)."""

    def __init__(
        self, on_pid: Callable[[int], None] | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.pid: int | None = None
        self.stop_reason: StopReason | None = None
        self.cell_index: int | None = None  # the cell being executed (in the executed notebook)
        self._on_pid = on_pid
        self._on_change = on_change  # the cell or its printed output changed: `progress()` has news
        self._cells = 0
        self._line = ""
        # what the cells printed, its last TAIL_CHARS characters only: cut into lines when progress is asked for,
        # not at each of the (maybe millions of) messages a cell sends
        self._printed = ""
        self.secrets: list[str] = []  # masked in what was printed as a whole: each piece was masked alone

    def attach(self, pid: int) -> None:
        """The job's kernel is the process `pid`; kill it at once if a stop came first."""
        with self._lock:
            self.pid = pid
            stop_now = self.stop_reason is not None
        if self._on_pid:
            self._on_pid(pid)
        if stop_now:
            _kill(pid)

    def notebook_started(self, notebook: Any, **_: Any) -> None:
        """nbclient's `on_notebook_start` hook: how many cells there are to run."""
        self._cells = len(notebook.cells)

    def cell_started(self, cell_index: int, cell: Any = None, **_: Any) -> None:
        """nbclient's `on_cell_start` hook: remember which cell a kill would interrupt, and its first line."""
        self.cell_index = cell_index
        source = str(getattr(cell, "source", "") or "")
        self._line = next((line.strip() for line in source.splitlines() if line.strip()), "")[: CellProgress.LINE_CHARS]
        if self._on_change:
            self._on_change()

    def printed(self, text: str) -> None:
        """The engine's hook for every stream output (stdout and stderr) a cell sends."""
        self._printed = (self._printed + text)[-TAIL_CHARS:]
        if self._on_change:
            self._on_change()

    def progress(self) -> CellProgress | None:
        """How far the notebook has got: None before its first cell."""
        if self.cell_index is None:
            return None
        printed = masking.mask(self._printed, self.secrets)
        lines = [line[: CellProgress.LINE_CHARS] for line in printed.splitlines()[-CellProgress.TAIL_LINES :]]
        return CellProgress(self.cell_index + 1, max(self._cells, self.cell_index + 1), self._line, lines)

    def stop(self, reason: StopReason) -> None:
        """Kill the kernel now (or as soon as it is attached); the first reason given is the one kept."""
        with self._lock:
            if self.stop_reason is None:
                # a reason sent to a Dask worker arrives as its plain value
                self.stop_reason = StopReason(reason)
            pid = self.pid
        if pid is not None:
            _kill(pid)


def _kill(pid: int) -> None:
    # Kernels are started in a session of their own, so the group also holds whatever the notebook spawned.
    if not processes.kill_group(pid):
        processes.kill(pid)


_import_lock = threading.Lock()


def import_papermill() -> None:
    """Import papermill and register nbflow's engine, once. The executor starts this in a thread of its own while
    the first kernels start; a task thread calling it too waits here instead of getting a half-imported module."""
    with _import_lock:
        import nbflow.run.engine  # noqa: F401


def execute_job(job: Job, control: KernelControl, pool: KernelPool | None = None) -> JobResult:
    """Run the job to the end and describe how it went; the executed notebook is left at job.output_notebook."""
    import_papermill()
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from nbflow.run.engine import ENGINE
    from nbflow.run.readiness import KernelStartTimeout

    os.makedirs(os.path.dirname(job.output_notebook), exist_ok=True)
    # papermill injects the parameters, unless secrets are among them: the engine does then (`inject_parameters`)
    with_secrets = job.parameters if masking.secrets_in(job.parameters) else None
    values = list(job.environment.values())
    control.secrets = values
    started = iso(now())
    error = None
    deaths = pool.fork_server_deaths if pool else 0  # the fork server died during this job when this grows
    log = None
    for start_try in range(1, KERNEL_START_TRIES + 1):
        km = None
        try:
            km = (pool.take(job) if pool and start_try == 1 else None) or start_kernel(job)
            control.attach(km.provisioner.pid)
            papermill.execute_notebook(
                _source(job.notebook),
                _literal(job.output_notebook),
                parameters=None if with_secrets else job.parameters,
                engine_name=ENGINE,
                kernel_name=job.kernel,
                progress_bar=False,
                log_output=False,
                start_timeout=job.start_timeout,
                km=km,
                on_notebook_start=control.notebook_started,
                on_cell_start=control.cell_started,
                on_output=control.printed,
                with_secrets=with_secrets,
                secret_values=values,
            )
        except PapermillExecutionError as exc:
            error = TaskError.in_cell(exc.ename, exc.evalue, exc.cell_index, _short_traceback(exc.traceback))
        except DeadKernelError:
            error = _dead_kernel_error(control, server_died=bool(pool and pool.fork_server_deaths > deaths))
        except NoSuchKernel:
            error = TaskError.no_kernel(_no_such_kernel(job.kernel))
        except KernelStartTimeout as exc:
            # Starts hang now and then when several kernels start at once: start another, unless the job was stopped.
            if control.stop_reason is None and start_try < KERNEL_START_TRIES:
                continue
            error = TaskError.from_exception(exc)
        except RuntimeError as exc:
            # A kernel that died while starting because its fork server died: start another (not forked).
            server_died = bool(pool and pool.fork_server_deaths > deaths)
            if server_died and control.stop_reason is None and start_try < KERNEL_START_TRIES:
                continue
            error = TaskError.fork_server_died(str(exc)) if server_died else TaskError.from_exception(exc)
        except OSError as exc:
            # the executed notebook could not be written (papermill saves it as cells run, and at the end)
            full = exc.errno == errno.ENOSPC
            error = TaskError.no_space(exc.filename or job.output_notebook) if full else TaskError.from_exception(exc)
        except Exception as exc:  # anything else the run raised is the task's failure, told as data
            error = TaskError.from_exception(exc)
        finally:
            if km is not None:
                log = getattr(km, "kernel_log", None)
                pool.retire(km) if pool else shutdown_kernel(km)
        break
    if error is None and log is not None and log.error is not None and log.error.errno == errno.ENOSPC:
        error = TaskError.no_space(job.kernel_log)  # the kernel's log lost what it wrote: the disk is full
    if control.stop_reason is StopReason.CANCELLED:
        state = TaskState.CANCELLED
    else:
        state = TaskState.FAILED if error is not None else TaskState.SUCCEEDED
    if error is not None:
        _name_source_cell(error, job.output_notebook)
    if values:
        error = TaskError.from_json(masking.mask(error.to_json(), values)) if error is not None else None
        masking.mask_file(job.kernel_log, values)  # what the kernel wrote to its own output, past the notebook
    return JobResult(state, started, iso(now()), error, control.pid)


def _name_source_cell(error: TaskError, executed: str) -> None:
    """Name the failing cell as the user sees it in the source notebook: papermill counts the cell it injected
    after the parameters cell, which the source does not have. The executed notebook (written at the error) says
    where that cell is; the red banners papermill adds to it at an error are not counted."""
    index = error.cell_index
    if index is None:
        return
    try:
        cells = [
            c
            for c in json.loads(Path(executed).read_text(encoding="utf-8"))["cells"]
            if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])
        ]
        cell = cells[index]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    if index in injected:
        return  # the injected cell itself failed: it has no place in the source
    error.source_cell = index - sum(1 for i in injected if i < index)
    source = cell.get("source", "")
    lines = ("".join(source) if isinstance(source, list) else str(source)).strip().splitlines()
    error.source_line = lines[0][:80] if lines else None


def _source(notebook: str) -> Any:
    """What papermill runs: an `.ipynb` by its path (papermill records it), a text notebook as jupytext reads it."""
    path = Path(notebook)
    if path.suffix == NOTEBOOK_SUFFIX:
        return _literal(notebook)
    import nbformat

    return nbformat.reads(ipynb_text(path), as_version=4)


def _literal(path: str) -> str:
    """A path as papermill must be given it: papermill fills `{name}` in paths from the parameters (str.format),
    so a folder named `p {x}` would be a missing parameter; doubled braces come out as they are."""
    return path.replace("{", "{{").replace("}", "}}")


def _dead_kernel_error(control: KernelControl, server_died: bool = False) -> TaskError:
    cell_index = control.cell_index
    where = f" while running cell {cell_index}" if cell_index is not None else ""
    if control.stop_reason is StopReason.TIMEOUT:
        return TaskError.timeout(f"the task ran past its timeout; its kernel was stopped{where}", cell_index)
    if control.stop_reason is StopReason.CANCELLED:
        return TaskError.cancelled(f"the run was cancelled{where}", cell_index)
    if server_died:
        return TaskError.fork_server_died(f"the kernel died{where}", cell_index)
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
