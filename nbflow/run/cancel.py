"""Cancelling a run that another process runs (`nbflow run` in a terminal, a script's background job): SIGINT, which
`nbflow run` takes as Ctrl-C; if the process is still there after a grace period, SIGTERM, which it takes the same
way; after a second one, SIGKILL, and then the run is marked `interrupted` and its kernels, with whatever they
started, are stopped. Each step is logged, so whoever asked can read what happened.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from nbflow import processes
from nbflow.run.claims import stop_orphan_kernels
from nbflow.store import open_store

log = logging.getLogger("nbflow.cancel")

GRACE_S = 10.0  # between the signals: stopping kernels and recording the cancelled tasks takes a few seconds


def cancel_process_run(store_dir: Path, run_id: str, pid: int, started: float | None, grace: float = GRACE_S) -> None:
    """Send SIGINT to the run's process now, and escalate in a daemon thread while it does not stop.
    ProcessLookupError when the process is gone, PermissionError when it is not ours to signal."""
    os.kill(pid, signal.SIGINT)
    log.info("run %s: SIGINT sent to its process %d", run_id, pid)
    threading.Thread(
        target=_escalate, args=(store_dir, run_id, pid, started, grace), name=f"nbflow-cancel-{run_id}", daemon=True
    ).start()


def _escalate(store_dir: Path, run_id: str, pid: int, started: float | None, grace: float) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if _gone_within(pid, started, grace):
            log.info("run %s: its process %d stopped", run_id, pid)
            return
        log.warning("run %s: its process %d is still there after %.0f s; sending %s", run_id, pid, grace, signum.name)
        processes.kill(pid, signum)
    if not _gone_within(pid, started, grace):
        log.error("run %s: its process %d survived SIGKILL; it is not ours to stop", run_id, pid)
        return
    store = open_store(store_dir)  # marks the run `interrupted`, its unfinished tasks `cancelled`
    try:
        stopped = stop_orphan_kernels(store)
    finally:
        store.close()
    log.warning("run %s: its process %d was killed; %d kernel(s) of it stopped", run_id, pid, len(stopped))


def _gone_within(pid: int, started: float | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while processes.alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
