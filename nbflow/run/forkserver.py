"""Cheap kernel starts: a process that has already imported ipykernel forks a fresh kernel for each task.

A Python kernel spends most of its start-up importing IPython and ipykernel. The fork server pays that once per
run; each kernel is then a fresh `fork()` that has imported, but never run, anything:
it becomes a session leader, moves to the notebook's folder, takes the environment jupyter_client prepared, and
starts `ipykernel` with its connection file, exactly as `python -m ipykernel_launcher -f FILE` would. Kernels are
never reused. The jupyter_client side, a provisioner that asks the server instead of calling Popen, is
`nbflow.run.provisioner`.

Only the server forks, and it does nothing but fork: it runs no thread, and a forked child has run no user code,
so a fork copies no lock held by another thread and no state of an earlier notebook. The nbflow process itself,
which runs many threads, never forks.

Before the first fork a run may ask the server to preload the modules its notebooks import (`preload`, chosen by
`nbflow.run.preload`): each kernel then starts with pandas or matplotlib already imported instead of paying for it
again. Only what is safe to fork is kept: a module known to start a runtime of its own is skipped, and one that
starts a thread as it is imported makes the server unfit to fork (the answer says which; the pool then starts
another server without it). Matplotlib is imported with the backend the kernel would choose itself (the inline
one, unless the task's environment names another), and each kernel reseeds NumPy's global generator as it reseeds
`random`, so forked kernels neither share random streams nor draw figures elsewhere.

Lifetimes: the server exits when the nbflow process that started it goes away (its stdin closes), and each kernel
watches that same pipe (a thread waiting for its end), so nothing outlives a killed run. A kernel does not watch
the server itself: a server that dies (killed, out of memory) takes no running kernel with it; the client starts a
new server for the next kernels (`ForkServer.spawn`), at most RESTARTS times.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

SERVER_READY_TIMEOUT = 30.0
PRELOAD_TIMEOUT = 300.0  # seconds for the server to import what the notebooks import (a big stack, a cold disk)
RESTARTS = 3  # per run: a server that dies again and again is a problem to report, not to hide
# What every kernel would otherwise import for itself while it initialises and runs its first cell (the debugger
# alone pulls in debugpy); found by comparing sys.modules before and after.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.history",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "psutil",
    "sqlite3",
)


# -- the server (its own process) ------------------------------------------------------------------------------


def _reap(signum: int, frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exit_when_closed(fd: int) -> None:
    """In a kernel: exit as soon as the nbflow process that started the server is gone (the pipe ends)."""
    while True:
        try:
            if not os.read(fd, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os._exit(1)


def _become_kernel(request: dict[str, Any], log: int, listener: socket.socket, connection: socket.socket) -> None:
    code = 1
    try:
        listener.close()
        connection.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.dup2(log, 1)  # the pipe nbflow copies into the kernel's log (`nbflow.run.kernels.KernelLog`)
        os.dup2(log, 2)
        run_pipe = os.dup(0)  # the server's stdin: it ends when the nbflow process does
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = request["cwd"]  # as `python -m` would: modules beside the notebook import
        threading.Thread(target=_exit_when_closed, args=(run_pipe,), daemon=True, name="nbflow-run-watch").start()
        # The kernel watches the nbflow process (above), not its parent, the server: parent_handle=1 is ipykernel's
        # "no parent to poll" (it read JPY_PARENT_PID, which may name another process, when the server imported it).
        sys.argv = ["ipykernel_launcher", *request["args"], "--IPKernelApp.parent_handle=1"]
        _fresh_after_fork()
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # what ipykernel makes matplotlib's default
# Packages that start runtimes of their own (threads, servers, device contexts) as they are imported: a fork after
# that copies them half-alive. Anything else that starts a Python thread is caught as it is imported.
NOT_FORK_SAFE = frozenset({"tensorflow", "jax", "jaxlib", "ray", "pyspark", "distributed", "torch"})


def _fresh_after_fork() -> None:
    """What a forked kernel must not share with its siblings: random streams, and a preloaded matplotlib's backend
    (chosen for this kernel's environment, as a fresh import would)."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # the legacy global generator; `default_rng()` draws fresh entropy by itself
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        matplotlib.rcParams["backend"] = os.environ.get("MPLBACKEND") or INLINE_BACKEND


def _open_sockets() -> int:
    """The sockets this process holds: its listener and the connection it answers, and any a module opened."""
    import psutil

    return len(psutil.Process().net_connections(kind="all"))


def _preload(names: list[str]) -> dict[str, Any]:
    """Import the modules that are safe to fork, in order; stop at one that starts a thread or opens a connection
    (the server must then not fork any more: each kernel would share it). Returns what was imported, what was
    skipped and why, and the module that made the server unfit (`tainted`) and how (`why`)."""
    import importlib
    import importlib.util
    import time

    imported: list[str] = []
    skipped: dict[str, str] = {}
    started = time.monotonic()
    sockets = _open_sockets()  # unchanged while the imports open none: the first that does ends the preload
    for name in names:
        if name in sys.modules:
            continue
        if name.split(".")[0] in NOT_FORK_SAFE:
            skipped[name] = "starts a runtime of its own as it is imported: not safe to fork"
            continue
        try:
            if importlib.util.find_spec(name.split(".")[0]) is None:
                skipped[name] = "not installed for this kernel"
                continue
            if name.split(".")[0] == "matplotlib":
                os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)  # read once, as it is imported
            importlib.import_module(name)
        except BaseException as exc:  # an import may fail in any way (or exit): the kernel will say it itself
            skipped[name] = f"failed to import: {type(exc).__name__}: {exc}"[:300]
            continue
        if threading.active_count() > 1:
            return {"imported": imported, "skipped": skipped, "tainted": name, "why": "it starts a thread"}
        if _open_sockets() > sockets:
            return {"imported": imported, "skipped": skipped, "tainted": name, "why": "it opens a connection"}
        imported.append(name)
    return {"imported": imported, "skipped": skipped, "tainted": None, "seconds": time.monotonic() - started}


def serve(path: str) -> None:
    """Preload the kernel's imports, then fork a kernel for every request until stdin closes."""
    import importlib
    import selectors

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an older IPython or ipykernel: that kernel imports less, or imports it itself
            pass
    from jupyter_client.localinterfaces import localhost

    localhost()  # the machine's addresses (psutil), looked up by every kernel as it starts: once, here

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the nbflow process, which closes our stdin
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj == sys.stdin.fileno():
                if not os.read(sys.stdin.fileno(), 4096):
                    return
                continue
            connection, _ = listener.accept()
            with connection:
                _, fds, _, _ = socket.recv_fds(connection, 1, 1)  # the kernel's output: one byte carries it
                request = json.loads(connection.makefile("r").readline())
                if "preload" in request:
                    for fd in fds:
                        os.close(fd)
                    connection.sendall(json.dumps(_preload(request["preload"])).encode() + b"\n")
                    continue
                pid = os.fork()
                if pid == 0:
                    _become_kernel(request, fds[0], listener, connection)
                for fd in fds:
                    os.close(fd)
                connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")


# -- the client side (the nbflow process) ----------------------------------------------------------------------


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

    def preload(self, names: list[str], timeout: float = PRELOAD_TIMEOUT) -> dict[str, Any]:
        """Have the server import these modules before it forks again; its answer: `imported`, `skipped` (name ->
        why), `tainted` (the module that started a thread or opened a connection: this server must not fork any
        more) and `why` (which of the two)."""
        self._wait_ready()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(self.path)
            connection.sendall(b"P")  # where a fork request's byte carries the kernel's output; none here
            connection.sendall(json.dumps({"preload": names}).encode() + b"\n")
            answer: dict[str, Any] = json.loads(connection.makefile("r").readline())
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


if __name__ == "__main__":
    serve(sys.argv[1])
