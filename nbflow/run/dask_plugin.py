"""Warm kernels on Dask workers: a worker plugin giving each worker a fork server, as the local executor has.

The Dask executor registers one `NbflowWorkerPlugin` per run (named after the run, removed when the run closes),
so every worker, and every worker that joins later, starts a `KernelPool` at setup: its fork server imports
ipykernel and the run's `preload` list once, and each task's kernel is then forked from it in the notebook's
folder instead of starting a cold `python -m ipykernel_launcher`. Kernels stay one per job, never reused. The
plugin's teardown (the run closing, or the worker closing) shuts every kernel and the fork server down; a worker
killed outright takes them with it (the fork server and its kernels exit when its process goes away).

A plugin per run rather than one for the cluster: two runs sharing a cluster may preload different modules, and
removing one run's plugin must not stop the fork server under another run's running kernels.

Only the standard library and nbflow's own modules are imported here at import time: dask is an optional extra.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from distributed import WorkerPlugin, get_worker

from nbflow.run.dask_worker import warm_imports
from nbflow.run.jobs import Job
from nbflow.run.kernels import START_TIMEOUT, KernelPool


def plugin_name(prefix: str) -> str:
    """The name a run's plugin is registered under on the scheduler and its workers."""
    return f"{prefix}-kernels"


class NbflowWorkerPlugin(WorkerPlugin):  # type: ignore[misc]  # distributed is untyped
    """One worker's warm kernel pool for one run."""

    def __init__(self, preload: Sequence[str] = ()):
        self.preload = tuple(preload)
        self._pool: Future[KernelPool] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # sent to the workers without its (worker-side) pool and lock
        return {"preload": self.preload}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["preload"])  # type: ignore[misc]

    def setup(self, worker: Any) -> None:
        """Start the worker's pool and fork server in a thread: importing jupyter_client takes a while, and the
        worker (and the run registering the plugin) need not wait for it; the first task does, if it comes first."""
        threads = max(1, int(worker.state.nthreads))
        self._pool = Future()
        threading.Thread(target=self._make_pool, args=(self._pool, threads), daemon=True, name="nbflow-pool").start()

    def _make_pool(self, future: Future[KernelPool], threads: int) -> None:
        try:
            warm_imports()
            future.set_result(KernelPool(threads, True, self.preload))
        except BaseException as exc:  # the tasks start cold kernels
            future.set_exception(exc)

    async def teardown(self, worker: Any) -> None:
        """Shut down every kernel started and not taken, and the fork server (off the event loop: it waits)."""
        with self._lock:
            future, self._pool = self._pool, None
        if future is not None:
            await asyncio.to_thread(_close, future)

    def start(self, job: Job) -> KernelPool | None:
        """Have the pool start this job's kernel now, kept for it, and return the pool to take it from; None when
        there is no pool (torn down, or it could not start: the task then starts its own kernel). The job must be
        named by its Dask key: the pool keeps kernels by task name and attempt, and two runs may share a worker."""
        with self._lock:  # prepare retires the kernels of the jobs it is not given: claim each before the next
            if self._pool is None:
                return None
            try:
                pool = self._pool.result(timeout=START_TIMEOUT)
            except Exception:
                return None
            pool.prepare([job])
            pool.claim(job)
            return pool


def _close(future: Future[KernelPool]) -> None:
    try:
        pool = future.result(timeout=START_TIMEOUT)
    except Exception:
        return
    pool.close()


def worker_plugin(name: str) -> NbflowWorkerPlugin | None:
    """This worker's plugin of that name, if the run registered one."""
    plugin = get_worker().plugins.get(name)
    return plugin if isinstance(plugin, NbflowWorkerPlugin) else None
