"""Stopping runs whatever their process does: `nbflow run` started with SIGINT ignored (a script's `&` job) still
takes Ctrl-C, SIGTERM cancels it the same way, a cancel escalates to SIGTERM and SIGKILL for a process that ignores
both, and what a notebook started does not outlive a run killed with -9. Real processes throughout."""

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

from nbflow.models import RunState, TaskRun
from nbflow.processes import alive
from nbflow.store import Store, open_store

pytestmark = pytest.mark.timeout(240)


def wait_until(condition, timeout: float = 60, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_run(project: Path, **popen) -> subprocess.Popen:
    write_notebook(project / "sleepy.ipynb", 'outputs = ["s.txt"]', "import time", "time.sleep(120)")
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    wait_until(
        lambda: (
            (project / ".nbflow" / "nbflow.db").exists()
            and Store(project / ".nbflow").db.execute("SELECT 1 FROM task_runs WHERE kernel_pid IS NOT NULL").fetchone()
        ),
        what="the kernel to start",
    )
    time.sleep(1)
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_even_when_inherited_ignored_and_sigterm_cancel_the_run(project, signum):
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731  (as `cmd &` in a script)
    process = start_run(project, preexec_fn=ignore_sigint)
    process.send_signal(signum)
    process.wait(timeout=60)
    assert process.returncode == 130, process.stderr.read()
    [run] = json.loads(run_cli("runs", "--json", cwd=project).stdout)
    assert run["state"] == "cancelled" and run["counts"] == {"cancelled": 1}


def test_what_a_notebook_started_is_stopped_by_the_next_run_after_a_kill_9(project):
    write_notebook(
        project / "spawner.ipynb",
        'outputs = ["s.txt"]',
        "import subprocess, time\nchild = subprocess.Popen(['sleep', '300'])",
        "open('child.pid', 'w').write(str(child.pid))",
        "time.sleep(120)",
    )
    write_notebook(project / "other.ipynb", 'outputs = ["o.txt"]', "open('o.txt', 'w').write('o')")
    process = subprocess.Popen([sys.executable, "-m", "nbflow", "run", "-t", "spawner", str(project)])
    wait_until(lambda: (project / "child.pid").exists(), what="the notebook's child")
    child = int((project / "child.pid").read_text())
    process.kill()
    process.wait(timeout=30)
    kernel = Store(project / ".nbflow").db.execute("SELECT kernel_pid FROM task_runs").fetchone()[0]
    wait_until(lambda: not alive(kernel), what="the kernel to see its parent gone")  # it watches its parent
    assert alive(child)  # what it started is still there
    assert run_cli("status", cwd=project).returncode == 0 and alive(child)  # a read command kills nothing
    result = run_cli("run", "-t", "other", cwd=project)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: not alive(child), timeout=10, what="the orphaned child to be stopped")


def test_a_cancel_escalates_to_sigterm_then_sigkill_and_stops_the_kernels(project):
    from nbflow.run.cancel import cancel_process_run

    stubborn = subprocess.Popen(  # a run's process that ignores SIGINT and SIGTERM
        [
            sys.executable,
            "-c",
            "import signal, time\nfor s in (2, 15): signal.signal(s, signal.SIG_IGN)\ntime.sleep(300)",
        ]
    )
    kernel = subprocess.Popen(  # a kernel of it (named like one), leading its own process group
        [sys.executable, "-c", "import time; time.sleep(300)", "ipykernel_launcher"], start_new_session=True
    )
    time.sleep(0.5)
    store = Store(project / ".nbflow")
    store.create_run("r1", "cli", {}, [], [TaskRun("t", task="t")])
    store.db.execute("UPDATE runs SET pid = ?, pid_started = NULL WHERE id = 'r1'", (stubborn.pid,))
    store.update_task("r1", "t", state="running", kernel_pid=kernel.pid)
    store.db.commit()
    try:
        cancel_process_run(project / ".nbflow", "r1", stubborn.pid, None, grace=0.5)
        stubborn.wait(timeout=30)
        assert stubborn.returncode == -signal.SIGKILL
        wait_until(lambda: kernel.poll() is not None, timeout=30, what="the kernel to be stopped")
        fresh = open_store(project / ".nbflow")
        assert fresh.run("r1").state is RunState.INTERRUPTED
        fresh.close()
    finally:
        for p in (stubborn, kernel):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
