"""`nbflow scheduler` as a process, in real time with second-level intervals: signals, two schedulers, a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook
from test_signals import alive

from nbflow.schedule import scheduler_status
from nbflow.store import Store


def start_scheduler(project: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nbflow", "scheduler", str(project)], stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


def runs(project: Path) -> list[dict]:
    store = Store(project / ".nbflow")
    rows = store.db.execute("SELECT id, trigger, state, params, pid, message FROM runs ORDER BY started_at").fetchall()
    store.close()
    return [
        {"id": r[0], "trigger": r[1], "state": r[2], "params": json.loads(r[3]), "pid": r[4], "message": r[5]}
        for r in rows
    ]


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def every_2s(project):
    write_notebook(
        project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w').write(when)"
    )
    assert (
        run_cli("schedule", "add", "quick", str(project), "--every", "2s", "-p", "when", "{datetime}").returncode == 0
    )
    return project


def test_sigterm_stops_the_scheduler_cleanly_and_runs_show_the_trigger(every_2s, processes, tmp_path):
    project = every_2s
    log = tmp_path / "scheduler.log"
    process = start_scheduler(project, log)
    processes.append(process)
    wait_for(lambda: len([r for r in runs(project) if r["state"] == "succeeded"]) >= 2, "two runs succeeded")
    assert scheduler_status(project)["pid"] == process.pid
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    output = log.read_text()
    assert "Traceback" not in output and "SIGTERM: stopping" in output and "scheduler stopped" in output
    assert scheduler_status(project) is None  # the lease was released

    listed = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert listed and {r["trigger"] for r in listed} == {"schedule:quick"}
    assert not any(r["state"] == "running" for r in listed)
    text = run_cli("runs", str(project)).stdout
    assert "schedule:quick" in text
    [entry] = json.loads(run_cli("schedule", "list", str(project), "--json").stdout)
    fired = [r["params"]["when"] for r in runs(project)]
    assert entry["last_fired"] == max(fired) and len(set(fired)) == len(fired)


def test_ctrl_c_cancels_the_run_in_flight_and_exits_130(project, processes, tmp_path):
    write_notebook(project / "slow.ipynb", 'outputs = ["slow.txt"]', "import time", "time.sleep(300)")
    assert run_cli("schedule", "add", "slow", str(project), "--every", "2s").returncode == 0
    process = start_scheduler(project, tmp_path / "scheduler.log")
    processes.append(process)

    def kernel_pid():
        store = Store(project / ".nbflow")
        row = store.db.execute("SELECT kernel_pid FROM task_runs WHERE kernel_pid IS NOT NULL").fetchone()
        store.close()
        return row and row[0]

    pid = wait_for(kernel_pid, "the scheduled run started its kernel")
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    assert not alive(pid)
    started = [r for r in runs(project) if r["state"] != "skipped"]
    assert [r["state"] for r in started] == ["cancelled"]
    assert "Traceback" not in (tmp_path / "scheduler.log").read_text()


def test_two_schedulers_on_one_project_never_both_fire(every_2s, processes, tmp_path):
    project = every_2s
    first = start_scheduler(project, tmp_path / "first.log")
    processes.append(first)
    wait_for(lambda: (scheduler_status(project) or {}).get("pid") == first.pid, "the first scheduler holds the lease")
    second = start_scheduler(project, tmp_path / "second.log")
    processes.append(second)
    wait_for(lambda: "standing by" in (tmp_path / "second.log").read_text(), "the second scheduler stands by")
    wait_for(lambda: len(runs(project)) >= 3, "three firings")
    assert {r["pid"] for r in runs(project)} == {first.pid}

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 0
    wait_for(lambda: any(r["pid"] == second.pid for r in runs(project)), "the second scheduler takes over")
    assert scheduler_status(project)["pid"] == second.pid
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=120) == 0
    fired = [r["params"]["when"] for r in runs(project)]
    assert len(set(fired)) == len(fired), "a slot was fired twice"


def test_a_scheduler_killed_and_restarted_never_fires_a_slot_twice(every_2s, processes, tmp_path):
    project = every_2s
    first = start_scheduler(project, tmp_path / "first.log")
    processes.append(first)
    wait_for(lambda: len(runs(project)) >= 2, "two firings")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    before = runs(project)

    again = start_scheduler(project, tmp_path / "again.log")  # takes the lease of the dead process at once
    processes.append(again)
    wait_for(lambda: len([r for r in runs(project) if r["pid"] == again.pid]) >= 2, "the restarted scheduler fires")
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=120) == 0
    after = runs(project)
    fired = [r["params"]["when"] for r in after]
    assert len(set(fired)) == len(fired), "a slot was fired twice"
    assert not any(r["state"] == "running" for r in after)
    # the run the kill left behind is marked interrupted, not left running
    killed = [r for r in after if r["id"] in {b["id"] for b in before if b["state"] == "running"}]
    assert all(r["state"] == "interrupted" for r in killed)
