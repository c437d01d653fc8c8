"""The project lock: one run at a time per project, released by the OS even if the process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from nbflow.errors import LockedError


class ProjectLock:
    """An exclusive `flock` on `.nbflow/lock`; the file names the run holding it."""

    def __init__(self, store_dir: Path):
        self.path = Path(store_dir) / "lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, run_id: str) -> None:
        if not self.try_acquire():
            raise LockedError(
                f"another run holds the project's lock ({self.holder()}); wait for it to finish, "
                "or cancel it, then run again."
            )
        assert self._fd is not None  # try_acquire() succeeded
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{run_id} {os.getpid()}\n".encode())

    def holder(self) -> str:
        try:
            run_id, pid = self.path.read_text().split()
            return f"run {run_id}, process {pid}"
        except (OSError, ValueError):
            return "a run that is starting"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
