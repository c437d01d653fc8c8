"""Runs started in the background, for interfaces that must stay responsive (the panel, the server, schedules).

`start_run` returns once the run exists in the store (its id is known) or raises at once what would stop it
from starting (an invalid pipeline or command, the project's lock held by another run); the loop then goes on in a
thread, and the handle can cancel it or wait for it.
"""

from __future__ import annotations

import threading
from typing import Any

from nbflow.graph import Pipeline
from nbflow.models import Run
from nbflow.run.loop import EventHook, Runner
from nbflow.run.start import run_pipeline


class BackgroundRun:
    """A run going on in a thread of this process."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._runner: Runner | None = None
        self._result: Run | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        assert self._runner is not None
        return self._runner.run.id

    @property
    def run(self) -> Run:
        """The live Run: its task states change as the run goes."""
        assert self._runner is not None
        return self._runner.run

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        if self._runner is not None:
            self._runner.cancel()

    def wait(self, timeout: float | None = None) -> Run | None:
        """The finished Run, or None if it is still going after `timeout` seconds."""
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None
        if self._error is not None:
            raise self._error
        return self._result


def start_run(pipeline: Pipeline, *, on_event: EventHook | None = None, **options: Any) -> BackgroundRun:
    """Start `run_pipeline(pipeline, **options)` in a thread; return when it has started (or raise why not)."""
    handle = BackgroundRun()

    def on_start(runner: Runner) -> None:
        handle._runner = runner
        handle._started.set()

    def target() -> None:
        try:
            handle._result = run_pipeline(pipeline, on_event=on_event, on_start=on_start, **options)
        except BaseException as exc:  # handed to the caller (before start) or to wait() (after)
            handle._error = exc
        finally:
            handle._started.set()

    handle._thread = threading.Thread(target=target, name="nbflow-run", daemon=True)
    handle._thread.start()
    handle._started.wait()
    if handle._runner is None and handle._error is not None:
        raise handle._error
    return handle
