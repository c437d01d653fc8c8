"""Runs side by side: disjoint instances at once, a shared one waits, `--no-wait` exits 3, and a run killed with
kill -9 while holding instances does not block the next. Real `nbflow run` processes and kernels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli, write_notebook

from nbflow.store import Store


def slow_grid(project: Path, sleep: float) -> None:
    write_notebook(
        project / "report.ipynb",
        'region = "north"\ngrid = {"region": ["north", "south"]}\nstamp = "a"\noutputs = ["out/{region}.txt"]',
        f"import time; time.sleep({sleep})",
        "open(outputs[0], 'w').write(stamp)",
    )


def start(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def task_states(project: Path) -> dict[str, dict[str, str]]:
    """run id -> {instance: state}, from the store."""
    store = Store(project / ".nbflow")
    try:
        return {run.id: {t.name: str(t.state) for t in store.task_runs(run.id)} for run in store.runs()}
    finally:
        store.close()


def wait_for(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def running_instance(project: Path, name: str) -> str | None:
    """The id of a run in which instance `name` is running."""
    if not (project / ".nbflow" / "nbflow.db").exists():
        return None
    return next((run for run, tasks in task_states(project).items() if tasks.get(name) == "running"), None)


def test_runs_on_disjoint_instances_go_at_once(project):
    slow_grid(project, sleep=3)
    north = start(project, "-t", "report[region=north]")
    wait_for(lambda: running_instance(project, "report[region=north]"))
    south = start(project, "-t", "report[region=south]")
    assert south.wait(timeout=120) == 0, south.stderr.read()
    assert north.poll() is None  # the second run finished while the first still ran: they went side by side
    assert north.wait(timeout=120) == 0
    assert sorted(p.name for p in (project / "out").iterdir()) == ["north.txt", "south.txt"]


def test_a_shared_instance_waits_for_the_other_run_then_is_judged(project):
    slow_grid(project, sleep=4)
    first = start(project, "-t", "report[region=north]")
    first_id = wait_for(lambda: running_instance(project, "report[region=north]"))
    second = start(project)  # both instances: north is the first run's, south is free
    second_id = wait_for(
        lambda: next((r for r, t in task_states(project).items() if t.get("report[region=north]") == "waiting"), None)
    )
    assert task_states(project)[second_id]["report[region=south]"] in ("running", "succeeded")
    shown = json.loads(run_cli("show", second_id, str(project), "--json").stdout)
    assert first.wait(timeout=120) == 0
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert task_states(project)[second_id] == {"report[region=north]": "skipped", "report[region=south]": "succeeded"}
    waiting = next(t for t in shown["tasks"] if t["name"] == "report[region=north]")
    assert waiting["state"] == "waiting"
    assert "report[region=north]  waiting" in out  # the progress lines say so too
    store = Store(project / ".nbflow")
    try:
        reasons = next(t.reasons for t in store.task_runs(second_id) if t.name == "report[region=north]")
        assert reasons == []  # judged afresh once free: up to date, so no reason to run
    finally:
        store.close()
    assert first_id != second_id


def test_no_wait_exits_3_naming_the_run_and_instance_and_records_nothing(project):
    slow_grid(project, sleep=4)
    first = start(project, "-t", "report[region=north]")
    first_id = wait_for(lambda: running_instance(project, "report[region=north]"))
    result = run_cli("run", str(project), "--no-wait")
    assert result.returncode == 3
    assert f"report[region=north] (run {first_id} has report[region=north])" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(task_states(project)) == [first_id]  # the refused run left no trace
    # a run that needs only what is free goes at once, even told not to wait
    assert run_cli("run", str(project), "-t", "report[region=south]", "--no-wait").returncode == 0
    assert first.wait(timeout=120) == 0


def test_a_run_killed_while_holding_instances_does_not_block_the_next(project):
    slow_grid(project, sleep=60)
    doomed = start(project, "-t", "report[region=north]")
    doomed_id = wait_for(lambda: running_instance(project, "report[region=north]"))
    waiter = start(project, "-t", "report[region=north]", "-p", "stamp", "b")
    wait_for(lambda: any(t.get("report[region=north]") == "waiting" for t in task_states(project).values()))
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=30)
    # the waiting run finds the holder dead, marks it interrupted, and goes on
    out, err = waiter.communicate(timeout=180)
    assert waiter.returncode == 0, err
    assert (project / "out" / "north.txt").read_text() == "b"
    time.sleep(2)
    assert (project / "out" / "north.txt").read_text() == "b"  # the dead run's kernel was stopped, not left to write
    runs = {r["id"]: r for r in json.loads(run_cli("runs", str(project), "--json").stdout)}
    assert runs[doomed_id]["state"] == "interrupted"
    # and a new run started after the kill is not blocked either
    assert run_cli("run", str(project), "--no-wait", "-p", "stamp", "c").returncode == 0
