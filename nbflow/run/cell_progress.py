"""How far each running notebook has got, carried from the executor to the store and the run's live view.

The executor's hooks see every cell start and every line a cell prints, far more often than anyone can read: a
thread of the run asks the executor a few times a second for what moved (`Executor.progress`) and writes only
that, so a 10,000-cell notebook costs the store a few writes a second, not 10,000. The run's `TaskRun`s get the
same progress in memory, for the terminal's live table.
"""

from __future__ import annotations

import threading
from types import TracebackType

from nbflow.models import Run
from nbflow.run.jobs import Executor
from nbflow.store import Store

EVERY_S = 0.2


class ProgressRecorder:
    """While the `with` block runs: the executor's progress, every EVERY_S seconds, into the store and the run."""

    def __init__(self, executor: Executor, store: Store, run: Run):
        self.executor = executor
        self.store = store
        self.run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="nbflow-progress", daemon=True)

    def __enter__(self) -> ProgressRecorder:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(EVERY_S):
            self.record()
        self.record()  # where the last cells got to, as the run ends

    def record(self) -> None:
        """Write what moved since the last call."""
        try:
            moved = self.executor.progress()
            for name, progress in moved.items():
                task = self.run.tasks.get(name)
                if task is not None:
                    task.progress = progress
                    self.store.update_task(self.run.id, name, progress=progress)
        except Exception:  # progress is a view: a store that cannot be written fails the run in the loop
            pass
