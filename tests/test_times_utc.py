"""Times are stored in UTC and shown in the reader's zone: runs started under different `TZ` values keep their order,
stores written with local offsets are converted, and a clock that jumped ahead does not stop a schedule."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from conftest import run_cli, write_notebook

from nbflow.schedule import add_schedule, read_schedule
from nbflow.scheduler import Scheduler
from nbflow.store import Store

AUCKLAND = {"TZ": "Pacific/Auckland"}  # UTC+13 in December: its local times sort after Los Angeles' as text
LOS_ANGELES = {"TZ": "America/Los_Angeles"}


def run_ids(project) -> list[str]:
    store = Store(project / ".nbflow")
    ids = [row[0] for row in store.db.execute("SELECT id FROM runs ORDER BY rowid")]
    store.close()
    return ids


def test_runs_started_under_different_zones_keep_their_order_and_show_local_times(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w').write('a')")
    assert run_cli("run", str(project), env=AUCKLAND).returncode == 0
    assert run_cli("run", str(project), env=LOS_ANGELES).returncode == 0
    first, second = run_ids(project)

    shown = run_cli("show", "latest", str(project), "--json", env=AUCKLAND)
    assert json.loads(shown.stdout)["id"] == second
    assert json.loads(run_cli("show", "previous", str(project), "--json").stdout)["id"] == first
    assert [r["id"] for r in json.loads(run_cli("runs", str(project), "--json").stdout)] == [second, first]
    [status] = json.loads(run_cli("status", str(project), "--json").stdout)["tasks"]
    assert status["last_run"] == second  # the second run judged `a` up to date, and is its latest

    # stored in UTC; shown in the reader's zone (the JSON keeps its offset, the table its wall-clock time)
    store = Store(project / ".nbflow")
    stored = [row[0] for row in store.db.execute("SELECT started_at FROM runs ORDER BY rowid")]
    store.close()
    assert all(text.endswith("+00:00") for text in stored)
    assert json.loads(shown.stdout)["started_at"].endswith(("+12:00", "+13:00"))
    in_la = json.loads(run_cli("show", "latest", str(project), "--json", env=LOS_ANGELES).stdout)["started_at"]
    assert in_la.endswith(("-07:00", "-08:00"))
    assert datetime.fromisoformat(in_la) == datetime.fromisoformat(json.loads(shown.stdout)["started_at"])
    local = datetime.fromisoformat(stored[1]).astimezone(timezone(timedelta(hours=5, minutes=30)))
    table = run_cli("runs", str(project), env={"TZ": "Asia/Kolkata"}).stdout
    assert local.strftime("%Y-%m-%d %H:%M:%S") in table


def test_a_store_written_with_local_offsets_is_converted_to_utc_in_order(tmp_path):
    store = Store(tmp_path / ".nbflow")
    # two runs a minute apart, written by processes in two zones, as nbflow wrote them before schema 10
    rows = [
        ("r-auckland", "2026-12-02T17:40:35.099+13:00", "2026-12-02T17:40:36.500+13:00"),
        ("r-la", "2026-12-01T20:41:35.099-08:00", None),
    ]
    with store.transaction() as db:
        for run_id, started, finished in rows:
            db.execute(
                "INSERT INTO runs (id, trigger, state, started_at, finished_at) VALUES (?, 'cli', 'succeeded', ?, ?)",
                (run_id, started, finished),
            )
        db.execute(
            "INSERT INTO task_successes VALUES ('a', '{}', 'r-la', '2026-12-01T20:41:40.000-08:00', '{}')",
        )
        db.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")  # before times in UTC (10)
        db.execute("ALTER TABLE task_runs DROP COLUMN progress")  # as a store of schema 9 is: added by 12
    store.close()

    store = Store(tmp_path / ".nbflow")  # migrated on opening
    assert [r.id for r in store.runs()] == ["r-la", "r-auckland"]
    la, auckland = store.runs()
    assert auckland.started_at == "2026-12-02T04:40:35.099+00:00"
    assert auckland.finished_at == "2026-12-02T04:40:36.500+00:00" and auckland.duration_s == 1.401
    assert la.started_at == "2026-12-02T04:41:35.099+00:00" and la.finished_at is None
    assert store.db.execute("SELECT finished_at FROM task_successes").fetchone()[0] == "2026-12-02T04:41:40.000+00:00"
    store.close()


def test_a_clock_that_jumps_a_year_ahead_for_one_tick_does_not_stop_an_hourly_schedule(project, caplog):
    write_notebook(project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w')")
    t0 = datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc)
    now = [t0]
    add_schedule(project, "hourly", cron="0 * * * *", tz="UTC", params={"when": "{datetime}"}, now=t0)
    scheduler = Scheduler(project, clock=lambda: now[0], workers=1, notify_delays=(0.01,))
    caplog.set_level(logging.INFO, logger="nbflow.scheduler")
    try:
        now[0] = datetime(2026, 11, 24, 16, 0, 5, tzinfo=timezone.utc)
        assert [f.outcome for f in scheduler.tick()] == ["started"]
        assert scheduler.wait_idle(timeout=120)

        now[0] = datetime(2027, 11, 24, 16, 10, tzinfo=timezone.utc)  # the clock jumps a year ahead, one tick
        [ahead] = scheduler.tick()
        assert scheduler.wait_idle(timeout=120)

        now[0] = datetime(2026, 11, 24, 16, 10, 5, tzinfo=timezone.utc)  # and back
        assert scheduler.tick() == []
        store = Store(project / ".nbflow")
        assert read_schedule(store, "hourly").last_fired == now[0]  # the future slot was reset to now
        store.close()
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("hourly" in m and "2027-11-24T16:00:00+00:00" in m and "future" in m for m in warned), warned

        now[0] = datetime(2026, 11, 24, 17, 0, 1, tzinfo=timezone.utc)
        [again] = scheduler.tick()
        assert again.slot == datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc) and again.outcome == "started"
        assert scheduler.wait_idle(timeout=120)
        assert ahead.slot == datetime(2027, 11, 24, 16, 0, tzinfo=timezone.utc)
    finally:
        scheduler.stop()
