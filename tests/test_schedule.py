"""Schedules: intervals, cron in a time zone, slots and catch-up, fire-time parameters, the API and the CLI."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from conftest import run_cli, write_notebook

from nbflow.errors import UsageError
from nbflow.schedule import (
    Schedule,
    ScheduleNotFound,
    add_schedule,
    fill_value,
    format_every,
    get_schedule,
    list_schedules,
    local_zone_name,
    parse_every,
    pause_schedule,
    read_schedule,
    remove_schedule,
    resume_schedule,
    scheduler_status,
)
from nbflow.scheduler import Lease
from nbflow.store import Store
from nbflow.store.schedules import claim_slot

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
SHAPE = {"name", "cron", "every", "tz", "targets", "params", "paused", "next_fire", "last_fired"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def interval(seconds: float, created: str, **fields) -> Schedule:
    return Schedule(
        "s",
        None,
        seconds,
        fields.pop("tz", "UTC"),
        [],
        {},
        False,
        at(created),
        at(created),
        fields.pop("last_fired", None),
        **fields,
    )


def cron(expression: str, created: str, tz: str = "Europe/Paris", **fields) -> Schedule:
    return Schedule("s", expression, None, tz, [], {}, False, at(created), at(created), None, **fields)


@pytest.fixture
def pipeline(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]\nday = "x"', "open(outputs[0], 'w').write(day)")
    write_notebook(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]', "open(outputs[0], 'w')")
    return project


def test_intervals_read_and_write_as_users_give_them():
    assert [parse_every(t) for t in ("30s", "10m", "2h", "1d", "1h30m", "1.5h", "90 s")] == [
        30,
        600,
        7200,
        86400,
        5400,
        5400,
        90,
    ]
    assert [format_every(s) for s in (30, 600, 7200, 86400, 5400, 90, 1.5, 90061)] == [
        "30s",
        "10m",
        "2h",
        "1d",
        "1h30m",
        "1m30s",
        "1.5s",
        "1d1h1m1s",
    ]
    for bad in ("10", "10x", "", "m", "0s", "0.5s", "1h 30"):
        with pytest.raises(UsageError, match="^interval "):
            parse_every(bad)


def test_interval_slots_are_aligned_to_the_creation_time():
    s = interval(600, "2026-11-24T09:03:20+00:00")
    assert s.latest_slot(at("2026-11-24T09:10:00+00:00")) is None
    assert s.slot_after(at("2026-11-24T09:00:00+00:00")) == at("2026-11-24T09:13:20+00:00")
    assert s.slot_after(at("2026-11-24T09:13:20+00:00")) == at("2026-11-24T09:23:20+00:00")
    assert s.latest_slot(at("2026-11-24T09:23:20+00:00")) == at("2026-11-24T09:23:20+00:00")
    assert s.due_slot(at("2026-11-24T09:13:19+00:00")) is None
    assert s.due_slot(at("2026-11-24T09:13:20+00:00")) == at("2026-11-24T09:13:20+00:00")


def test_cron_slots_follow_the_schedules_time_zone_across_daylight_saving():
    s = cron("0 17 * * *", "2026-03-27T12:00:00+00:00")
    first = s.slot_after(at("2026-03-28T12:00:00+00:00"))
    assert first == at("2026-03-28T17:00:00+01:00") and first.utcoffset() == timedelta(hours=1)
    second = s.slot_after(first)
    assert second == at("2026-03-29T17:00:00+02:00") and second.astimezone(UTC).hour == 15
    assert s.latest_slot(at("2026-03-29T15:00:00+00:00")) == second  # a moment exactly on a slot is that slot
    assert s.latest_slot(at("2026-03-29T14:59:59+00:00")) == first


def test_after_downtime_the_due_slot_is_the_most_recent_one_only():
    s = cron("0 * * * *", "2026-11-24T08:30:00+00:00", tz="UTC")
    assert s.due_slot(at("2026-11-24T08:59:00+00:00")) is None
    assert s.due_slot(at("2026-11-24T13:42:00+00:00")) == at("2026-11-24T13:00:00+00:00")
    s.last_fired = at("2026-11-24T13:00:00+00:00")
    assert s.due_slot(at("2026-11-24T13:59:59+00:00")) is None
    assert s.next_fire(at("2026-11-24T13:42:00+00:00")) == at("2026-11-24T14:00:00+00:00")
    s.paused = True
    assert s.due_slot(at("2026-11-24T20:00:00+00:00")) is None and s.next_fire(at("2026-11-24T20:00:00+00:00")) is None


def test_fire_time_placeholders_are_iso_in_the_schedules_zone():
    slot = at("2026-11-24T16:00:00+00:00").astimezone(PARIS)
    assert fill_value("{date}", slot) == "2026-11-24"
    assert fill_value("{datetime}", slot) == "2026-11-24T17:00:00+01:00"
    assert fill_value("reports/{date:%Y%m%d}_{datetime:%H%M}.html", slot) == "reports/20261124_1700.html"
    assert fill_value("{date:%m}", slot) == "11"  # text, not a number
    s = cron("0 17 * * *", "2026-11-20T00:00:00+00:00")
    s.params = {"day": "{date}", "n": 3, "label": "plain"}
    assert s.params_for(at("2026-11-24T16:00:00+00:00")) == {"day": "2026-11-24", "n": 3, "label": "plain"}


def test_the_machines_zone_is_found_by_its_iana_name(pipeline):
    """A schedule added without --tz takes the machine's zone ($TZ first), by its IANA name."""
    for name, tz in (("east", "America/New_York"), ("colon", ":Asia/Tokyo"), ("bad", "No/Such_Zone")):
        added = run_cli("schedule", "add", name, str(pipeline), "--every", "1h", env={"TZ": tz})
        assert added.returncode == 0, added.stderr
    zones = {e["name"]: e["tz"] for e in list_schedules(pipeline)}
    assert zones["east"] == "America/New_York" and zones["colon"] == "Asia/Tokyo"
    ZoneInfo(zones["bad"])  # an unknown $TZ: the system's own zone, or UTC
    assert ZoneInfo(local_zone_name())


def test_add_list_pause_resume_remove(pipeline):
    created = at("2026-11-24T09:00:00+00:00")
    entry = add_schedule(
        pipeline,
        "daily",
        cron="0 17 * * *",
        tz="Europe/Paris",
        targets=["a"],
        params={"day": "{date}"},
        on_failure_webhook="http://127.0.0.1:9/hook",
        now=created,
    )
    assert SHAPE <= set(entry)
    assert entry == {
        **entry,
        "name": "daily",
        "cron": "0 17 * * *",
        "every": None,
        "tz": "Europe/Paris",
        "targets": ["a"],
        "params": {"day": "{date}"},
        "paused": False,
        "next_fire": "2026-11-24T17:00:00+01:00",
        "last_fired": None,
    }
    add_schedule(pipeline, "often", every="10m", tz="UTC", now=created)
    listed = list_schedules(pipeline, now=created)
    assert [e["name"] for e in listed] == ["daily", "often"]
    assert listed[1]["every"] == "10m" and listed[1]["next_fire"] == "2026-11-24T09:10:00+00:00"

    paused = pause_schedule(pipeline, "often", now=created)
    assert paused["paused"] is True and paused["next_fire"] is None
    resumed = resume_schedule(pipeline, "often", now=at("2026-11-24T10:05:00+00:00"))
    assert resumed["paused"] is False and resumed["next_fire"] == "2026-11-24T10:10:00+00:00"
    # the slots missed while paused are not caught up
    store = Store(pipeline / ".nbflow")
    assert read_schedule(store, "often").due_slot(at("2026-11-24T10:06:00+00:00")) is None

    remove_schedule(pipeline, "often")
    assert [e["name"] for e in list_schedules(pipeline)] == ["daily"]
    with pytest.raises(ScheduleNotFound, match="no schedule 'often'"):
        get_schedule(pipeline, "often")


def test_mistakes_are_refused_when_the_schedule_is_added(pipeline):
    cases = [
        (dict(name="x"), "either a cron expression or an interval"),
        (dict(name="x", cron="0 17 * * *", every="1m"), "either a cron expression or an interval"),
        (dict(name="x", cron="61 * * * *"), "cron expression '61 \\* \\* \\* \\*': not valid"),
        (dict(name="x", cron="0 25 * * *"), "out of range, in the hour field '25'"),
        (dict(name="x", cron="0 17 * * 8"), "in the day-of-week field '8'"),
        (dict(name="x", cron="0 17 * *"), r"not valid \(croniter: "),
        (dict(name="x", every="1m", tz="Mars/Olympus"), "time zone 'Mars/Olympus': unknown"),
        (dict(name="x y", every="1m"), "schedule name"),
        (dict(name="x", every="1m", targets=["nope"]), "names no task"),
        (dict(name="x", every="1m", params={"dya": "1"}), "did you mean 'day'"),
        (dict(name="x", every="1m", params={"day": "{when}"}), r"\{when\} is not known"),
        (dict(name="x", every="1m", on_failure_webhook="ftp://host"), "http:// or https://"),
    ]
    for arguments, message in cases:
        with pytest.raises(Exception, match=message):
            add_schedule(pipeline, **arguments)
    add_schedule(pipeline, "x", every="1m")
    with pytest.raises(UsageError, match="exists already"):
        add_schedule(pipeline, "x", every="2m")
    assert add_schedule(pipeline, "x", every="2m", replace=True)["every"] == "2m"
    # an input missing today may exist by the time the schedule fires
    write_notebook(pipeline / "c.ipynb", 'inputs = ["later.csv"]\noutputs = ["c.txt"]', "pass")
    add_schedule(pipeline, "later", every="1h", targets=["c"])


def test_a_slot_is_claimed_once_and_only_by_the_lease_holder(pipeline):
    add_schedule(pipeline, "s", every="10s", now=at("2026-11-24T09:00:00+00:00"))
    store = Store(pipeline / ".nbflow")
    schedule = read_schedule(store, "s")
    slot, now = at("2026-11-24T09:00:10+00:00"), at("2026-11-24T09:00:11+00:00").timestamp()

    def claim(owner):  # in a transaction of its own (the scheduler's is the one recording the slot's run)
        with store.transaction():
            return claim_slot(store, schedule, slot, owner, now)

    assert not claim("nobody")  # no lease: nothing fires
    first, second = Lease(store, "first", 30), Lease(store, "second", 30)
    assert first.acquire(now) and not second.acquire(now)
    assert not claim("second")
    assert claim("first")
    assert not claim("first")  # read before the claim: already fired
    with pytest.raises(RuntimeError, match="transaction"):
        claim_slot(store, schedule, slot, "first", now)
    assert read_schedule(store, "s").last_fired == slot
    assert second.acquire(now + 31)  # the first lease expired


def test_a_lease_is_held_while_its_process_lives_or_until_it_expires_on_another_host(pipeline):
    store = Store(pipeline / ".nbflow")
    now = datetime.now(UTC)
    assert Lease(store, "first", 30).acquire(now.timestamp())
    holder = scheduler_status(pipeline, now=now)
    assert holder["owner"] == "first" and holder["pid"] == os.getpid()
    assert not Lease(store, "second", 30).acquire(now.timestamp())
    # the pid is this process's, its start time another's: the process that took the lease is gone, its pid reused
    with store.transaction() as db:
        db.execute("UPDATE scheduler_lease SET pid_started = pid_started - 1000")
    assert scheduler_status(pipeline, now=now) is None
    assert Lease(store, "second", 30).acquire(now.timestamp())
    # a process on another host cannot be looked at: its lease holds until it expires
    with store.transaction() as db:
        db.execute("UPDATE scheduler_lease SET host = 'elsewhere', pid = 1, pid_started = 0")
    assert scheduler_status(pipeline, now=now)["host"] == "elsewhere"
    assert not Lease(store, "third", 30).acquire(now.timestamp())
    assert Lease(store, "third", 30).acquire(now.timestamp() + 31)


def test_the_schedule_commands(pipeline):
    added = run_cli(
        "schedule",
        "add",
        "daily",
        str(pipeline),
        "--cron",
        "0 17 * * *",
        "--tz",
        "Europe/Paris",
        "-t",
        "a",
        "-p",
        "day",
        "{date}",
        "--on-failure-command",
        "echo failed",
    )
    assert added.returncode == 0, added.stderr
    assert "schedule daily: cron 0 17 * * * (Europe/Paris), next fire" in added.stdout
    assert "scheduler: none running" in added.stdout
    assert run_cli("schedule", "add", "often", str(pipeline), "--every", "30s").returncode == 0

    listed = run_cli("schedule", "list", str(pipeline), "--json")
    entries = json.loads(listed.stdout)
    assert [e["name"] for e in entries] == ["daily", "often"] and all(SHAPE <= set(e) for e in entries)
    assert entries[0]["params"] == {"day": "{date}"} and entries[0]["targets"] == ["a"]
    assert datetime.fromisoformat(entries[0]["next_fire"]).utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    text = run_cli("schedule", "list", str(pipeline)).stdout
    assert "daily" in text and "every 30s" in text and "next fire" in text.lower()

    assert run_cli("schedule", "pause", "often", str(pipeline)).stdout.strip() == "schedule often: paused"
    assert json.loads(run_cli("schedule", "list", str(pipeline), "--json").stdout)[1]["paused"] is True
    assert "next fire" in run_cli("schedule", "resume", "often", str(pipeline)).stdout
    assert run_cli("schedule", "remove", "often", str(pipeline)).returncode == 0

    missing = run_cli("schedule", "remove", "often", str(pipeline))
    assert missing.returncode == 2 and "no schedule 'often'" in missing.stderr
    bad = run_cli("schedule", "add", "x", str(pipeline), "--every", "5 minutes")
    assert bad.returncode == 2 and "interval '5 minutes'" in bad.stderr and "Traceback" not in bad.stderr
    neither = run_cli("schedule", "add", "x", str(pipeline))
    assert neither.returncode == 2 and "--cron" in neither.stderr
    out_of_range = run_cli("schedule", "add", "x", str(pipeline), "--cron", "0 25 * * *")
    assert out_of_range.returncode == 2 and "out of range, in the hour field '25'" in out_of_range.stderr

    # values are read as `nbflow run -p` reads them
    assert run_cli("schedule", "add", "typed", str(pipeline), "--every", "1h", "-p", "a.day", "3").returncode == 0
    assert get_schedule(pipeline, "typed")["params"] == {"a.day": 3}
