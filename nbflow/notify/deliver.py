"""Delivering notices: a `Notifier` per process (the scheduler's, the server's, a run's) with one worker thread
that builds each notice, sends it on each channel, and retries a failed attempt with backoff (`retry_seconds` in
`[notify]`: 2 s, then 10 s by default).

Nothing here raises into the caller or blocks it: `notify_run` and `notify_deadline` only queue work. Each attempt
is logged (logger `nbflow.notify`), and each delivery is a row of the store's `notifications` table, from
`pending` to `sent` or `failed` with its attempts and last error. `close` waits for the queue up to a timeout; what
is still waiting for a retry then is recorded `failed` ("not retried: nbflow stopped").
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from nbflow.notify.channels import Channel, DeliveryError, channels_for
from nbflow.notify.message import EVENT_OF_STATE, Notice, deadline_notice, run_notice
from nbflow.project import Project
from nbflow.schedule.model import Schedule
from nbflow.store import Store
from nbflow.store.notifications import Delivery, DeliveryState, add_delivery, deliveries, runs_since, update_delivery

log = logging.getLogger("nbflow.notify")


@dataclass
class _Attempt:
    delivery_id: int
    notice: Notice
    channel: Channel
    number: int  # this attempt's, from 1


class Notifier:
    """Notices of one project, delivered in the background. `delays` overrides `[notify].retry_seconds`."""

    def __init__(self, project: Project, delays: Sequence[float] | None = None):
        self.project = project
        self.store = Store(project.store_dir)
        self.delays = tuple(project.notify.retry_seconds if delays is None else delays)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []  # (due, order, work)
        self._order = itertools.count()
        self._busy = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- what callers queue ---------------------------------------------------------------------------------------

    def notify_run(self, run_id: str, schedule: Schedule | None = None, scheduled: bool | None = None) -> None:
        """Notify the end of a run, if its state is an event (failed, succeeded) some channel wants."""
        self._put(0.0, lambda: self._run_work(run_id, schedule, scheduled))

    def notify_deadline(self, schedule: Schedule, day: date, since: datetime) -> None:
        """Notify that `schedule` has not succeeded by its deadline of `day` (its runs started at or after `since`
        are listed)."""
        self._put(0.0, lambda: self._deadline_work(schedule, day, since))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery is sent or has failed for good; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._queue or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, for at most `timeout` seconds; then record what is left as failed and accept
        nothing more."""
        self.wait(timeout)
        with self._condition:
            self._closed = True
            left, self._queue = self._queue, []
            self._condition.notify_all()
        for _, _, work in left:
            self._abandon(work)
        if self._thread is not None:
            self._thread.join(5.0)
        self.store.close_all()

    def deliveries(self, run_id: str | None = None) -> list[Delivery]:
        return deliveries(self.store, run_id=run_id)

    # -- the worker -------------------------------------------------------------------------------------------------

    def _abandon(self, work: Callable[[], None]) -> None:
        attempt = getattr(work, "attempt", None)
        if isinstance(attempt, _Attempt):
            self._record(attempt, DeliveryState.FAILED, "not retried: nbflow stopped before the next attempt")

    def _put(self, delay: float, work: Callable[[], None]) -> None:
        with self._condition:
            closed = self._closed
            if not closed:
                heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), work))
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="nbflow-notify", daemon=True)
                    self._thread.start()
                self._condition.notify_all()
        if closed:
            self._abandon(work)

    def _loop(self) -> None:
        try:
            while True:
                with self._condition:
                    while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                        self._condition.wait(self._queue[0][0] - time.monotonic() if self._queue else None)
                    if self._closed:
                        return
                    _, _, work = heapq.heappop(self._queue)
                    self._busy += 1
                try:
                    work()
                except Exception:  # a notification must never take its host down
                    log.exception("a notification could not be prepared")
                finally:
                    with self._condition:
                        self._busy -= 1
                        self._condition.notify_all()
        finally:
            self.store.close()  # this thread's connection

    def _run_work(self, run_id: str, schedule: Schedule | None, scheduled: bool | None) -> None:
        row = self.store.run(run_id)
        event = EVENT_OF_STATE.get(row.state) if row is not None else "failure"
        if event is None:
            return  # cancelled, interrupted, skipped: no event to tell
        trigger = row.trigger if row is not None else ""
        is_scheduled = trigger.startswith("schedule:") if scheduled is None else scheduled
        channels = channels_for(self.project, event, is_scheduled, schedule)
        if channels:
            name = schedule.name if schedule else (trigger.split(":", 1)[1] if is_scheduled else None)
            self._send(run_notice(self.store, self.project, run_id, event, name), channels)

    def _deadline_work(self, schedule: Schedule, day: date, since: datetime) -> None:
        channels = channels_for(self.project, "deadline", True, schedule)
        if not channels:
            return
        runs = runs_since(self.store, schedule.trigger, since)
        assert schedule.deadline is not None
        notice = deadline_notice(self.project, schedule.name, schedule.tz, schedule.deadline, day, runs)
        log.warning("%s", notice.payload["text"])
        self._send(notice, channels)

    def _send(self, notice: Notice, channels: list[Channel]) -> None:
        for channel in channels:
            delivery_id = add_delivery(
                self.store, notice.run_id, notice.schedule, notice.event, channel.kind, channel.target
            )
            self._attempt(_Attempt(delivery_id, notice, channel, 1))

    def _attempt(self, attempt: _Attempt) -> None:
        total = len(self.delays) + 1
        what = f"{attempt.notice.schedule or 'run'}: {attempt.notice.event} notification ({attempt.channel})"
        try:
            attempt.channel.send(attempt.notice, self.project)
        except DeliveryError as exc:
            last = exc.permanent or attempt.number >= total
            if last:
                log.error("%s: attempt %d of %d failed: %s; not delivered", what, attempt.number, total, exc)
                self._record(attempt, DeliveryState.FAILED, str(exc))
                return
            delay = self.delays[attempt.number - 1]
            log.warning(
                "%s: attempt %d of %d failed: %s; trying again in %g s", what, attempt.number, total, exc, delay
            )
            self._record(attempt, DeliveryState.PENDING, str(exc))
            retry = _Attempt(attempt.delivery_id, attempt.notice, attempt.channel, attempt.number + 1)

            def again() -> None:
                self._attempt(retry)

            again.attempt = retry  # type: ignore[attr-defined]  # close() records it failed if it never runs
            self._put(delay, again)
            return
        except Exception as exc:  # a bug, or a report that cannot be read: not retried
            log.exception("%s: failed", what)
            self._record(attempt, DeliveryState.FAILED, f"{type(exc).__name__}: {exc}")
            return
        log.info("%s: sent (attempt %d)", what, attempt.number)
        self._record(attempt, DeliveryState.SENT, None)

    def _record(self, attempt: _Attempt, state: DeliveryState, error: str | None) -> None:
        try:
            update_delivery(self.store, attempt.delivery_id, state, attempt.number, error)
        except Exception:
            log.exception("could not record the outcome of notification %d", attempt.delivery_id)


def deliver_after_run(project: Project, run_id: str, timeout: float = 30.0) -> list[Delivery]:
    """Notify the end of a run started here (`nbflow run`, the Python API) and wait for it, at most `timeout`
    seconds in all; returns this run's deliveries as the store has them."""
    notifier = Notifier(project)
    try:
        notifier.notify_run(run_id)
    finally:
        notifier.close(timeout)
    store = Store(project.store_dir)
    try:
        return deliveries(store, run_id=run_id)
    finally:
        store.close()
