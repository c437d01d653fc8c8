"""Run and task events pushed to the browser: one thread per server follows the store, every open
`GET events` stream (server-sent events) gets what changed.

Whoever changes a run (this server's threads, the CLI, the scheduler, a kernel running `pipe.run()`) writes it to
the project's store, so the store is what is followed: SQLite's `PRAGMA data_version` tells, for the price of a
query, that another connection committed. Only then are the running runs (and those that were running a moment
ago) read again and compared with what was last sent, so an idle server reads nothing and a running one sends
only the changes. A stream whose reader falls behind is told to read everything again (`resync`) rather than
buffering without bound; streams are capped in number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from nbflow import history
from nbflow.models import RunState
from nbflow.server.paths import ServedProject
from nbflow.shapes import RunSummary, StoreEvent, TaskRunEntry
from nbflow.store import Store, open_store
from nbflow.times import iso, now

EVERY_S = 0.05  # how often the store is asked whether anything changed
QUEUE_LIMIT = 1000  # events held for one stream before it is told to resync
STREAMS_LIMIT = 64
log = logging.getLogger("nbflow.server")


@dataclass
class Stream:
    """One open `GET events`: its queue lives on the server's event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[StoreEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def put(self, event: StoreEvent | None) -> None:
        """From any thread: queue the event (None ends the stream)."""
        self.loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: StoreEvent | None) -> None:
        if event is not None and self.queue.full():  # the reader fell behind: it reads everything again instead
            while not self.queue.empty():
                self.queue.get_nowait()
            event = StoreEvent(type="resync", run_id="")
        self.queue.put_nowait(event)


class TooManyStreams(Exception):
    """STREAMS_LIMIT streams are open already."""


class RunEvents:
    """The store followed while at least one stream is open."""

    def __init__(self, served: ServedProject):
        self.served = served
        self._streams: list[Stream] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def open(self) -> Stream:
        """A new stream, on the calling event loop; TooManyStreams past STREAMS_LIMIT."""
        stream = Stream(asyncio.get_running_loop())
        with self._lock:
            if len(self._streams) >= STREAMS_LIMIT:
                raise TooManyStreams()
            self._streams.append(stream)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._follow, name="nbflow-events", daemon=True)
                self._thread.start()
        return stream

    def close_stream(self, stream: Stream) -> None:
        with self._lock:
            with suppress(ValueError):
                self._streams.remove(stream)

    def close(self) -> None:
        """End every stream and the thread (the server stops)."""
        self._closed.set()
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            with suppress(RuntimeError):  # its loop has closed already
                stream.put(None)

    def _send(self, event: StoreEvent) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            with suppress(RuntimeError):
                stream.put(event)

    def _follow(self) -> None:
        store: Store | None = None
        last_version: int | None = None
        sent = Sent()
        try:
            while not self._closed.wait(EVERY_S):
                with self._lock:
                    if not self._streams:
                        self._thread = None
                        return
                try:
                    if store is None:
                        store = open_store(self.served.project().store_dir)
                    version = store.data_version()
                    if version == last_version:
                        continue
                    last_version = version
                    for event in sent.changes(store):
                        self._send(event)
                except Exception as exc:  # no project yet, or a store that cannot be read: asked again
                    log.debug("nbflow: events: %s", exc)
                    if store is not None:
                        store.close()
                    store, last_version = None, None
                    self._closed.wait(1.0)
        finally:
            if store is not None:
                store.close()


class Sent:
    """What the streams were last told about each run that is running (or was, a moment ago)."""

    RECENT = 5  # the newest runs looked at for one that started and ended between two looks

    def __init__(self) -> None:
        self.since = iso(now())
        self.runs: dict[str, RunSummary] = {}
        self.tasks: dict[str, dict[str, TaskRunEntry]] = {}
        self.rows: dict[str, dict[str, tuple[Any, ...]]] = {}  # each run's task rows as last read
        self.ended: deque[str] = deque(maxlen=100)

    def changes(self, store: Store) -> list[StoreEvent]:
        """The events that bring a reader from what was sent to what the store holds now."""
        rows = {row.id: row for row in store.running_runs()}
        for row in store.runs(self.RECENT):
            if row.id not in self.ended and row.started_at >= self.since:
                rows.setdefault(row.id, row)
        for run_id in self.runs:
            ended = store.run(run_id) if run_id not in rows else None
            if ended is not None:  # ended since: its last word
                rows[run_id] = ended
        events: list[StoreEvent] = []
        for row in rows.values():
            events += self._run_changes(store, history.summary(row))
            if row.state is not RunState.RUNNING:  # told as ended: forgotten
                self.runs.pop(row.id, None)
                self.tasks.pop(row.id, None)
                self.rows.pop(row.id, None)
                self.ended.append(row.id)
        return events

    def _run_changes(self, store: Store, summary: RunSummary) -> list[StoreEvent]:
        """The run's event (when it says something new) and its tasks' that changed: the run's first, so a reader
        knows the run before its tasks, and last once it ended, so its end is the last word about it."""
        tasks: list[StoreEvent] = []
        known = self.tasks.setdefault(summary.id, {})
        for task in store.changed_task_runs(summary.id, self.rows.setdefault(summary.id, {})):
            entry = history.task_entry(task, store.root)
            if known.get(entry.name) != entry:
                known[entry.name] = entry
                tasks.append(StoreEvent(type="task", run_id=summary.id, task=entry))
        seen = self.runs.get(summary.id)
        # a running run's duration grows at every look: only what it says besides is news
        if seen is not None and seen.model_dump(exclude={"duration_s"}) == summary.model_dump(exclude={"duration_s"}):
            return tasks
        self.runs[summary.id] = summary
        run = StoreEvent(type="run", run_id=summary.id, run=summary)
        return [run, *tasks] if summary.state is RunState.RUNNING else [*tasks, run]


def sse(event: StoreEvent, number: int) -> str:
    """The event as a server-sent event: its type as the event name, its JSON as the data."""
    data: dict[str, Any] = event.to_json()
    return f"id: {number}\nevent: {event.type}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
