"""The jupyter_client side of the fork server: a provisioner that has the server fork the native Python kernel.

`ForkProvisioner` is jupyter_client's LocalProvisioner, given per kernel the fork server to ask and where the kernel
writes its output (a pipe nbflow copies into its log). It forks only the kernel nbflow itself would start with
`python -m ipykernel_launcher` on
this interpreter: any other kernel (another Python, another language, a kernel spec with its own launcher) starts
through LocalProvisioner as usual, since a fork of this interpreter would not be that kernel.

A forked kernel is the fork server's child, not this process's, so it is tracked with psutil (`ForkedProcess`)
instead of a Popen.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Instance, Integer

from nbflow.run.forks import ForkServer

KILL_SETTLE_S = 0.05


class ForkedProcess:
    """What jupyter_client expects of a Popen, for a kernel that is the fork server's child, not ours."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._process = None

    def _running(self) -> bool:
        if self._process is None:
            return False
        try:
            # is_running() also tells a reused pid from the kernel that had it
            return bool(self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:  # ZombieProcess too
            return False
        except psutil.AccessDenied:  # there, but not ours to look at: a signal will say so
            return True

    def poll(self) -> int | None:
        if self.returncode is None and not self._running():
            self.returncode = 0  # the server reaped it; its exit status is not ours to know
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        return code

    def send_signal(self, signum: int) -> None:
        """As Popen does: a process known to have exited is not signalled (jupyter_client interrupts a kernel
        before shutting it down, dead or not), and one that exits meanwhile (the signal finds no process, or finds
        its pid taken by another) is done, not an error. PermissionError (the pid is not ours to signal) is raised."""
        if self.poll() is not None or self._process is None:
            return
        try:
            self._process.send_signal(signum)
        except (psutil.NoSuchProcess, ProcessLookupError):
            self.returncode = 0
        except psutil.AccessDenied as exc:
            raise PermissionError(errno.EPERM, f"not permitted to signal process {self.pid}") from exc

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """LocalProvisioner, launching the native Python kernel through `server` with its output to the file
    descriptor `log_fd` (the pipe of its `KernelLog`)."""

    server = Instance(ForkServer)
    log_fd = Integer()

    def forks(self, cmd: list[str]) -> bool:
        """The command is this interpreter's `-m ipykernel_launcher`, which a fork of the server becomes."""
        return cmd[1:3] == ["-m", "ipykernel_launcher"] and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if not self.forks(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        pid = self.server.spawn(cmd[3:], cwd, dict(kwargs.get("env") or os.environ), self.log_fd)
        self.process = ForkedProcess(pid)  # type: ignore[assignment]  # what LocalProvisioner uses of a Popen
        self.pid = self.pgid = pid  # a session leader: its process group is its pid
        self.cwd = cwd
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        """The kernel's process group (the kernel and whatever it started), else the kernel alone. A kernel that has
        already exited is done, not an error; a PermissionError (a process not ours) is raised as such, where
        LocalProvisioner's kill and terminate would turn it into a ValueError."""
        process = self.process
        if not isinstance(process, ForkedProcess):
            return await super().send_signal(signum)
        try:
            os.killpg(self.pgid, signum)
            return
        # No process left in the group (the kernel gone, or it left its group), or the group's id reused by another
        # user's: the kernel alone, which ForkedProcess signals only while it is the kernel and still there.
        except (ProcessLookupError, PermissionError):
            pass
        process.send_signal(signum)  # returns once it is known to be gone; PermissionError when it is not ours

    async def terminate(self, restart: bool = False) -> None:
        if not isinstance(self.process, ForkedProcess):
            return await super().terminate(restart)
        await self.send_signal(signal.SIGTERM)

    async def kill(self, restart: bool = False) -> None:
        process = self.process
        if isinstance(process, ForkedProcess):
            await self.send_signal(signal.SIGKILL)
        else:
            await super().kill(restart)
        # jupyter_client checks next whether the kernel is gone, and if not sleeps 0.1 s: a kernel killed a moment
        # ago usually is not gone yet, and the last task's kernel is shut down while the run ends.
        deadline = time.monotonic() + KILL_SETTLE_S
        while process is not None and process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
