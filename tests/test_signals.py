"""Ctrl-C, and a run whose process dies (runs side by side are in test_side_by_side.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli, write_notebook
from test_failures import processes_with, wait_for_none

import nbflow
from nbflow.processes import alive
from nbflow.store import Store


def start_sleeping_run(project: Path) -> tuple[subprocess.Popen, int]:
    """Start `nbflow run` on a notebook that sleeps; return the process and its kernel's pid once it runs."""
    write_notebook(project / "sleepy.ipynb", 'outputs = ["s.txt"]', "import time", "time.sleep(120)")
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (project / ".nbflow" / "nbflow.db").exists():
            row = (
                Store(project / ".nbflow")
                .db.execute("SELECT kernel_pid FROM task_runs WHERE kernel_pid IS NOT NULL")
                .fetchone()
            )
            if row:
                time.sleep(1)  # let the cell start
                return process, row[0]
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the run never started its kernel: " + process.stderr.read())


def test_ctrl_c_stops_kernels_marks_cancelled_and_exits_130(project):
    process, kernel_pid = start_sleeping_run(project)
    assert alive(kernel_pid)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert not alive(kernel_pid)
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert runs[0]["state"] == "cancelled" and runs[0]["counts"] == {"cancelled": 1}
    assert "Traceback" not in err


def test_ctrl_c_also_stops_the_kernels_started_ahead_and_their_server(project, marker):
    for name in "abc":  # kernels are started for these while sleepy runs
        write_notebook(project / f"{name}.ipynb", f'inputs = ["s.txt"]\noutputs = ["{name}.txt"]', "x = 1")
    process, _ = start_sleeping_run(project)
    deadline = time.monotonic() + 30
    while len(processes_with(marker)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(processes_with(marker)) >= 4  # nbflow, its fork server, sleepy's kernel, a kernel started ahead
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert wait_for_none(marker) == []


def test_a_killed_run_is_marked_interrupted_and_its_kernel_stopped(project):
    process, kernel_pid = start_sleeping_run(project)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    # The orphaned kernel exits by itself (it watches its parent) or is stopped by the next command.
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert runs[0]["state"] == "interrupted" and runs[0]["counts"] == {"cancelled": 1}
    deadline = time.monotonic() + 10
    while alive(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(kernel_pid)
    integrity = Store(project / ".nbflow").db.execute("PRAGMA integrity_check").fetchone()[0]
    assert integrity == "ok"


def test_the_python_api_returns_the_run(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]\nn = 1', "open(outputs[0], 'w').write(str(n))")
    pipe = nbflow.load(str(project))
    assert list(pipe.tasks) == ["a"] and pipe.graph.number_of_nodes() == 1
    run = pipe.run(params={"n": 3}, workers=1)
    assert isinstance(run, nbflow.Run) and run.state == "succeeded"
    assert run.tasks["a"].state == "succeeded" and run.tasks["a"].output_notebook.exists()
    assert (project / "a.txt").read_text() == "3"
    assert json.loads(run_cli("runs", str(project), "--json").stdout)[0]["trigger"] == "api"
