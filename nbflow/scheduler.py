"""The scheduler: fires a project's schedules on time, one scheduler process at a time.

The loop is event-driven: it sleeps on `threading.Event.wait(seconds until the next slot)`, woken early by `stop()`,
by a schedule changed in this process (`nbflow.schedule` notifies), or by one of its runs finishing; it reads the
store again at least every `renew_seconds` (the lease renewal), so schedules another process adds are picked up.

Guarantees, and how:
- Only the holder of the store's lease row fires (`Lease`: taken or renewed in one transaction, valid
  `lease_seconds`); another scheduler stands by and takes over when the lease expires, is released, or its holder's
  process is gone. `claim_slot` records the slot as fired, checking the lease and the schedule's last fired slot,
  in the transaction that writes the slot's run row (started, skipped or failed to start), before the run's first
  task starts: a restart or a second scheduler never fires a slot twice, and a scheduler killed at any moment
  leaves no slot claimed without its run. A run whose scheduler died is marked `interrupted` by the next one.
- A last fired slot beyond the next slot (the clock was ahead when it fired, then went back) is reset to now, with
  a warning: the schedule fires again at its next slot instead of staying silent until the clock catches up.
- A slot due while the schedule's previous run is still going becomes a run in state `skipped`, with a message.
- Runs of different schedules (and runs from elsewhere: `nbflow run`, JupyterLab) go side by side; where two
  need one task instance, the later one waits for it (the run layer's claims), so no firing is lost to another run.
- After downtime each schedule fires once, for its most recent slot (`Schedule.due_slot`).
- A run that fails or succeeds, or a firing that cannot start (the pipeline became invalid: recorded as a `failed`
  run with the reason as its message), is handed to the notifier (`nbflow.notify`: its worker thread sends what the
  project's `[notify]` and the schedule ask for, retrying, never blocking a tick) and changes nothing for later
  firings. Each tick also notices a schedule's `deadline` passed without a success that day, once per schedule and
  day (recorded in the store, so a restarted scheduler does not repeat it).
- `stop()` stops firing, cancels the runs in flight (kernels stopped, tasks and run `cancelled`) unless told to let
  them finish, waits (bounded) for notifications being sent, and releases the lease so a standby scheduler takes
  over at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from nbflow.errors import NbflowError
from nbflow.graph import load
from nbflow.models import RunState
from nbflow.notify import Notifier
from nbflow.project import Project, load_project
from nbflow.run.background import BackgroundRun, start_run
from nbflow.run.prepare import new_run_id
from nbflow.schedule import Schedule, current_time, read_schedule, read_schedules, subscribe, unsubscribe
from nbflow.store import Store, open_store
from nbflow.store.notifications import claim_deadline, runs_since
from nbflow.store.schedules import (
    HOST,
    LeaseRecord,
    SlotTaken,
    acquire_lease,
    claim_slot,
    release_lease,
    reset_last_fired,
)

log = logging.getLogger("nbflow.scheduler")


class Lease:
    """The right to fire a project's schedules: one row in the store, owned by one scheduler at a time."""

    def __init__(self, store: Store, owner: str, seconds: float):
        self.store, self.owner, self.seconds = store, owner, seconds
        self.holder: LeaseRecord | None = None  # who else holds it, when acquire() said no

    def acquire(self, now_ts: float) -> bool:
        """Take the lease, or renew it; False while another live scheduler holds it."""
        lease = acquire_lease(self.store, self.owner, self.seconds, now_ts)
        self.holder = None if lease.owner == self.owner else lease
        return self.holder is None

    def release(self) -> None:
        release_lease(self.store, self.owner)


class Outcome(str, Enum):
    """How a due slot ended: a run started, a run recorded as skipped, or a run recorded as failed to start."""

    STARTED = "started"
    SKIPPED = "skipped"  # the schedule's previous run still going, or the project's lock held elsewhere
    FAILED = "failed"  # the run could not start

    def __str__(self) -> str:
        return self.value


@dataclass
class Firing:
    """What the scheduler did with a due slot."""

    schedule: str
    slot: datetime
    outcome: Outcome
    run_id: str
    message: str | None = None


class Scheduler:
    """Fires the schedules of one project. `run_forever()` in the foreground, or `start()` in a thread (the
    Jupyter Server extension), `stop()` from anywhere. `tick()` does one round at `clock()` (tests step the clock).

    `clock` returns an aware datetime (default: now); `lease_seconds`/`renew_seconds` time the lease (the loop
    wakes at least every `renew_seconds`); `notify_delays` overrides the waits between delivery attempts of
    `[notify].retry_seconds`; `run_options` go to each run (`workers`, `prewarm`, ...)."""

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        lease_seconds: float = 30.0,
        renew_seconds: float = 10.0,
        on_firing: Callable[[Firing], None] | None = None,
        notify_delays: Sequence[float] | None = None,
        **run_options: Any,
    ):
        self.project = project if isinstance(project, Project) else load_project(project)
        self.root = self.project.root
        self.clock = clock or current_time
        self.lease_seconds, self.renew_seconds = lease_seconds, min(renew_seconds, lease_seconds / 2)
        self.on_firing = on_firing or (lambda firing: None)
        self.run_options = run_options
        self.store = open_store(self.project.store_dir)  # runs of a dead scheduler become `interrupted`
        self.owner = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease = Lease(self.store, self.owner, lease_seconds)
        self.notifier = Notifier(self.project, notify_delays)
        self.holds_lease = False
        self._lease_state: bool | None = None  # as last logged
        self.next_due: datetime | None = None
        self._handles: dict[str, BackgroundRun] = {}
        self._broken: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel_on_stop = True
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._looping = False
        self._closed = False

    # -- the interface ----------------------------------------------------------------------------------------

    def start(self) -> Scheduler:
        """Run the loop in a daemon thread (for a server to host); returns at once."""
        self._thread = threading.Thread(target=self.run_forever, name="nbflow-scheduler", daemon=True)
        self._looping = True
        self._thread.start()
        return self

    def stop(self, cancel: bool = True, timeout: float | None = None) -> None:
        """Stop firing; cancel the runs in flight (or, with `cancel=False`, let them finish); release the lease.
        Safe from any thread and from a signal handler; waits for the loop thread started by `start()`."""
        self._cancel_on_stop = cancel
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        elif not self._looping:
            self._shutdown()

    def wake(self) -> None:
        """Look at the schedules again now (a schedule changed)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._looping and not self._closed

    @property
    def in_flight(self) -> dict[str, str]:
        """Schedule name -> id of its run going on now."""
        return {name: handle.id for name, handle in list(self._handles.items()) if not handle.done}

    def cancel_run(self, run_id: str) -> bool:
        """Cancel one of this scheduler's runs in flight (the JupyterLab panel's Cancel); False if none has that id."""
        for handle in list(self._handles.values()):
            if handle.id == run_id and not handle.done:
                handle.cancel()
                return True
        return False

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no run of this scheduler is going and its notifications are delivered; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for handle in list(self._handles.values()):
            try:
                handle.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except Exception:
                pass  # logged by its watcher
        for thread in list(self._threads):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        delivered = self.notifier.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return delivered and not self.in_flight and not any(t.is_alive() for t in self._threads)

    def run_forever(self) -> None:
        """Fire schedules until `stop()`; then stop the runs in flight as `stop()` says."""
        self._looping = True
        subscribe(self.root, self.wake)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    self.tick()
                    seconds = self._sleep_seconds()
                except Exception:  # a store error, a bug: the scheduler logs it and goes on
                    seconds = min(self.renew_seconds, 5.0)
                    log.exception("the scheduler's round failed; trying again in %.0f s", seconds)
                self._wake.wait(seconds)
        finally:
            unsubscribe(self.root, self.wake)
            self._shutdown()

    # -- one round ------------------------------------------------------------------------------------------------

    def tick(self) -> list[Firing]:
        """Take or renew the lease; if held, fire every due schedule at `clock()`. Returns what it did."""
        with self._lock:
            if self._closed:
                return []
            now = self.clock()
            self._handles = {name: h for name, h in self._handles.items() if not h.done}
            held = self.lease.acquire(now.timestamp())
            if held != self._lease_state:
                if held:
                    log.info("holding the scheduler lease for %s; firing its schedules", self.root)
                elif self.lease.holder:
                    log.info(
                        "another scheduler holds the lease for %s (process %s on %s); standing by",
                        self.root,
                        self.lease.holder.pid,
                        self.lease.holder.host,
                    )
            self.holds_lease = self._lease_state = held
            if not held:
                self.next_due = None
                return []
            schedules = [self._behind(s, now) for s in read_schedules(self.store) if self._usable(s, now)]
            due = sorted(((slot, s) for s in schedules if (slot := s.due_slot(now))), key=lambda pair: pair[0])
            firings = []
            for slot, schedule in due:
                if self._stopping.is_set():
                    break
                firing = self._fire(schedule, slot, now)
                if firing is not None:
                    firings.append(firing)
                    try:
                        self.on_firing(firing)
                    except Exception:
                        log.exception("the on_firing callback failed")
            for schedule in schedules:
                self._check_deadline(schedule, now)
            self.next_due = min((s.slot_after(now) for s in schedules if not s.paused), default=None)
            return firings

    def _check_deadline(self, schedule: Schedule, now: datetime) -> None:
        """Notice, once per day, a deadline passed with no run of the schedule started that day succeeded."""
        passed = schedule.deadline_passed(now)
        if passed is None:
            return
        day, _ = passed
        since = datetime(day.year, day.month, day.day, tzinfo=schedule.zone)
        if not claim_deadline(self.store, schedule.name, day.isoformat()):
            return  # settled already (here, or by an earlier scheduler)
        if not any(run.state is RunState.SUCCEEDED for run in runs_since(self.store, schedule.trigger, since)):
            self.notifier.notify_deadline(schedule, day, since)

    def _usable(self, schedule: Schedule, now: datetime) -> bool:
        """A schedule whose slots cannot be computed (its time zone is gone from this machine, say) is left out and
        logged once; the others fire."""
        try:
            schedule.due_slot(now)
            schedule.slot_after(now)
        except Exception as exc:
            if schedule.name not in self._broken:
                self._broken.add(schedule.name)
                log.error("%s: left out, its fire times cannot be computed: %s", schedule.name, exc)
            return False
        self._broken.discard(schedule.name)
        return True

    def _behind(self, schedule: Schedule, now: datetime) -> Schedule:
        """The schedule, its last fired slot reset to `now` when that lies beyond the next slot: it fired while the
        clock was ahead (a jump, a clock set back), and would otherwise stay silent until the clock got there. The
        next slot itself is kept: it fired early, and firing it again would fire it twice."""
        fired = schedule.last_fired
        if fired is None or fired <= schedule.slot_after(now):
            return schedule
        if not reset_last_fired(self.store, schedule, now, self.owner, now.timestamp()):
            return schedule  # changed meanwhile: read again next round
        log.warning(
            "%s: its last fired slot %s is in the future (the clock is at %s: it was ahead, or went back); "
            "counting its slots from now, next at %s",
            schedule.name,
            _when(fired),
            _when(now),
            _when(schedule.slot_after(now)),
        )
        return replace(schedule, last_fired=now)

    def _claim(self, schedule: Schedule, slot: datetime, now: datetime) -> Callable[[Store], None]:
        """Claims `slot` inside the transaction recording its run (SlotTaken, and no run, when it cannot)."""

        def claim(store: Store) -> None:
            if not claim_slot(store, schedule, slot, self.owner, now.timestamp()):
                raise SlotTaken(f"{schedule.name}: slot {_when(slot)} was fired already, or the lease was lost")

        return claim

    def _fire(self, schedule: Schedule, slot: datetime, now: datetime) -> Firing | None:
        previous = self._handles.get(schedule.name)
        previous_id = previous.id if previous is not None and not previous.done else self._running_elsewhere(schedule)
        if previous_id:
            message = f"slot {_when(slot)} not run: the schedule's previous run {previous_id} was still going"
            return self._record(schedule, slot, now, Outcome.SKIPPED, message)
        params = schedule.params_for(slot)
        try:
            handle = start_run(
                load(self.root),
                trigger=schedule.trigger,
                targets=schedule.targets or None,
                params=params,
                grid=schedule.grid_for(slot),
                on_record=self._claim(schedule, slot, now),
                **self.run_options,
            )
        except SlotTaken:
            return None
        except Exception as exc:  # the pipeline or the schedule became invalid, or a bug: later firings go on
            if not isinstance(exc, NbflowError):
                log.exception("%s: the run could not start", schedule.name)
            message = f"slot {_when(slot)} could not start: {exc}"
            firing = self._record(schedule, slot, now, Outcome.FAILED, message)
            if firing is not None:  # else the run was recorded, then failed to start: it is kept as failed
                self.notifier.notify_run(firing.run_id, schedule, scheduled=True)
            return firing
        self._handles[schedule.name] = handle
        log.info("%s: slot %s fired: run %s started", schedule.name, _when(slot), handle.id)
        self._in_thread(self._watch, schedule.name, slot, handle)
        return Firing(schedule.name, slot, Outcome.STARTED, handle.id)

    def _running_elsewhere(self, schedule: Schedule) -> str | None:
        """A run of this schedule still going in a live process (another scheduler, or an earlier one here)."""
        return next((run.id for run in self.store.running_runs(schedule.trigger) if self.store.is_alive(run)), None)

    def _record(
        self, schedule: Schedule, slot: datetime, now: datetime, outcome: Outcome, message: str
    ) -> Firing | None:
        """A firing that did not run, kept in the history as a run with no tasks and a message saying why (claiming
        the slot with it); None when the slot was taken meanwhile."""
        run_id, state, params = new_run_id(), RunState(outcome.value), schedule.params_for(slot)
        claim = self._claim(schedule, slot, now)
        try:
            self.store.create_run(run_id, schedule.trigger, params, schedule.targets, [], state=state, within=claim)
        except SlotTaken:
            return None
        self.store.finish_run(run_id, state, message)
        report = log.warning if outcome is Outcome.SKIPPED else log.error
        report("%s: run %s %s: %s", schedule.name, run_id, state, message)
        return Firing(schedule.name, slot, outcome, run_id, message)

    # -- after a run ------------------------------------------------------------------------------------------------

    def _watch(self, name: str, slot: datetime, handle: BackgroundRun) -> None:
        try:
            try:
                run = handle.wait()
            except Exception:
                log.exception("%s: run %s stopped with an error", name, handle.id)
                run = None
            state = run.state if run is not None else RunState.FAILED
            duration = run.duration_s if run is not None else None
            took = f" in {duration:.1f}s" if duration is not None else ""
            log.info("%s: slot %s: run %s %s%s", name, _when(slot), handle.id, state, took)
            try:
                schedule: Schedule | None = read_schedule(self.store, name)
            except NbflowError:
                schedule = None  # removed meanwhile: the project's [notify] still hears of its run
            self.notifier.notify_run(handle.id, schedule, scheduled=True)
        finally:
            self._wake.set()  # its schedule may be due again, now that its run is over

    def _in_thread(self, target: Callable[..., None], *args: Any) -> None:
        def body() -> None:
            try:
                target(*args)
            finally:
                self.store.close()  # this thread's connection

        thread = threading.Thread(target=body, name=f"nbflow-scheduler-{target.__name__.strip('_')}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # -- sleeping and stopping -----------------------------------------------------------------------------------------

    def _sleep_seconds(self) -> float:
        seconds = self.renew_seconds
        if self.next_due is not None:
            seconds = min(seconds, (self.next_due - self.clock()).total_seconds() + 0.005)
        return max(0.0, seconds)

    def _shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            in_flight = [h for h in self._handles.values() if not h.done]
            for handle in in_flight:
                log.info("stopping: %s run %s", "cancelling" if self._cancel_on_stop else "waiting for", handle.id)
                if self._cancel_on_stop:
                    handle.cancel()
            for handle in in_flight:
                try:
                    handle.wait(timeout=120 if self._cancel_on_stop else None)
                except Exception:
                    pass
            for thread in self._threads:
                thread.join(timeout=60)  # runs being watched
            self.notifier.close(timeout=30)
            try:
                self.lease.release()
            except Exception:
                log.exception("could not release the scheduler lease; it expires in %.0f s", self.lease_seconds)
            self.store.close_all()  # its watcher threads read it too
            self._looping = False


def _when(slot: datetime) -> str:
    return slot.isoformat(timespec="seconds")
