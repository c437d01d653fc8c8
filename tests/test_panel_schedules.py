"""The panel's Schedules tab, driven through its widgets in-process, on a real store, with a
real scheduler firing real runs."""

from __future__ import annotations

import html

import pytest
from conftest import write_notebook
from test_panel import wait_for

from nbflow.schedule import add_schedule, get_schedule, list_schedules, local_zone_name, scheduler_status
from nbflow.scheduler import Scheduler
from nbflow.widgets import views
from nbflow.widgets.panel import Panel


@pytest.fixture
def pipeline(project):
    write_notebook(
        project / "fetch.ipynb",
        'outputs = ["raw.txt"]\nday = "2026-01-01"\nregion = "all"',
        "open('raw.txt', 'w').write(f'{day} {region}')",
    )
    write_notebook(
        project / "report.ipynb",
        'inputs = ["raw.txt"]\noutputs = ["report.txt"]',
        "open('report.txt', 'w').write(open('raw.txt').read().upper())",
    )
    return project


def fill(tab, name, when, kind="cron", tz=None, targets=(), params=""):
    tab.name.value, tab.kind.value, tab.when.value = name, kind, when
    if tz is not None:
        tab.tz.value = tz
    tab.targets.value, tab.params.value = tuple(targets), params


def test_add_pause_resume_and_remove_a_schedule_from_the_panel(pipeline):
    panel = Panel(pipeline, follow=False)
    tab = panel.schedules
    try:
        assert panel.tabs.get_title(4) == "Schedules" and panel.tabs.children[4] is tab
        assert list(tab.targets.options) == ["fetch", "report"]
        assert tab.tz.value == local_zone_name()
        assert "No scheduler is running" in tab.status.value and f"nbflow scheduler {pipeline}" in tab.status.value
        assert "No schedules yet" in tab.table.value and tab.pause_button.disabled and tab.remove_button.disabled

        fill(
            tab,
            "nightly",
            "30 17 * * 1-5",
            tz="Europe/Paris",
            targets=["report"],
            params="# the fire day\nday={date}\nregion = north\n\n",
        )
        tab.add_button.click()
        assert "nightly added" in tab.note.value, tab.note.value
        [entry] = list_schedules(pipeline)
        assert (
            entry["name"],
            entry["cron"],
            entry["every"],
            entry["tz"],
            entry["targets"],
            entry["params"],
            entry["paused"],
        ) == ("nightly", "30 17 * * 1-5", None, "Europe/Paris", ["report"], {"day": "{date}", "region": "north"}, False)
        assert entry["next_fire"] is not None
        assert "nightly" in tab.table.value and views.local_time(entry["next_fire"]) in tab.table.value
        assert "cron 30 17 * * 1-5 (Europe/Paris)" in tab.table.value and "never" in tab.table.value
        assert tab.chosen.value == "nightly" and tab.pause_button.description == "Pause"

        fill(tab, "often", "10m", kind="every")
        tab.add_button.click()
        assert [e["name"] for e in list_schedules(pipeline)] == ["nightly", "often"]
        often = get_schedule(pipeline, "often")
        assert (often["every"], often["targets"], often["params"]) == ("10m", [], {})
        assert "every 10m" in tab.table.value and "all tasks" in tab.table.value
        assert views.local_time(often["next_fire"]) in tab.table.value and tab.chosen.value == "often"

        tab.chosen.value = "nightly"
        tab.pause_button.click()
        assert get_schedule(pipeline, "nightly")["paused"] is True
        assert get_schedule(pipeline, "nightly")["next_fire"] is None
        assert "nightly paused" in tab.note.value and "paused" in tab.table.value
        assert tab.pause_button.description == "Resume"
        tab.pause_button.click()
        assert get_schedule(pipeline, "nightly")["paused"] is False and tab.pause_button.description == "Pause"
        assert "nightly resumed" in tab.note.value

        tab.remove_button.click()
        assert [e["name"] for e in list_schedules(pipeline)] == ["often"]
        assert "nightly removed" in tab.note.value and "nightly" not in tab.table.value
        assert list(tab.chosen.options) == ["often"]
        tab.remove_button.click()
        assert list_schedules(pipeline) == [] and "No schedules yet" in tab.table.value
        assert tab.remove_button.disabled
    finally:
        panel.close()


@pytest.mark.parametrize(
    "form, says",
    [
        (dict(name="bad", when="61 * * * *"), "cron expression '61 * * * *': not valid"),
        (dict(name="bad", when="0 17 * *"), "cron expression '0 17 * *': not valid"),
        (dict(name="bad", when="", kind="every"), "give the interval"),
        (dict(name="bad", when="ten minutes", kind="every"), "give a number and a unit"),
        (dict(name="bad", when="0 17 * * *", tz="Mars/Olympus"), "time zone 'Mars/Olympus': unknown"),
        (dict(name="bad", when="0 17 * * *", params="nosuch=1"), "nosuch"),
        (dict(name="bad", when="0 17 * * *", params="region north"), "is not NAME=VALUE"),
        (dict(name="bad", when="0 17 * * *", params="day={tomorrow}"), "{tomorrow}"),
        (dict(name="bad name!", when="0 17 * * *"), "schedule name"),
        (dict(name="", when="0 17 * * *"), "schedule name"),
    ],
)
def test_a_mistake_in_the_form_is_shown_in_the_panel_and_nothing_is_added(pipeline, form, says):
    panel = Panel(pipeline, follow=False)
    try:
        fill(panel.schedules, **form)
        panel.schedules.add_button.click()  # raises nothing
        note = html.unescape(panel.schedules.note.value)
        assert "was not added" in note and says in note, note
        assert "#b91c1c" in note  # shown as an error
        assert list_schedules(pipeline) == []
    finally:
        panel.close()


def test_a_name_taken_needs_replace(pipeline):
    add_schedule(pipeline, "daily", cron="0 6 * * *")
    panel = Panel(pipeline, follow=False)
    tab = panel.schedules
    try:
        assert "daily" in tab.table.value
        fill(tab, "daily", "2h", kind="every")
        tab.add_button.click()
        assert "exists already" in tab.note.value and get_schedule(pipeline, "daily")["cron"] == "0 6 * * *"
        tab.replace.value = True
        tab.add_button.click()
        assert get_schedule(pipeline, "daily")["every"] == "2h" and "every 2h" in tab.table.value
    finally:
        panel.close()


def test_a_store_that_cannot_be_read_is_said_in_the_tab(pipeline):
    import sqlite3

    panel = Panel(pipeline, follow=False)
    try:
        db = sqlite3.connect(pipeline / ".nbflow" / "nbflow.db")
        db.execute("DROP TABLE schedules")
        db.commit()
        db.close()
        panel.refresh()  # raises nothing
        assert "could not read the schedules" in panel.schedules.status.value
        fill(panel.schedules, "nightly", "0 17 * * *")
        panel.schedules.add_button.click()
        assert "was not added" in panel.schedules.note.value and "schedules" in panel.schedules.note.value
    finally:
        panel.close()


def test_the_panel_follows_schedules_changed_elsewhere_and_a_scheduler_firing_them(pipeline):
    panel = Panel(pipeline, poll_interval=0.2)
    tab = panel.schedules
    scheduler = None
    try:
        assert "No scheduler is running" in tab.status.value
        add_schedule(pipeline, "elsewhere", cron="0 3 * * *", targets=["fetch"])  # not through the panel
        wait_for(lambda: "elsewhere" in tab.table.value, what="the schedule added elsewhere")
        assert list(tab.chosen.options) == ["elsewhere"]

        scheduler = Scheduler(pipeline, workers=1).start()
        wait_for(lambda: "A scheduler is running" in tab.status.value, what="the scheduler to show")
        assert scheduler_status(pipeline) is not None
        add_schedule(pipeline, "quick", every="2s", targets=["fetch"], params={"day": "{date}"})
        # The firing is a run with trigger schedule:quick in the panel's history, and its last fired time shows.
        wait_for(
            lambda: any("schedule:quick" in label for label, _ in panel.history.options),
            timeout=240,
            what="the scheduled run in the history",
        )
        wait_for(lambda: get_schedule(pipeline, "quick")["last_fired"] is not None, timeout=60)
        fired = get_schedule(pipeline, "quick")["last_fired"]
        wait_for(
            lambda: views.local_time(get_schedule(pipeline, "quick")["last_fired"]) in tab.table.value,
            what="the last fired time in the table",
        )
        assert fired is not None
        tab.chosen.value = "quick"
        tab.pause_button.click()
        assert get_schedule(pipeline, "quick")["paused"]
    finally:
        if scheduler is not None:
            scheduler.stop()
        try:
            wait_for(
                lambda: "No scheduler is running" in tab.status.value, timeout=60, what="the stopped scheduler to show"
            )
        finally:
            panel.close()
    assert not panel._thread.is_alive()


def test_the_embedded_panel_holds_the_schedules(pipeline, tmp_path):
    from ipywidgets.embed import embed_minimal_html

    add_schedule(pipeline, "weekly-digest", cron="0 8 * * 1", tz="UTC")
    panel = Panel(pipeline, follow=False)
    try:
        page = tmp_path / "panel.html"
        embed_minimal_html(page, views=[panel], title="nbflow")
        text = page.read_text()
        assert "weekly-digest" in text and "Schedules" in text
        assert views.local_time(get_schedule(pipeline, "weekly-digest")["next_fire"]) in text
    finally:
        panel.close()
