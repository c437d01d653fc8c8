"""The scheduler with an injected clock (no waiting for wall-clock minutes), real notebooks, kernels and store."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from conftest import write_notebook

from nbflow.errors import UsageError
from nbflow.project import load_project
from nbflow.run import start
from nbflow.schedule import add_schedule, list_schedules, pause_schedule, read_schedule, resume_schedule
from nbflow.scheduler import Scheduler
from nbflow.store import Store, open_store
from nbflow.store.notifications import deliveries

T0 = datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc)  # 16:30 in Paris


class Clock:
    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def schedulers(project):
    """Make schedulers on the project; each is stopped (its runs cancelled) at the end of the test."""
    made = []

    def make(clock, **options):
        options.setdefault("notify_delays", (0.01, 0.01))  # a failed delivery is tried 3 times, without waiting
        scheduler = Scheduler(project, clock=clock, workers=1, **options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()


def runs(project, trigger=None):
    store = open_store(load_project(project).store_dir)
    rows = [r for r in reversed(store.runs()) if trigger is None or r.trigger == trigger]
    store.close()
    return rows


def stamp_notebook(project, name="stamp", sleep=0):
    """A task that writes the fire time it was given to out/NAME.txt (after sleeping `sleep` seconds)."""
    return write_notebook(
        project / f"{name}.ipynb",
        f'outputs = ["out/{name}.txt"]\nwhen = "never"',
        "import time",
        f"time.sleep({sleep})",
        "open(outputs[0], 'w').write(when)",
    )


class Hooks(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    """A local HTTP server on 127.0.0.1 that records what is POSTed to it."""
    Hooks.received = []
    server = HTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", Hooks.received
    server.shutdown()
    server.server_close()


def test_a_firing_runs_the_targets_with_the_fire_time_and_the_schedules_trigger(project, clock, schedulers):
    stamp_notebook(project, "stamp")
    write_notebook(project / "other.ipynb", 'outputs = ["out/other.txt"]', "open(outputs[0], 'w')")
    add_schedule(
        project,
        "daily",
        cron="0 17 * * *",
        tz="Europe/Paris",
        targets=["stamp"],
        params={"when": "{datetime}"},
        now=clock(),
    )
    scheduler = schedulers(clock)
    assert scheduler.tick() == [] and runs(project) == []
    assert scheduler.next_due == datetime.fromisoformat("2026-11-24T17:00:00+01:00")

    clock.now = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)  # 17:00 in Paris
    [firing] = scheduler.tick()
    assert firing.outcome == "started" and firing.schedule == "daily"
    assert scheduler.wait_idle(timeout=120)
    [run] = runs(project)
    assert run.id == firing.run_id and run.trigger == "schedule:daily" and run.state == "succeeded"
    assert run.params["when"] == "2026-11-24T17:00:00+01:00" and run.counts == {"succeeded": 1}
    assert (project / "out" / "stamp.txt").read_text() == "2026-11-24T17:00:00+01:00"
    assert not (project / "out" / "other.txt").exists()
    [entry] = list_schedules(project, now=clock())
    assert entry["last_fired"] == "2026-11-24T17:00:00+01:00" and entry["next_fire"] == "2026-11-25T17:00:00+01:00"
    assert scheduler.tick() == []  # the same slot never fires twice


def test_a_firing_while_the_previous_run_goes_on_is_recorded_skipped(project, clock, schedulers):
    stamp_notebook(project, "slow", sleep=120)
    add_schedule(project, "slow", every="10s", params={"when": "{datetime}"}, now=clock())
    scheduler = schedulers(clock)
    clock.advance(seconds=10)
    [started] = scheduler.tick()
    for _ in range(2):
        clock.advance(seconds=10)
        [skipped] = scheduler.tick()
        assert skipped.outcome == "skipped" and started.run_id in skipped.message
    assert scheduler.in_flight == {"slow": started.run_id}
    scheduler.stop()  # cancels the run in flight
    states = sorted((r.trigger, r.state, r.counts) for r in runs(project))
    assert states == [
        ("schedule:slow", "cancelled", {"cancelled": 1}),
        ("schedule:slow", "skipped", {}),
        ("schedule:slow", "skipped", {}),
    ]
    skipped_runs = sorted((r for r in runs(project) if r.state == "skipped"), key=lambda r: r.message)
    assert skipped_runs[0].message == (
        f"slot 2026-11-24T15:30:20+00:00 not run: the schedule's previous run {started.run_id} was still going"
    )
    assert [r.params for r in skipped_runs] == [
        {"when": "2026-11-24T15:30:20+00:00"},
        {"when": "2026-11-24T15:30:30+00:00"},
    ]
    assert read_schedule(Store(project / ".nbflow"), "slow").last_fired == clock()


def test_after_downtime_one_catch_up_run_for_the_latest_slot(project, clock, schedulers):
    stamp_notebook(project)
    add_schedule(project, "hourly", cron="0 * * * *", tz="UTC", params={"when": "{datetime}"}, now=clock())
    first = schedulers(clock)
    clock.now = datetime(2026, 11, 24, 16, 0, 5, tzinfo=timezone.utc)
    assert [f.outcome for f in first.tick()] == ["started"]
    first.stop(cancel=False)  # the scheduler goes down for the night

    clock.now = datetime(2026, 11, 25, 7, 20, tzinfo=timezone.utc)  # 15 slots missed
    second = schedulers(clock)
    [catch_up] = second.tick()
    assert catch_up.slot == datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)
    assert second.tick() == []
    assert second.wait_idle(timeout=120)
    assert [r.params["when"] for r in runs(project)] == ["2026-11-24T16:00:00+00:00", "2026-11-25T07:00:00+00:00"]
    assert [r.state for r in runs(project)] == ["succeeded", "succeeded"]


def test_the_slot_is_stored_with_its_run_before_the_run_starts_so_a_restart_never_fires_it_again(
    project, clock, schedulers, monkeypatch
):
    stamp_notebook(project, "slow", sleep=120)
    add_schedule(project, "s", every="1m", now=clock())
    seen = []
    real_stop_orphan_kernels = start.stop_orphan_kernels

    def checking_the_store(store):  # right after the run is recorded, before its first task
        store_now = Store(project / ".nbflow")
        seen.append((read_schedule(store_now, "s").last_fired, [r.state for r in store_now.runs()]))
        return real_stop_orphan_kernels(store)

    monkeypatch.setattr("nbflow.run.start.stop_orphan_kernels", checking_the_store)
    first = schedulers(clock)
    clock.advance(minutes=1)
    [firing] = first.tick()
    assert seen == [(firing.slot, ["running"])]  # already stored, with its run, when the run started
    first.stop()  # a restart: its run is cancelled

    again = schedulers(clock)
    assert again.tick() == []
    clock.advance(seconds=59)
    assert again.tick() == []
    clock.advance(seconds=1)
    [next_firing] = again.tick()
    assert next_firing.slot == firing.slot + timedelta(minutes=1)
    assert len(runs(project)) == 2


def test_a_failing_run_raises_alerts_and_later_firings_go_on(project, clock, schedulers, webhook, tmp_path):
    url, received = webhook
    (project / "nbflow.toml").write_text("[notify]\nallow_private_webhooks = true\n")  # the test's hook is local
    write_notebook(project / "load.ipynb", 'outputs = ["out.txt"]\nday = "x"', "raise ValueError(f'bad rows on {day}')")
    record = tmp_path / "alerts.log"
    command = (
        f'echo "$NBFLOW_SCHEDULE $NBFLOW_RUN_ID $NBFLOW_STATE $NBFLOW_PROJECT" >> {record}; '
        f"{sys.executable} -c \"import json,sys; print(json.load(sys.stdin)['failed_tasks'][0]['name'])\" >> {record}"
    )
    add_schedule(
        project,
        "nightly",
        every="1h",
        params={"day": "{date}"},
        on_failure_command=command,
        on_failure_webhook=url,
        now=clock(),
    )
    scheduler = schedulers(clock)
    firings = []
    for _ in range(2):
        clock.advance(hours=1)
        [firing] = scheduler.tick()
        firings.append(firing)
        assert scheduler.wait_idle(timeout=120)
    assert [r.state for r in runs(project)] == ["failed", "failed"]

    assert [path for path, _, _ in received] == ["/alerts", "/alerts"]
    assert {content_type for _, content_type, _ in received} == {"application/json"}
    body = received[0][2]
    assert body["schedule"] == "nightly" and body["run_id"] == firings[0].run_id and body["state"] == "failed"
    [task] = body["failed_tasks"]
    assert task["name"] == "load" and task["error"]["ename"] == "ValueError"
    assert task["error"]["evalue"] == "bad rows on 2026-11-24" and task["error"]["cell_index"] is not None
    assert "ValueError" in body["text"] and received[1][2]["run_id"] == firings[1].run_id

    lines = record.read_text().splitlines()
    assert lines == [
        f"nightly {firings[0].run_id} failed {project}",
        "load",
        f"nightly {firings[1].run_id} failed {project}",
        "load",
    ]


def test_alerts_that_cannot_be_delivered_are_logged_and_the_scheduler_goes_on(project, clock, schedulers, caplog):
    (project / "nbflow.toml").write_text("[notify]\nallow_private_webhooks = true\n")  # the test's hook is local
    write_notebook(project / "bad.ipynb", 'outputs = ["out.txt"]', "1 / 0")
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    add_schedule(
        project,
        "s",
        every="1m",
        on_failure_command="echo no mail server >&2; exit 3",
        on_failure_webhook=f"http://127.0.0.1:{closed_port}/hook",
        now=clock(),
    )
    scheduler = schedulers(clock)
    caplog.set_level(logging.INFO, logger="nbflow.notify")
    for _ in range(2):
        clock.advance(minutes=1)
        assert [f.outcome for f in scheduler.tick()] == ["started"]
        assert scheduler.wait_idle(timeout=120)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    retried = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("attempt 3 of 3 failed: the command exited with code 3: no mail server" in e for e in errors) == 2
    hook = f"the webhook http://127.0.0.1:{closed_port}/hook could not be reached"
    assert sum(hook in e for e in errors) == 2 and sum(hook in w for w in retried) == 4
    assert [r.state for r in runs(project)] == ["failed", "failed"]
    store = open_store(load_project(project).store_dir)
    try:
        outcomes = [(d.channel, str(d.state), d.attempts) for d in deliveries(store)]
    finally:
        store.close()
    assert sorted(outcomes) == [("command", "failed", 3)] * 2 + [("webhook", "failed", 3)] * 2


def test_a_pipeline_broken_at_fire_time_is_a_failed_run_with_an_alert(project, clock, schedulers, webhook):
    url, received = webhook
    (project / "nbflow.toml").write_text("[notify]\nallow_private_webhooks = true\n")  # the test's hook is local
    stamp_notebook(project)
    add_schedule(project, "s", every="1m", on_failure_webhook=url, now=clock())
    write_notebook(project / "broken.ipynb", "outputs = make_paths()", "pass")
    scheduler = schedulers(clock)
    clock.advance(minutes=1)
    [firing] = scheduler.tick()
    assert firing.outcome == "failed" and "broken.ipynb: parameters cell, line 1" in firing.message
    assert scheduler.wait_idle(timeout=60)
    [run] = runs(project)
    assert run.state == "failed" and run.trigger == "schedule:s" and run.counts == {}
    assert received[0][2]["run_id"] == run.id and "broken.ipynb" in received[0][2]["message"]
    (project / "broken.ipynb").unlink()  # fixed: the next slot runs
    clock.advance(minutes=1)
    assert [f.outcome for f in scheduler.tick()] == ["started"]


def test_only_the_lease_holder_fires_and_another_takes_over(project, clock, schedulers):
    stamp_notebook(project)
    add_schedule(project, "s", every="10s", now=clock())
    a = schedulers(clock, lease_seconds=30)
    b = schedulers(clock, lease_seconds=30)
    assert a.tick() == [] and a.holds_lease
    assert b.tick() == [] and not b.holds_lease
    clock.advance(seconds=10)
    assert b.tick() == []
    assert [f.outcome for f in a.tick()] == ["started"]
    assert a.wait_idle(timeout=120)

    clock.advance(seconds=31)  # `a` hangs and stops renewing: its lease expires
    [taken_over] = b.tick()
    assert b.holds_lease and taken_over.slot == T0 + timedelta(seconds=40)  # one catch-up, not three
    assert a.tick() == [] and not a.holds_lease
    assert b.wait_idle(timeout=120)

    b.stop()  # a clean stop releases the lease: `a` takes over at once
    clock.advance(seconds=10)
    assert [f.slot for f in a.tick()] == [T0 + timedelta(seconds=50)]
    assert a.wait_idle(timeout=120)
    assert [r.trigger for r in runs(project)] == ["schedule:s"] * 3


def test_schedules_due_together_on_disjoint_tasks_run_side_by_side(project, clock, schedulers):
    stamp_notebook(project, "first", sleep=3)
    stamp_notebook(project, "second", sleep=3)
    add_schedule(project, "a", every="1m", targets=["first"], now=clock())
    add_schedule(project, "b", every="1m", targets=["second"], now=clock())
    scheduler = schedulers(clock)
    clock.advance(minutes=1)
    firings = scheduler.tick()
    assert sorted(f.schedule for f in firings) == ["a", "b"]  # both fire at once: they share no task
    assert scheduler.wait_idle(timeout=120)
    recorded = {r.trigger: r for r in runs(project)}
    assert {t: r.state for t, r in recorded.items()} == {"schedule:a": "succeeded", "schedule:b": "succeeded"}
    a, b = recorded["schedule:a"], recorded["schedule:b"]
    assert a.started_at < b.finished_at and b.started_at < a.finished_at  # they overlapped


def test_a_schedule_runs_a_grid_with_the_fire_date_in_its_values(project, clock, schedulers):
    write_notebook(
        project / "daily.ipynb",
        'day = "2026-11-01"\nregion = "all"\noutputs = ["out/{day}_{region}.txt"]',
        "open(outputs[0], 'w').write(day)",
    )
    add_schedule(project, "s", every="1m", grid={"day": "2026-11-20..{date}/2d", "region": "north,south"}, now=clock())
    assert list_schedules(project, now=clock())[0]["grid"] == {"day": "2026-11-20..{date}/2d", "region": "north,south"}
    scheduler = schedulers(clock)
    clock.advance(minutes=1)
    [firing] = scheduler.tick()
    assert scheduler.wait_idle(timeout=120)
    [run] = runs(project)
    assert run.state == "succeeded" and run.grid == {
        "day": ["2026-11-20", "2026-11-22", "2026-11-24"],
        "region": ["north", "south"],
    }
    written = sorted(p.name for p in (project / "out").iterdir())
    assert written == [f"{d}_{r}.txt" for d in ("2026-11-20", "2026-11-22", "2026-11-24") for r in ("north", "south")]
    with pytest.raises(UsageError, match="-g day"):
        add_schedule(project, "bad", every="1m", grid={"day": "2026-11-30..2026-11-01"})


def test_a_backfill_and_a_schedule_firing_on_other_days_both_run_at_once(project, clock, schedulers):
    write_notebook(
        project / "daily.ipynb",
        'day = "2026-11-01"\noutputs = ["out/{day}.txt"]',
        "import time; time.sleep(2)",
        "open(outputs[0], 'w').write(day)",
    )
    add_schedule(project, "daily", every="1m", params={"day": "{date}"}, now=clock())
    scheduler = schedulers(clock)
    backfill = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project), "-g", "day", "2026-11-01..2026-11-04", "-j", "1"]
    )
    try:
        wait_until(lambda: any(r.state == "running" for r in runs(project)), timeout=60)
        clock.advance(minutes=1)
        [firing] = scheduler.tick()
        assert firing.outcome == "started"
        assert scheduler.wait_idle(timeout=120)
        assert backfill.poll() is None  # the firing ran and finished while the backfill still went on
        assert backfill.wait(timeout=120) == 0
    finally:
        backfill.kill()
    assert sorted(p.name for p in (project / "out").iterdir()) == [
        "2026-11-01.txt",
        "2026-11-02.txt",
        "2026-11-03.txt",
        "2026-11-04.txt",
        "2026-11-24.txt",
    ]
    assert {r.state for r in runs(project)} == {"succeeded"}


def test_a_firing_that_shares_a_task_with_a_run_from_elsewhere_waits_for_it_then_judges_it(project, clock, schedulers):
    stamp_notebook(project, "slow", sleep=4)
    add_schedule(project, "s", every="1m", targets=["slow"], now=clock())
    scheduler = schedulers(clock)
    elsewhere = subprocess.Popen([sys.executable, "-m", "nbflow", "run", str(project)])
    try:
        wait_until(lambda: any(r.state == "running" for r in runs(project)), timeout=60)
        clock.advance(minutes=1)
        [firing] = scheduler.tick()
        assert firing.outcome == "started"
        wait_until(lambda: _state_of(project, firing.run_id, "slow") == "waiting", timeout=60)
        assert elsewhere.wait(timeout=120) == 0
    finally:
        elsewhere.kill()
    assert scheduler.wait_idle(timeout=120)
    fired = next(r for r in runs(project) if r.id == firing.run_id)
    assert fired.state == "succeeded"
    # it judged the task once the other run had built it, with the same values: up to date
    assert _state_of(project, firing.run_id, "slow") == "skipped"


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _state_of(project, run_id, task):
    store = Store(project / ".nbflow")
    try:
        return next((t.state for t in store.task_runs(run_id) if t.name == task), None)
    finally:
        store.close()


def test_a_paused_schedule_does_not_fire_and_resuming_does_not_catch_up(project, clock, schedulers):
    stamp_notebook(project)
    add_schedule(project, "s", every="10s", now=clock())
    scheduler = schedulers(clock)
    pause_schedule(project, "s")
    clock.advance(minutes=5)
    assert scheduler.tick() == []
    resume_schedule(project, "s", now=clock())
    assert scheduler.tick() == []
    clock.advance(seconds=10)
    assert [f.slot for f in scheduler.tick()] == [clock()]


def test_the_loop_fires_on_time_and_wakes_for_a_schedule_added_in_process(project):
    stamp_notebook(project, "one")
    add_schedule(project, "hourly", every="1h", targets=["one"])
    # Nothing is due for an hour and the lease is renewed every 2 minutes: only the in-process notice of the added
    # schedule can wake the loop in time for the runs below.
    scheduler = Scheduler(project, workers=1, lease_seconds=600, renew_seconds=120).start()
    try:
        deadline = time.monotonic() + 100
        while not scheduler.holds_lease:
            assert time.monotonic() < deadline, "the scheduler never took the lease"
            time.sleep(0.1)
        add_schedule(project, "often", every="1s", targets=["one"])
        while len([r for r in runs(project, "schedule:often") if r.state in ("succeeded", "skipped")]) < 2:
            assert time.monotonic() < deadline, "the added schedule did not fire twice"
            time.sleep(0.2)
        assert scheduler.running
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert all(r.state != "running" for r in runs(project))
    assert runs(project, "schedule:hourly") == []
    assert Store(project / ".nbflow").db.execute("SELECT COUNT(*) FROM scheduler_lease").fetchone()[0] == 0


def test_a_schedule_whose_times_cannot_be_computed_is_left_out_and_the_others_fire(project, clock, schedulers, caplog):
    stamp_notebook(project)
    add_schedule(project, "good", every="1m", now=clock())
    add_schedule(project, "gone", every="1m", now=clock())
    store = Store(project / ".nbflow")
    with store.transaction() as db:  # e.g. a time zone this machine's tz database no longer has
        db.execute("UPDATE schedules SET tz = 'Nowhere/Gone' WHERE name = 'gone'")
    scheduler = schedulers(clock)
    caplog.set_level(logging.INFO, logger="nbflow.scheduler")
    clock.advance(minutes=1)
    assert [f.schedule for f in scheduler.tick()] == ["good"]
    assert any("gone: left out" in r.getMessage() for r in caplog.records)
    [gone, good] = list_schedules(project, now=clock())
    assert good["next_fire"] and gone["next_fire"] is None and gone["tz"] == "Nowhere/Gone"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_firings_leave_no_store_connections_behind(project, clock, schedulers):
    def open_store_files() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += "nbflow.db" in os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
        return count

    stamp_notebook(project)
    add_schedule(project, "s", every="1m", params={"when": "{datetime}"}, now=clock())
    scheduler = schedulers(clock)
    counts = []
    for _ in range(12):
        clock.advance(minutes=1)
        assert [f.outcome for f in scheduler.tick()] == ["started"]
        assert scheduler.wait_idle(timeout=120)
        counts.append(open_store_files())
    assert [r.state for r in runs(project)] == ["succeeded"] * 12
    assert max(counts[4:]) <= counts[3], counts  # flat after the first few firings (a few threads stay alive)
