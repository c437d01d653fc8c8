"""The metrics collector on a real store: label values stay bounded with totals kept exact, grid instances count
under their task, and the scheduler's heartbeat outlives its lease."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nbflow import metrics
from nbflow.models import RunState, TaskRun, TaskState
from nbflow.store import Store
from nbflow.store.schedules import acquire_lease, lease_holder, read_heartbeat, release_lease


def scrape(store_dir) -> dict[tuple[str, tuple], float]:
    registry = metrics.project_registry(metrics.StoreCollector(lambda: store_dir))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def add_run(store: Store, run_id: str, tasks: dict[str, tuple[str, TaskState]]) -> None:
    """A finished run whose instances (name -> (task, state)) started at 10:00:00 and finished 3.5 s later."""
    store.create_run(run_id, "cli", {}, [], [TaskRun(name=name, task=task) for name, (task, _) in tasks.items()])
    for name, (_, state) in tasks.items():
        store.update_task(
            run_id, name, state=state, started_at="2026-11-24T10:00:00.000+01:00",
            finished_at="2026-11-24T10:00:03.500+01:00",
        )  # fmt: skip
    store.finish_run(run_id, RunState.SUCCEEDED)


def test_past_max_labels_the_least_recent_tasks_count_together(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "MAX_LABELS", 2)
    store = Store(tmp_path / ".nbflow")
    add_run(store, "r1", {"old": ("old", TaskState.SUCCEEDED), "older": ("older", TaskState.FAILED)})
    store.update_task("r1", "older", finished_at="2026-11-23T10:00:03.500+01:00")
    add_run(
        store,
        "r2",
        {"x[region=north]": ("x", TaskState.SUCCEEDED), "x[region=south]": ("x", TaskState.SUCCEEDED)},
    )
    store.update_task("r2", "x[region=north]", finished_at="2026-11-25T10:00:03.500+01:00")
    got = scrape(tmp_path / ".nbflow")
    tasks = {labels: v for (name, labels), v in got.items() if name == "nbflow_task_runs_total"}
    assert tasks == {
        (("state", "succeeded"), ("task", "x")): 2,  # the grid's instances count under their task
        (("state", "succeeded"), ("task", "old")): 1,
        (("state", "failed"), ("task", metrics.OTHERS)): 1,  # the least recently active, folded
    }
    assert got[("nbflow_task_duration_seconds_count", (("state", "failed"), ("task", metrics.OTHERS)))] == 1
    assert got[("nbflow_task_duration_seconds_bucket", (("le", "1.0"), ("state", "succeeded"), ("task", "old")))] == 0
    assert got[("nbflow_task_duration_seconds_bucket", (("le", "5.0"), ("state", "succeeded"), ("task", "old")))] == 1
    assert got[("nbflow_task_duration_seconds_sum", (("state", "succeeded"), ("task", "old")))] == pytest.approx(3.5)
    assert ("nbflow_task_last_success_timestamp_seconds", (("task", "older"),)) not in got


def test_a_clock_set_back_counts_as_no_time_not_as_negative(tmp_path):
    store = Store(tmp_path / ".nbflow")
    add_run(store, "r1", {"a": ("a", TaskState.SUCCEEDED)})
    store.update_task("r1", "a", finished_at="2026-11-24T09:59:00.000+01:00")  # before it started
    got = scrape(tmp_path / ".nbflow")
    key = (("state", "succeeded"), ("task", "a"))
    assert got[("nbflow_task_duration_seconds_sum", key)] == 0
    assert got[("nbflow_task_duration_seconds_bucket", (("le", "1.0"), *key))] == 1


def test_the_heartbeat_is_each_renewal_and_stays_after_the_lease_is_released(tmp_path):
    store = Store(tmp_path / ".nbflow")
    assert read_heartbeat(store) is None
    acquire_lease(store, "one", 30, 1000.0)
    acquire_lease(store, "two", 30, 1010.0)  # refused: "one" holds it, so no tick of "two"
    acquire_lease(store, "one", 30, 1020.0)
    beat = read_heartbeat(store)
    assert beat is not None and (beat.owner, beat.ticked_at) == ("one", 1020.0)
    release_lease(store, "one")
    assert lease_holder(store, 1021.0) is None
    assert read_heartbeat(store) == beat
