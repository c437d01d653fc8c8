"""The nbflow process's side of the kernel fork server (`nbflow.run.forkserver`): start it, ask it for a kernel
or a preload, replace it when it dies (at most RESTARTS times a run), and a spare started early.

The CLI starts a spare server before it reads the pipeline (`start_spare`), so that the server's own imports run
alongside that work; the run's kernel pool takes it (`adopt`).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

SERVER_READY_TIMEOUT = 30.0
PRELOAD_TIMEOUT = 300.0  # seconds for the server to import one module the notebooks import (a big stack, a cold disk)
RESTARTS = 3  # per run: a server that dies again and again is a problem to report, not to hide


class ForkServerDied(RuntimeError):
    """The fork server died, and so did each server started in its place: kernels start without it."""


class ForkServer:
    """A fork server started by this process, shut down by `close()` (or when this process dies). A server that
    has died is replaced at the next spawn, up to RESTARTS times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # several pool threads may spawn, or find the server dead, at once
        self._replaced = 0
        self._gone = False  # died more than RESTARTS times, or closed: no more forks
        # servers that died: their stdin stays open until close(), since their kernels, still running, watch it
        self._dead: list[subprocess.Popen[bytes]] = []
        self._start()

    def _start(self) -> None:
        self.path = os.path.join(tempfile.gettempdir(), f"nbflow-fork-{os.getpid()}-{os.urandom(4).hex()}.sock")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nbflow.run.forkserver", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        self._ready = False

    def _wait_ready(self) -> tuple[subprocess.Popen[bytes], str]:
        """The server and its socket, once it has said it is ready (or has died before that)."""
        with self._lock:
            if self._gone:
                raise ForkServerDied(f"the kernel fork server died {self._replaced} times; kernels start without it")
            if not self._ready:
                assert self._process.stdout is not None  # a pipe: Popen was given stdout=PIPE
                self._ready = self._process.stdout.readline().strip() == b"ready"
            return self._process, self.path

    @property
    def deaths(self) -> int:
        """How many times a server died (or stopped answering) so far, the current one included."""
        with self._lock:
            return self._replaced + (1 if not self._gone and self._process.poll() is not None else 0)

    def spawn(self, args: list[str], cwd: str, env: dict[str, str], log: int) -> int:
        """Fork a kernel writing its output to the file descriptor `log`; returns its pid (a session leader, so
        its process group is its pid). A server found dead is replaced and the fork asked of the new one;
        ForkServerDied once RESTARTS replacements have died too."""
        while True:
            process, path = self._wait_ready()
            try:
                return _ask_fork(path, {"args": args, "cwd": cwd, "env": env}, log)
            except (OSError, ValueError, KeyError):  # refused, cut short, no answer: a dead server, or a broken one
                self._replace(process)

    def _replace(self, dead: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._process is not dead or self._gone:  # another thread replaced it already
                return
            self._retire()
            self._replaced += 1
            if self._replaced > RESTARTS:
                self._gone = True
            else:
                self._start()

    def renew(self) -> None:
        """Start a new server in place of this one, which must not fork any more: a module it imported started a
        thread, or it stopped answering a preload. Not counted as a death."""
        with self._lock:
            if not self._gone:
                self._retire()
                self._start()

    def _retire(self) -> None:
        """Stop the current server, keeping its stdin open for the kernels it forked (they watch it)."""
        self._process.kill()  # a server that answers no more is of no use, dead or not
        self._process.wait()
        self._dead.append(self._process)
        _unlink(self.path)

    def preload(
        self, names: list[str], settled: Callable[[str | None], int] = lambda name: 0, timeout: float = PRELOAD_TIMEOUT
    ) -> dict[str, Any]:
        """Have the server import these modules, in order, calling `settled` with None before the first and then
        with each one as soon as the server has imported or skipped it (kernels forked from then on have it, if it
        could be imported): it returns how many kernels it now lets start, which the server forks before it goes
        on. The answer once all are
        settled: `imported`, `skipped` (name -> why), `tainted` (the module that started a thread or opened a
        connection: this server must not fork any more) and `why` (which of the two)."""
        self._wait_ready()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)  # for each module: a big stack on a cold disk
            connection.connect(self.path)
            connection.sendall(b"P")  # where a fork request's byte carries the kernel's output; none here
            connection.sendall(json.dumps({"preload": names}).encode() + b"\n")
            lines = connection.makefile("r")
            answer: dict[str, Any] = json.loads(lines.readline())
            while "settled" in answer:
                connection.sendall(json.dumps({"forks": settled(answer["settled"])}).encode() + b"\n")
                answer = json.loads(lines.readline())
        return answer

    def close(self) -> None:
        """Stop the server. Killed rather than asked: it holds nothing worth a clean exit, and an interpreter that
        has loaded ipykernel is slow to exit. A kernel nobody shut down sees its server's stdin close here (or
        when this process dies), and exits too."""
        with self._lock:
            if not self._gone:
                self._retire()
            self._gone = True
            for process in self._dead:
                for pipe in (process.stdin, process.stdout):
                    try:
                        if pipe is not None:
                            pipe.close()
                    except OSError:
                        pass
            self._dead.clear()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _ask_fork(path: str, request: dict[str, Any], log: int) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(SERVER_READY_TIMEOUT)
        connection.connect(path)
        socket.send_fds(connection, [b"L"], [log])
        connection.sendall(json.dumps(request).encode() + b"\n")
        return int(json.loads(connection.makefile("r").readline())["pid"])


_spare: ForkServer | None = None
_spare_lock = threading.Lock()


def start_spare() -> None:
    """Start the fork server that the next kernel pool will use, now: the CLI calls this before it reads the
    pipeline, so that the server's imports run alongside that work. A spare nobody takes is closed at exit."""
    global _spare
    with _spare_lock:
        if _spare is None:
            _spare = ForkServer()
            atexit.register(_close_spare)


def adopt() -> ForkServer:
    """The spare server if one was started, else a new one; the caller closes it."""
    global _spare
    with _spare_lock:
        server, _spare = _spare, None
    return server or ForkServer()


def _close_spare() -> None:
    global _spare
    with _spare_lock:
        server, _spare = _spare, None
    if server is not None:
        server.close()
