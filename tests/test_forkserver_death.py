"""The kernel fork server killed (kill -9) while a run goes: the run goes on, and nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import run_cli, write_notebook
from test_failures import wait_for_none

from nbflow.run import forks
from nbflow.run.forks import ForkServer, ForkServerDied


def sleepers(project: Path, count: int, seconds: float) -> None:
    for i in range(count):
        write_notebook(
            project / f"n{i}.ipynb",
            f'outputs = ["o{i}.txt"]',
            "import os, time",
            f"open('pid{i}', 'w').write(str(os.getpid())); time.sleep({seconds})",
            "open(outputs[0], 'w').write('done')",
        )


def fork_servers(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children() if "nbflow.run.forkserver" in " ".join(c.cmdline())]


def start_run(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_files(*paths: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not all(p.exists() and p.read_text() for p in paths):
        assert time.monotonic() < deadline, f"never written: {paths}"
        time.sleep(0.05)


def test_a_killed_fork_server_is_replaced_and_no_task_fails(project, marker):
    """Two tasks run, two kernels wait for the next two: the server dies under all of them. Before, the four
    failed ("the kernel died", "Kernel died before replying to kernel_info")."""
    sleepers(project, 6, 2)
    process = start_run(project, "-j", "2")
    wait_for_files(project / "pid0", project / "pid1")
    (first,) = fork_servers(process.pid)
    first.kill()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert runs[0]["state"] == "succeeded" and runs[0]["counts"] == {"succeeded": 6}
    assert all((project / f"o{i}.txt").read_text() == "done" for i in range(6))
    assert wait_for_none(marker) == []


def test_kernels_of_a_dead_fork_server_still_stop_with_the_run(project, marker):
    """A kernel no longer watches its server but the nbflow process: killed, it takes them all with it."""
    sleepers(project, 2, 120)
    process = start_run(project, "-j", "2")
    wait_for_files(project / "pid0", project / "pid1")
    (server,) = fork_servers(process.pid)
    server.kill()
    time.sleep(1.5)  # ipykernel's own parent poll, had it been left on, would have stopped the kernels by now
    kernels = [int((project / f"pid{i}").read_text()) for i in range(2)]
    assert all(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in kernels)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert wait_for_none(marker) == []


def test_a_kernel_dying_with_its_fork_server_is_told_so(project, marker):
    """Both killed at once (as the out-of-memory killer may): the message blames the server, not the notebook."""
    sleepers(project, 1, 120)
    process = start_run(project)
    wait_for_files(project / "pid0")
    (server,) = fork_servers(process.pid)
    server.kill()
    os.kill(int((project / "pid0").read_text()), signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "ForkServerDied" in out and "kernel fork server" in out and "os._exit" not in out, out
    assert wait_for_none(marker) == []


def test_a_server_that_keeps_dying_is_replaced_a_few_times_then_given_up(tmp_path, monkeypatch, marker):
    monkeypatch.setattr(forks, "RESTARTS", 1)
    server = ForkServer()
    log = os.open(tmp_path / "kernel.log", os.O_WRONLY | os.O_CREAT)
    spawn = [["-f", str(tmp_path / "kernel.json")], str(tmp_path), dict(os.environ), log]
    try:
        killed, _ = server._wait_ready()
        killed.kill()
        killed.wait()
        assert server.deaths == 1
        kernel = server.spawn(*spawn)  # asked of the server started in its place
        assert psutil.Process(kernel).ppid() not in (killed.pid, os.getpid())
        replacement, _ = server._wait_ready()
        replacement.kill()
        replacement.wait()
        with pytest.raises(ForkServerDied):
            server.spawn(*spawn)
        assert server.deaths == 2
    finally:
        server.close()
        os.close(log)
    assert wait_for_none(marker) == []  # the kernel forked by the second server went with the close
