"""Every slot a scheduler claims ends in a run row: the claim and the run row are one transaction, so a scheduler
that dies (kill -9) around its claim leaves either both or neither, and a restarted one marks the run of a dead
scheduler `interrupted` or fires the slot itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook
from test_scheduler_process import wait_for

import nbflow.scheduler as scheduler_module
from nbflow.schedule import add_schedule, read_schedule
from nbflow.scheduler import Scheduler
from nbflow.store import Store

T0 = datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc)

# A scheduler process that SIGKILLs itself at one point of a firing: `claim` right after the slot's claim is
# written (today inside the transaction that records the run), `recorded` once the run row is committed, before
# the run's first task starts.
KILLED_SCHEDULER = textwrap.dedent(
    """
    import os, signal, sys
    import nbflow.scheduler as scheduler
    import nbflow.run.loop as loop
    from nbflow.cli import main

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[1] == "claim":
        real_claim = scheduler.claim_slot
        def claim_slot(*args, **kwargs):
            claimed = real_claim(*args, **kwargs)
            if claimed:
                die()
            return claimed
        scheduler.claim_slot = claim_slot
    else:
        def execute(self):
            die()
        loop.Runner.execute = execute
    sys.exit(main(["scheduler", sys.argv[2]]))
    """
)


def store_state(project: Path) -> tuple[str | None, list[dict]]:
    """The schedule's last claimed slot, and the runs of its trigger (with the slot each was fired for)."""
    store = Store(project / ".nbflow")
    last = read_schedule(store, "quick").last_fired
    rows = store.db.execute(
        "SELECT id, state, params, message FROM runs WHERE trigger = 'schedule:quick' ORDER BY rowid"
    ).fetchall()
    store.close()
    return (
        last.isoformat(timespec="seconds") if last else None,
        [{"id": r[0], "state": r[1], "when": json.loads(r[2])["when"], "message": r[3]} for r in rows],
    )


def slot_text(when: str) -> str:
    return datetime.fromisoformat(when).astimezone(timezone.utc).isoformat(timespec="seconds")


@pytest.fixture
def every_1s(project):
    write_notebook(project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w')")
    added = run_cli(
        "schedule", "add", "quick", str(project), "--every", "1s", "--tz", "UTC", "-p", "when", "{datetime}"
    )
    assert added.returncode == 0, added.stderr
    return project


@pytest.mark.parametrize("moment", ["claim", "recorded"])
def test_a_scheduler_killed_at_its_claim_leaves_no_slot_without_a_run(every_1s, moment, tmp_path):
    project = every_1s
    log = open(tmp_path / "killed.log", "wb")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SCHEDULER, moment, str(project)],
        stdout=log,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    claimed, rows = store_state(project)
    # whatever the moment, a claimed slot has its run row: claim and row were committed together or not at all
    assert claimed is None or claimed in {slot_text(r["when"]) for r in rows}, (claimed, rows)

    again = subprocess.Popen([sys.executable, "-m", "nbflow", "scheduler", str(project)], stdout=log, stderr=log)
    try:
        wait_for(lambda: any(r["state"] == "succeeded" for r in store_state(project)[1]), "the restart fires")
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=120) == 0
    claimed, rows = store_state(project)
    fired = [slot_text(r["when"]) for r in rows]
    assert claimed in fired and len(set(fired)) == len(fired)
    assert not any(r["state"] == "running" for r in rows)
    if moment == "recorded":  # the dead scheduler's run, left running, was marked by the restart
        assert rows[0]["state"] == "interrupted" and rows[0]["message"] == "the nbflow process running it died"


def test_a_firing_that_dies_before_its_run_is_recorded_claims_nothing(project, monkeypatch):
    write_notebook(project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w')")
    add_schedule(project, "s", every="1m", params={"when": "{datetime}"}, now=T0)
    now = [T0 + timedelta(minutes=1)]
    scheduler = Scheduler(project, clock=lambda: now[0], workers=1)
    try:
        real_start_run = scheduler_module.start_run

        def crash(pipeline, **options):  # what a kill does between deciding to fire and the run row
            raise SystemExit("killed")

        monkeypatch.setattr("nbflow.scheduler.start_run", crash)
        with pytest.raises(SystemExit):
            scheduler.tick()
        store = Store(project / ".nbflow")
        assert read_schedule(store, "s").last_fired is None and store.runs() == []

        monkeypatch.setattr("nbflow.scheduler.start_run", real_start_run)
        [firing] = scheduler.tick()  # the slot was not lost: it fires now
        assert firing.slot == T0 + timedelta(minutes=1) and firing.outcome == "started"
        assert scheduler.wait_idle(timeout=120)
        assert read_schedule(store, "s").last_fired == firing.slot
        assert [(r.id, r.state) for r in store.runs()] == [(firing.run_id, "succeeded")]
        assert scheduler.tick() == []  # and never twice
        store.close()
    finally:
        scheduler.stop()


def test_a_claim_that_fails_leaves_no_run_behind(project):
    write_notebook(project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w')")
    add_schedule(project, "s", every="1m", params={"when": "{datetime}"}, now=T0)
    now = [T0 + timedelta(minutes=1)]
    scheduler = Scheduler(project, clock=lambda: now[0], workers=1)
    store = Store(project / ".nbflow")
    try:
        stale = read_schedule(store, "s")  # read before the slot fired
        [firing] = scheduler.tick()
        assert scheduler.wait_idle(timeout=120)
        # firing the same slot from the stale reading (as a second scheduler would) claims nothing, records nothing
        assert scheduler._fire(stale, firing.slot, now[0]) is None
        assert [r.id for r in store.runs()] == [firing.run_id]
    finally:
        store.close()
        scheduler.stop()
