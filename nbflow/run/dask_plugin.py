"""Warm kernels on Dask workers: a worker plugin giving each worker a fork server, as the local executor has.

The Dask executor registers one `NbflowWorkerPlugin` per run (named after the run, removed when the run closes),
so every worker, and every worker that joins later, starts a `KernelPool` at setup: its fork server imports
ipykernel and the run's `preload` list once, and each task's kernel is then forked from it in the notebook's
folder instead of starting a cold `python -m ipykernel_launcher`. Kernels stay one per job, never reused.

Started ahead: the worker cannot know the next job, but it can guess its folder. After each task it keeps one
spare kernel per worker thread, started for the folder and kernel of the task it just got (a chain's notebooks
usually share both); the next task with that same folder and kernel takes a spare instead of waiting for a start,
and any other task retires them. A task carrying secrets in its environment gets no spares: an idle kernel must
not hold them.

The plugin's teardown (the run closing, or the worker closing) shuts every kernel and the fork server down; a
worker killed outright takes them with it (the fork server and its kernels exit when its process goes away).

A plugin per run rather than one for the cluster: two runs sharing a cluster may preload different modules, and
removing one run's plugin must not stop the fork server under another run's running kernels.

This module imports distributed: the executor and the tasks import it only once they work with a cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from distributed import WorkerPlugin, get_worker

from nbflow.run.jobs import Job, Preload
from nbflow.run.kernels import START_TIMEOUT, KernelPool

_imports_lock = threading.Lock()


def warm_imports() -> None:
    """Import jupyter_client, then papermill, once: the executor's check and the run's plugin both ask for it, in
    threads of their own, and two threads importing jupyter_client at once can see it half-initialised."""
    with _imports_lock:
        from nbflow.run.execute import import_papermill
        from nbflow.run.kernels import import_kernel_client

        import_kernel_client()
        import_papermill()


def new_folder() -> str:
    """A task's own folder on the worker, for its notebook, executed notebook and kernel log."""
    return tempfile.mkdtemp(prefix="nbflow-dask-")


def in_folder(job: Job, name: str, folder: str) -> Job:
    """The job as it runs here: named `name` (the warm pool keeps kernels by task name, and a Dask key is unique
    on the cluster where a task's name is not), its notebook and its results in `folder`."""
    return replace(
        job,
        task=name,
        notebook=os.path.join(folder, "source.ipynb"),
        output_notebook=os.path.join(folder, "out", "executed.ipynb"),
    )


def plugin_name(prefix: str) -> str:
    """The name a run's plugin is registered under on the scheduler and its workers."""
    return f"{prefix}-kernels"


class NbflowWorkerPlugin(WorkerPlugin):
    """One worker's warm kernel pool for one run, and its spare kernels."""

    def __init__(self, preload: Sequence[str] = ()):
        self.preload = tuple(preload)
        self._pool: Future[KernelPool] | None = None
        self._lock = threading.Lock()
        self._threads = 1
        self._spares: list[Job] = []  # started ahead, not taken yet: all for the same folder and kernel
        self._names = itertools.count(1)
        self._dropped: list[Job] = []  # spares retired: their folders go at teardown, once their kernels are gone

    def __getstate__(self) -> dict[str, Any]:  # sent to the workers without its (worker-side) pool and lock
        return {"preload": self.preload}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["preload"])  # type: ignore[misc]

    def setup(self, worker: Any) -> None:
        """Start the worker's pool and fork server in a thread: importing jupyter_client takes a while, and the
        worker (and the run registering the plugin) need not wait for it; the first task does, if it comes first."""
        self._threads = max(1, int(worker.state.nthreads))
        self._pool = Future()
        threading.Thread(target=self._make_pool, args=(self._pool,), daemon=True, name="nbflow-pool").start()

    def _make_pool(self, future: Future[KernelPool]) -> None:
        try:
            warm_imports()
            # room for each thread's task kernel and its spare starting at once
            future.set_result(KernelPool(2 * self._threads, True, Preload(self.preload)))
        except BaseException as exc:  # the tasks start cold kernels
            future.set_exception(exc)

    async def teardown(self, worker: Any) -> None:
        """Shut down every kernel started and not taken, and the fork server (off the event loop: it waits)."""
        with self._lock:
            future, self._pool = self._pool, None
            spares, self._spares = [*self._spares, *self._dropped], []
            self._dropped = []
        if future is not None:
            await asyncio.to_thread(_close, future, spares)

    def start(self, job: Job, key: str) -> tuple[Job, KernelPool | None]:
        """The job as it runs here (`in_folder`), and the pool holding its kernel, already started (a spare) or
        starting now; no pool when there is none (torn down, or it could not start: the task then starts its own
        kernel)."""
        with self._lock:
            pool = self._ready_pool()
            if pool is None:
                return in_folder(job, key, new_folder()), None
            spare = next((s for s in self._spares if _same_start(s, job)), None)
            if spare is not None:
                self._spares.remove(spare)
                here = replace(in_folder(job, spare.task, _folder(spare)), attempt=spare.attempt)
            else:
                here = in_folder(job, key, new_folder())
            dropped = [s for s in self._spares if not _same_start(s, job)]
            kept = [s for s in self._spares if _same_start(s, job)]
            if not job.environment:  # secrets stay out of idle kernels
                kept += [self._spare(job) for _ in range(self._threads - len(kept))]
            self._spares = kept
            self._dropped += dropped
            # prepare keeps (or starts) the kernels of the jobs it is given, retiring the others not yet claimed
            pool.prepare([here, *kept])
            pool.claim(here)
        return here, pool

    def _ready_pool(self) -> KernelPool | None:
        if self._pool is None:
            return None
        try:
            return self._pool.result(timeout=START_TIMEOUT)
        except Exception:
            return None

    def _spare(self, like: Job) -> Job:
        """A job standing for the next one: `like`'s folder and kernel, a folder of its own for its log."""
        return in_folder(replace(like, parameters={}, attempt=1), f"spare-{next(self._names)}", new_folder())


def _same_start(spare: Job, job: Job) -> bool:
    """The spare's kernel is the one this job would have started: same kernel, folder and environment."""
    return (spare.kernel, spare.cwd, spare.environment) == (job.kernel, job.cwd, job.environment)


def _folder(job: Job) -> str:
    return os.path.dirname(job.notebook)


def _close(future: Future[KernelPool], spares: list[Job]) -> None:
    try:
        pool = future.result(timeout=START_TIMEOUT)
    except Exception:
        pool = None
    if pool is not None:
        pool.close()
    for spare in spares:
        shutil.rmtree(_folder(spare), ignore_errors=True)


def worker_plugin(name: str) -> NbflowWorkerPlugin | None:
    """This worker's plugin of that name, if the run registered one."""
    plugin = get_worker().plugins.get(name)
    return plugin if isinstance(plugin, NbflowWorkerPlugin) else None
