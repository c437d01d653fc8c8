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

A run may ask the server to preload the modules its notebooks import (`preload`, chosen by `nbflow.run.preload`):
each kernel then starts with pandas or matplotlib already imported instead of paying for it again. The server tells
the client each module it has settled (imported, or skipped) as it goes; the client answers how many kernels that
lets start (those whose notebook's modules are now all in), and the server forks them before the next import. Only
what is safe to fork is kept: a module known to start a runtime of its own is skipped, and one that starts a thread
as it is imported makes the server unfit to fork (the answer says which; the pool then starts another server without
it). Matplotlib is imported with the backend the kernel would choose itself (the inline one, unless the task's
environment names another), and each kernel reseeds NumPy's global generator as it reseeds `random`, so forked
kernels neither share random streams nor draw figures elsewhere.

Lifetimes: the server exits when the nbflow process that started it goes away (its stdin closes), and each kernel
watches that same pipe (a thread waiting for its end), so nothing outlives a killed run. A kernel does not watch
the server itself: a server that dies (killed, out of memory) takes no running kernel with it; the client starts a
new server for the next kernels (`ForkServer.spawn`, in `nbflow.run.forks`, the nbflow process's side).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

FORK_ASK_TIMEOUT = 5.0  # seconds a preloading server waits for each kernel the client said it would ask for
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


def _become_kernel(request: dict[str, Any], log: int, server_sockets: list[socket.socket]) -> None:
    code = 1
    try:
        for held in server_sockets:  # the listener, the request's connection, a preload's connection
            held.close()
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


def _preload(names: list[str], settled: Callable[[str | None], None]) -> dict[str, Any]:
    """Import the modules that are safe to fork, in order, calling `settled` first with None (the kernels that
    need none of them fork now) and then with each one imported or skipped (which forks those waiting for it);
    stop at one that starts a thread or opens a connection (the server must then not fork any more: each kernel
    would share it). Returns what was imported, what was skipped and why, and the module that made the server
    unfit (`tainted`) and how (`why`)."""
    import time

    imported: list[str] = []
    skipped: dict[str, str] = {}
    started = time.monotonic()
    sockets = _open_sockets()  # unchanged while the imports open none: the first that does ends the preload
    settled(None)
    for name in names:
        if name not in sys.modules:
            why = _import_safely(name)
            if why is not None:
                skipped[name] = why
            elif threading.active_count() > 1:
                return {"imported": imported, "skipped": skipped, "tainted": name, "why": "it starts a thread"}
            elif _open_sockets() > sockets:
                return {"imported": imported, "skipped": skipped, "tainted": name, "why": "it opens a connection"}
            else:
                imported.append(name)
        settled(name)
    return {"imported": imported, "skipped": skipped, "tainted": None, "seconds": time.monotonic() - started}


def _import_safely(name: str) -> str | None:
    """Import one module for the kernels; None when it was imported, else why it was not."""
    import importlib
    import importlib.util

    if name.split(".")[0] in NOT_FORK_SAFE:
        return "starts a runtime of its own as it is imported: not safe to fork"
    try:
        if importlib.util.find_spec(name.split(".")[0]) is None:
            return "not installed for this kernel"
        if name.split(".")[0] == "matplotlib":
            os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)  # read once, as it is imported
        importlib.import_module(name)
    except BaseException as exc:  # an import may fail in any way (or exit): the kernel will say it itself
        return f"failed to import: {type(exc).__name__}: {exc}"[:300]
    return None


def _answer(listener: socket.socket, held: list[socket.socket]) -> None:
    """Answer one request waiting on the listener: fork a kernel, or preload (forking between imports). `held`:
    the sockets a forked kernel must close besides these (a preload's connection, while it is answered)."""
    connection, _ = listener.accept()
    with connection:
        _, fds, _, _ = socket.recv_fds(connection, 1, 1)  # the kernel's output: one byte carries it
        request = json.loads(connection.makefile("r").readline())
        if "preload" not in request:
            # What the server has imported lives as long as any kernel: frozen, the kernel's collector never scans
            # it (half of a kernel's start-up CPU went to that) nor writes to it (which would copy its pages).
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                _become_kernel(request, fds[0], [listener, connection, *held])
            for fd in fds:
                os.close(fd)
            connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            return
        for fd in fds:
            os.close(fd)
        if held:  # a preload asked for while one is under way: nothing more to import here
            connection.sendall(json.dumps({"imported": [], "skipped": {}, "tainted": None}).encode() + b"\n")
            return

        replies = connection.makefile("r")

        def settled(name: str | None) -> None:
            """Say so; the client answers how many kernels it now asks for: fork them before importing more."""
            connection.sendall(json.dumps({"settled": name}).encode() + b"\n")
            for _ in range(int(json.loads(replies.readline())["forks"])):
                if not select.select([listener], [], [], FORK_ASK_TIMEOUT)[0]:
                    break  # a kernel that did not come after all (it is not one this server forks)
                _answer(listener, [connection])
            while select.select([listener], [], [], 0)[0]:  # any other waiting (one counted may not be first)
                _answer(listener, [connection])

        connection.sendall(json.dumps(_preload(request["preload"], settled)).encode() + b"\n")


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
            _answer(listener, [])


if __name__ == "__main__":
    serve(sys.argv[1])
