"""How far a notebook running on a Dask worker has got, carried to the runner as a local run's progress is.

On the worker the job's `KernelControl` hooks see every cell start and printed line, as they do locally; a
`ProgressSender` thread per task looks every SEND_EVERY_S seconds and, only when something moved, sends that
task's `CellProgress` as a Dask event (`Worker.log_event`) on the run's own topic. On the runner `DaskProgress`
subscribes to the topic (`Client.subscribe_topic`) and keeps the latest progress per task instance until
`DaskExecutor.progress` takes it.

Why events: sending is fire-and-forget on the worker's existing stream to the scheduler (never blocking the task,
never raising when the scheduler is away: Dask drops the message), and the scheduler pushes each one to the
subscribed client, so asking for progress never waits on the network. The scheduler keeps at most the last
`distributed.admin.low-level-log-length` events of a topic; the executor clears its topic when the run closes.

Progress is a view: a message lost, late or garbled changes nothing but what is shown. A task's last progress
comes back with its result (`WorkerResult.progress`), so the store ends with where the notebook got to even when
the last messages were lost; messages arriving after it are ignored.

Only the standard library and nbflow's vocabulary are imported here: the runner imports this module too, and dask
is an optional extra.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from nbflow.models import CellProgress

SEND_EVERY_S = 0.25  # at most four messages a second per running task


def progress_topic(prefix: str) -> str:
    """The Dask event topic a run's tasks send their progress on."""
    return f"{prefix}-progress"


class ProgressSender:
    """A task's progress, sent as it moves, at most once every `every` seconds (worker side).

    `moved` is the `KernelControl`'s change hook: it only sets a flag, since it runs for every line a cell prints;
    the thread reads the progress (a copy, bounded by `CellProgress`) when the flag is up, and sends it if it
    differs from what it sent last."""

    def __init__(self, key: str, send: Callable[[dict[str, Any]], None], every: float = SEND_EVERY_S):
        self.key = key
        self._send = send
        self._every = every
        self._moved = False  # a plain flag: set from the hooks' thread, cleared here; a bool assignment is atomic
        self._sent: CellProgress | None = None
        self._seq = 0  # numbers the messages, so that the runner keeps the newest if they ever arrive out of order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def moved(self) -> None:
        """The cell or what it printed changed."""
        self._moved = True

    def start(self, read: Callable[[], CellProgress | None]) -> None:
        """Send what `read` says every `every` seconds, when it moved, until `stop`."""
        self._thread = threading.Thread(
            target=self._follow, args=(read,), daemon=True, name=f"nbflow-progress-{self.key}"
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._every * 4)  # a send only queues a message: it never blocks for long

    def _follow(self, read: Callable[[], CellProgress | None]) -> None:
        while not self._stop.wait(self._every):
            self.tick(read)

    def tick(self, read: Callable[[], CellProgress | None]) -> bool:
        """Send the progress if it moved since the last tick; whether a message went."""
        if not self._moved:
            return False
        self._moved = False  # before reading: a change from now on is seen at the next tick
        try:
            progress = read()
            if progress is None or progress == self._sent:
                return False
            self._seq += 1
            self._send({"key": self.key, "seq": self._seq, "progress": progress.to_json()})
        except Exception:  # progress is a view: a message that cannot go is lost, the task goes on
            return False
        self._sent = progress
        return True


class DaskProgress:
    """The progress of a run's tasks on the cluster, as their events arrive (runner side).

    Only the tasks `expect` was told of count, until `finished`: a message of an earlier attempt, of another run
    or garbled is dropped. Holds one progress per running task at most."""

    def __init__(self, client: Any, topic: str):
        self._client = client
        self._lock = threading.Lock()
        self._tasks: dict[str, str] = {}  # Dask key -> task instance, while it runs
        self._seq: dict[str, int] = {}  # Dask key -> the number of the newest message taken
        self._moved: dict[str, CellProgress] = {}  # task instance -> its newest progress, not taken yet
        self.topic: str | None = None  # None: not subscribed, so the tasks need not send anything
        try:
            client.subscribe_topic(topic, self._received)
            self.topic = topic
        except Exception:  # no progress on this cluster; the run goes on without it
            pass

    def expect(self, key: str, task: str) -> None:
        """The Dask task `key` runs an attempt of `task`."""
        with self._lock:
            self._tasks[key] = task

    def finished(self, key: str, progress: CellProgress | None) -> None:
        """The Dask task `key` is over; `progress` is where its notebook got to, as its result tells."""
        with self._lock:
            task = self._tasks.pop(key, None)
            self._seq.pop(key, None)
            if task is not None and progress is not None:
                self._moved[task] = progress

    def moved(self) -> dict[str, CellProgress]:
        """The progress of the tasks that moved since the last call, by task instance."""
        with self._lock:
            moved, self._moved = self._moved, {}
        return moved

    def _received(self, event: Any) -> None:
        """The client's handler for the topic, on its event loop: `event` is (the scheduler's time, the message)."""
        try:
            _, message = event
            key, seq = str(message["key"]), int(message["seq"])
            progress = CellProgress.from_json(message["progress"])
        except Exception:  # not one of ours, or garbled on the way
            return
        with self._lock:
            task = self._tasks.get(key)
            if task is None or progress is None or seq <= self._seq.get(key, 0):
                return
            self._seq[key] = seq
            self._moved[task] = progress

    def close(self) -> None:
        """Stop listening, and clear the topic's events from the scheduler (it would keep them)."""
        topic, self.topic = self.topic, None
        if topic is None:
            return
        try:
            self._client.unsubscribe_topic(topic)
        except Exception:
            pass

        # Defined here, not in the module: the scheduler need not have nbflow installed, and a local function is
        # sent by value. The scheduler has no call to clear a topic: its broker's `truncate` does it (an older
        # distributed kept the events in `Scheduler.events`, by topic).
        def clear(topic: str, dask_scheduler: Any = None) -> None:
            broker = getattr(dask_scheduler, "_broker", None)
            if broker is not None:
                broker.truncate(topic)
            else:
                getattr(dask_scheduler, "events", {}).pop(topic, None)

        try:
            self._client.run_on_scheduler(clear, topic)
        except Exception:  # a scheduler that runs no functions keeps the last events, a bounded number
            pass
        with self._lock:
            self._tasks.clear()
            self._seq.clear()
