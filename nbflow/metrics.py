"""Prometheus metrics and the health of a project, read from its store at each scrape.

`StoreCollector` is a prometheus_client custom collector: nothing is counted in memory, every scrape asks the store
(`nbflow.store.metrics`: aggregates, one row per label and state), so the numbers are the same whichever process
serves them (the Jupyter Server extension at `/nbflow/metrics`, `nbflow scheduler --metrics-port`) and survive
restarts. `project_registry` gives each project a registry of its own, never prometheus_client's global one.

What is exposed, and why in that form:
- `nbflow_runs_total{trigger,state}` and `nbflow_task_runs_total{task,state}`: counters of finished runs and task
  runs (a finished run never changes state and the history is never pruned, so they only grow; `rate()` and
  `increase()` work on them); `nbflow_runs_running` and `nbflow_task_runs_active{state}` are gauges of what is
  going on now.
- `nbflow_run_duration_seconds{trigger,state}` and `nbflow_task_duration_seconds{task,state}`: histograms (what
  Prometheus users expect for durations: `histogram_quantile()` over them, aggregated across labels), built from
  the store's finished runs and executed task runs; a summary's quantiles could not be aggregated.
- `nbflow_task_last_success_timestamp_seconds{task}`, `nbflow_schedule_last_success_timestamp_seconds{schedule}`
  (0 for a schedule that never succeeded, so `time() - ... > 86400` alerts on it too) and `nbflow_schedule_paused`.
- `nbflow_scheduler_lease_held`, `nbflow_scheduler_lease_info{owner,host,pid}`,
  `nbflow_scheduler_lease_expires_timestamp_seconds`, `nbflow_scheduler_last_tick_timestamp_seconds` (the
  heartbeat: each tick renews the lease).
- `nbflow_notifications_total{channel,event,state}` (sent, failed), `nbflow_notifications_pending{channel}`.
- `nbflow_store_readable`: 0 when the store (or the project) cannot be read; then nothing else is exposed.

Label values are bounded: tasks are named without their grid values, and past `MAX_LABELS` tasks (or triggers) the
least recently active are counted together under `OTHERS`, so totals stay exact and the series stay few.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from nbflow.models import RunState, TaskState
from nbflow.schedule import running_scheduler
from nbflow.shapes import Health, SchedulerLease
from nbflow.store import Store
from nbflow.store.metrics import Group, delivery_tallies, groups, schedule_rows
from nbflow.store.notifications import DeliveryState
from nbflow.store.schedules import lease_holder, read_heartbeat

log = logging.getLogger("nbflow.metrics")

MAX_LABELS = 200  # tasks, and triggers, each with series of their own
OTHERS = "(others)"
# seconds: from a notebook that prints a line to a pipeline that runs for hours
BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
# what a duration is kept for: runs that ran (a firing skipped or refused ran nothing), tasks that executed
RUN_TIMED = tuple(str(s) for s in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED))
TASK_TIMED = (str(TaskState.SUCCEEDED), str(TaskState.FAILED))
ACTIVE_TASK_STATES = tuple(s for s in TaskState if not s.finished)

StoreDir = Callable[[], Path]  # looked up at each scrape: the project may be created, moved or fixed meanwhile


class StoreCollector(Collector):
    """The metrics of the project whose store is in `store_dir()`, read at each `collect()`."""

    def __init__(self, store_dir: StoreDir):
        self.store_dir = store_dir
        self._store: Store | None = None
        self._error: str | None = None  # as last logged

    def describe(self) -> list[Metric]:
        return []  # no names declared: registering then reads nothing (the store may not exist yet)

    def collect(self) -> Iterator[Metric]:
        readable = GaugeMetricFamily("nbflow_store_readable", "1 when the project's store could be read")
        try:
            store = self.store()
            families = list(_families(store))
        except Exception as exc:  # a missing or broken project, a damaged store: said, and the next scrape retries
            if str(exc) != self._error:  # once, not at every scrape
                log.warning("nbflow metrics: the store cannot be read: %s", exc)
            self._error = str(exc)
            readable.add_metric([], 0)
            yield readable
            return
        finally:
            if self._store is not None:
                self._store.close()  # this thread's connection: the metrics port answers each scrape in a new thread
        self._error = None
        readable.add_metric([], 1)
        yield readable
        yield from families

    def store(self) -> Store:
        path = self.store_dir()
        if self._store is None or self._store.dir != path:
            self._store = Store(path)
        return self._store


def project_registry(collector: StoreCollector) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one) with the project's collector in it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def health(store: Store, now: datetime | None = None) -> Health:
    """Whether a live scheduler holds the project's lease (`scheduler`: who; `here` left False for the caller to
    set), and when one last ticked."""
    moment = now or datetime.now(timezone.utc)
    holder = running_scheduler(store, moment)
    beat = read_heartbeat(store)
    return Health(
        store_readable=True,
        store_error=None,
        scheduler_running=holder is not None,
        scheduler=SchedulerLease.model_validate({**holder, "here": False}) if holder else None,
        last_tick=_iso(beat.ticked_at) if beat else None,
        last_tick_owner=beat.owner if beat else None,
        seconds_since_tick=round(max(0.0, moment.timestamp() - beat.ticked_at), 3) if beat else None,
    )


def unreadable(error: str) -> Health:
    """The health of a project whose store cannot be read, saying why."""
    return Health(
        store_readable=False,
        store_error=error,
        scheduler_running=False,
        scheduler=None,
        last_tick=None,
        last_tick_owner=None,
        seconds_since_tick=None,
    )


# -- the families ----------------------------------------------------------------------------------------------------


def _families(store: Store) -> Iterator[Metric]:
    runs = groups(store, "runs", RUN_TIMED, BUCKETS)
    tasks = groups(store, "tasks", TASK_TIMED, BUCKETS)
    kept_runs, kept_tasks = _kept(runs), _kept(tasks)
    yield from _counts(runs, tasks, kept_runs, kept_tasks)
    yield _histogram("nbflow_run_duration_seconds", "Durations of finished runs", "trigger", runs, kept_runs)
    yield _histogram(
        "nbflow_task_duration_seconds",
        "Durations of executed task runs (a task up to date is skipped, not timed)",
        "task",
        tasks,
        kept_tasks,
    )
    yield from _successes(store, runs, tasks, kept_tasks)
    yield from _scheduler(store)
    yield from _notifications(store)


def _counts(runs: list[Group], tasks: list[Group], kept_runs: set[str], kept_tasks: set[str]) -> Iterator[Metric]:
    total = CounterMetricFamily("nbflow_runs", "Finished runs by trigger and state", labels=["trigger", "state"])
    for (label, state), count in _tally(runs, kept_runs, finished=True).items():
        total.add_metric([label, state], count)
    yield total
    running = GaugeMetricFamily("nbflow_runs_running", "Runs going on now (as the store has them)")
    running.add_metric([], sum(g.count for g in runs if g.state == RunState.RUNNING))
    yield running
    task_total = CounterMetricFamily(
        "nbflow_task_runs", "Finished task runs by task and state", labels=["task", "state"]
    )
    for (label, state), count in _tally(tasks, kept_tasks, finished=True).items():
        task_total.add_metric([label, state], count)
    yield task_total
    active = GaugeMetricFamily("nbflow_task_runs_active", "Task runs of runs going on, by state", labels=["state"])
    for state in ACTIVE_TASK_STATES:
        active.add_metric([str(state)], sum(g.count for g in tasks if g.state == state))
    yield active


def _successes(store: Store, runs: list[Group], tasks: list[Group], kept_tasks: set[str]) -> Iterator[Metric]:
    task_success = GaugeMetricFamily(
        "nbflow_task_last_success_timestamp_seconds", "When each task last succeeded (UNIX time)", labels=["task"]
    )
    for label, latest in sorted(_latest(g for g in tasks if g.state == TaskState.SUCCEEDED).items()):
        if label in kept_tasks:
            task_success.add_metric([label], latest)
    yield task_success
    succeeded = _latest(g for g in runs if g.state == RunState.SUCCEEDED)
    schedule_success = GaugeMetricFamily(
        "nbflow_schedule_last_success_timestamp_seconds",
        "When a run of each schedule last succeeded (UNIX time; 0: never)",
        labels=["schedule"],
    )
    paused = GaugeMetricFamily("nbflow_schedule_paused", "1 for a paused schedule", labels=["schedule"])
    for row in schedule_rows(store):
        schedule_success.add_metric([row.name], succeeded.get(f"schedule:{row.name}", 0.0))
        paused.add_metric([row.name], int(row.paused))
    yield schedule_success
    yield paused


def _scheduler(store: Store) -> Iterator[Metric]:
    lease = lease_holder(store, time.time())
    held = GaugeMetricFamily("nbflow_scheduler_lease_held", "1 while a live scheduler holds the project's lease")
    held.add_metric([], int(lease is not None))
    yield held
    info = InfoMetricFamily(
        "nbflow_scheduler_lease", "The scheduler holding the lease", labels=["owner", "host", "pid"]
    )
    expires = GaugeMetricFamily(
        "nbflow_scheduler_lease_expires_timestamp_seconds", "When the lease runs out unless renewed (UNIX time)"
    )
    if lease is not None:
        info.add_metric([lease.owner, lease.host, str(lease.pid)], {})
        expires.add_metric([], lease.expires_at)
    yield info
    yield expires
    beat = read_heartbeat(store)
    tick = GaugeMetricFamily(
        "nbflow_scheduler_last_tick_timestamp_seconds",
        "When a scheduler holding the lease last ticked (renewed it; UNIX time)",
    )
    if beat is not None:
        tick.add_metric([], beat.ticked_at)
    yield tick


def _notifications(store: Store) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "nbflow_notifications", "Notices delivered or given up on", labels=["channel", "event", "state"]
    )
    pending: dict[str, int] = defaultdict(int)
    for row in delivery_tallies(store):
        if row.state == DeliveryState.PENDING:
            pending[row.channel] += row.count
        else:
            total.add_metric([row.channel, row.event, row.state], row.count)
    yield total
    waiting = GaugeMetricFamily(
        "nbflow_notifications_pending", "Notices queued or between attempts", labels=["channel"]
    )
    for channel, count in sorted(pending.items()):
        waiting.add_metric([channel], count)
    yield waiting


def _histogram(name: str, documentation: str, label: str, rows: list[Group], kept: set[str]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=[label, "state"])
    per_bucket: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        if row.bucket is not None:
            key = (_label(row.label, kept), row.state)
            per_bucket[key][row.bucket] += row.count
            totals[key] += row.total
    for key, counts in sorted(per_bucket.items()):
        cumulative = list(accumulate(counts))
        bounds = [*map(floatToGoString, BUCKETS), "+Inf"]
        family.add_metric(list(key), list(zip(bounds, cumulative)), totals[key])
    return family


# -- labels ------------------------------------------------------------------------------------------------------------


def _latest(rows: Iterable[Group]) -> dict[str, float]:
    """The latest time of each label."""
    latest: dict[str, float] = {}
    for row in rows:
        if row.latest is not None:
            latest[row.label] = max(latest.get(row.label, row.latest), row.latest)
    return latest


def _kept(rows: list[Group]) -> set[str]:
    """The labels with series of their own: the `MAX_LABELS` most recently active (then those never started)."""
    latest = _latest(rows)
    labels = {row.label for row in rows}
    return set(sorted(labels, key=lambda label: (latest.get(label, float("-inf")), label), reverse=True)[:MAX_LABELS])


def _label(label: str, kept: set[str]) -> str:
    return label if label in kept else OTHERS


def _tally(rows: list[Group], kept: set[str], finished: bool) -> dict[tuple[str, str], int]:
    """Counts by label and state, of the finished states or of the others."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if _finished(row.state) == finished:
            counts[(_label(row.label, kept), row.state)] += row.count
    return dict(sorted(counts.items()))


def _finished(state: str) -> bool:
    """Runs and task runs share `running`; `pending` and `waiting` are a task's only."""
    return state not in (str(RunState.RUNNING), str(TaskState.PENDING), str(TaskState.WAITING))


def _iso(unix: float) -> str:
    """As `running_scheduler` shows the lease's expiry: this machine's zone, to the second."""
    return datetime.fromtimestamp(unix, timezone.utc).astimezone().isoformat(timespec="seconds")
