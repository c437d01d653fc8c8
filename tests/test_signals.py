"""Ctrl-C, and a run whose process dies (runs side by side are in test_side_by_side.py)."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook
from jupyter_core.utils import run_sync
from test_failures import processes_with, wait_for_none

import nbflow
from nbflow.processes import alive
from nbflow.run.background import start_run
from nbflow.run.forks import ForkServer
from nbflow.run.jobs import Job
from nbflow.run.kernels import shutdown_kernel, start_listening_kernel
from nbflow.run.provisioner import ForkedProcess
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


# -- signals that find the kernel already gone ------------------------------------------------------------------


def gone_or_raised(records) -> list[str]:
    """What a user would see in a server's log of a kernel already gone: tracebacks, or the error named."""
    return [
        r.getMessage()
        for r in records
        if r.exc_info or "ProcessLookupError" in r.getMessage() or "No such process" in r.getMessage()
    ]


def test_cancelling_as_the_kernel_exits_by_itself_logs_nothing_and_ends_cancelled(project, caplog):
    """The panel's Cancel (BackgroundRun.cancel) just as the task's kernel exits on its own: the kernel is gone by
    the time it is killed, interrupted and shut down; that is no error."""
    write_notebook(
        project / "quits.ipynb",
        'outputs = ["q.txt"]',
        "import os, time",
        "while not os.path.exists('go'):\n    time.sleep(0.01)\nos._exit(0)",
    )
    caplog.set_level(logging.INFO)
    handle = start_run(nbflow.load(project), trigger="api")
    deadline = time.monotonic() + 60
    while (progress := handle.run.tasks["quits"].progress) is None or progress.cell < 3:
        assert time.monotonic() < deadline, "the waiting cell never started"
        time.sleep(0.02)
    (project / "go").write_text("")
    handle.cancel()
    run = handle.wait(60)
    assert run is not None and run.state == "cancelled"
    assert run.tasks["quits"].state == "cancelled"
    assert json.loads(run_cli("runs", str(project), "--json").stdout)[0]["state"] == "cancelled"
    assert gone_or_raised(caplog.records) == []


@pytest.fixture
def exited_kernel(tmp_path):
    """A kernel forked by a real fork server that has exited (and been reaped) before anyone signals it."""
    notebook = write_notebook(tmp_path / "k.ipynb", None, "x = 1")
    job = Job("k", str(notebook), str(tmp_path / "runs" / "k.ipynb"), str(tmp_path), "python3", {})
    server = ForkServer()
    km = start_listening_kernel(job, server)
    try:
        pid = km.provisioner.pid
        assert isinstance(km.provisioner.process, ForkedProcess) and alive(pid)
        os.killpg(pid, signal.SIGKILL)  # as it would exit by itself
        deadline = time.monotonic() + 10
        while alive(pid) or os.path.exists(f"/proc/{pid}"):
            assert time.monotonic() < deadline, "the kernel did not go"
            time.sleep(0.02)
        yield km
    finally:
        shutdown_kernel(km)
        server.close()


def test_signalling_a_kernel_that_has_exited_is_done_not_an_error(exited_kernel, caplog):
    caplog.set_level(logging.DEBUG)
    provisioner = exited_kernel.provisioner
    run_sync(provisioner.send_signal)(signal.SIGINT)
    run_sync(provisioner.terminate)()
    run_sync(provisioner.kill)()
    run_sync(exited_kernel.interrupt_kernel)()  # what jupyter_client does before shutting a kernel down
    run_sync(exited_kernel.shutdown_kernel)(now=True)
    assert gone_or_raised(caplog.records) == []


def test_a_kernel_that_exits_between_the_check_and_the_signal_is_done(exited_kernel, monkeypatch, caplog):
    """ForkedProcess looks before it signals; the kernel may exit in between: the signal then finds no process."""
    process = exited_kernel.provisioner.process
    monkeypatch.setattr(ForkedProcess, "_running", lambda self: True)  # still there when looked at
    caplog.set_level(logging.DEBUG)
    process.send_signal(signal.SIGINT)
    process.kill()
    run_sync(exited_kernel.provisioner.kill)()
    assert process.returncode == 0  # known gone from now on
    assert gone_or_raised(caplog.records) == []


def test_a_signal_we_may_not_send_is_a_permission_error(exited_kernel, monkeypatch):
    """A real error stays one: a process not ours to signal raises PermissionError (not a ValueError, not
    silence), from the process and from the provisioner's kill and terminate."""
    provisioner = exited_kernel.provisioner
    monkeypatch.setattr(ForkedProcess, "_running", lambda self: True)

    def refused(*args):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "killpg", refused)
    monkeypatch.setattr(os, "kill", refused)
    with pytest.raises(PermissionError):
        provisioner.process.send_signal(signal.SIGINT)
    with pytest.raises(PermissionError):
        run_sync(provisioner.kill)()
    with pytest.raises(PermissionError):
        run_sync(provisioner.terminate)()
