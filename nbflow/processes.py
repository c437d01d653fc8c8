"""Processes nbflow starts or finds in the store, through psutil: is one alive, is it a kernel, stop it.

A pid alone is not an identity (pids are reused), so nbflow keeps a process's start time beside its pid and a
process counts as the same one only while both match.
"""

from __future__ import annotations

import os
import signal

import psutil

# Start times are floats from the kernel's clock ticks; two reads of the same process agree to well under this.
_SAME_START = 0.5


def start_time(pid: int | None = None) -> float:
    """When the process (default: this one) started, as psutil reports it."""
    return float(psutil.Process(pid or os.getpid()).create_time())


def alive(pid: int | None, started: float | None = None) -> bool:
    """The process `pid` exists (and, where `started` is known, is the one that started then), and is no zombie."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > _SAME_START:
            return False
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_kernel(pid: int) -> bool:
    """An IPython kernel: started by jupyter_client, or forked by nbflow's fork server (which keeps its name)."""
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "ipykernel" in command or "nbflow.run.forkserver" in command


def kill_group(pid: int, signum: int = signal.SIGKILL) -> bool:
    """Signal the process group that `pid` leads (a kernel and whatever it started); False when it is gone."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_orphaned_group(group: int, not_before: float) -> bool:
    """Kill what is left of the process group `group` whose leader (a kernel) is gone: its members that started
    after `not_before` (the run's own start; older ones belong to something else). True when any was killed."""
    members = []
    for process in psutil.process_iter(["pid", "create_time"]):
        try:
            if os.getpgid(process.info["pid"]) == group and process.info["create_time"] >= not_before - _SAME_START:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    for process in members:
        try:
            process.kill()
        except psutil.Error:
            continue
    return bool(members)


def kill(pid: int, signum: int = signal.SIGKILL) -> bool:
    """Signal the process `pid` alone; False when it is gone (or not ours to signal)."""
    try:
        psutil.Process(pid).send_signal(signum)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return True
