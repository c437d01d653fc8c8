"""`nbflow scheduler` as a service: the systemd unit it prints, its metrics on 127.0.0.1 scraped over HTTP while it
fires a real schedule (with a real notification), its log lines, and a clean exit on SIGTERM."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import run_cli, write_notebook
from prometheus_client.parser import text_string_to_metric_families
from test_scheduler_process import runs, wait_for

from nbflow.schedule import pause_schedule
from nbflow.store import Store

pytestmark = pytest.mark.timeout(300)


def unit_of(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # keys as systemd spells them
    unit.read_string(text)
    return unit


def exec_start(line: str) -> list[str]:
    """ExecStart= as systemd splits it: quotes, then `%%` and `$$` unescaped (POSIX-shell quoting agrees here)."""
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line)]


def test_print_systemd_prints_a_unit_that_runs_this_nbflow_on_the_project(tmp_path):
    project = tmp_path / "sales reports 100%"  # a space, and a % that systemd would read as a specifier
    project.mkdir()
    (project / "nbflow.toml").write_text("")
    result = run_cli("scheduler", "--print-systemd", str(project / "."), "--metrics-port", "9464", "-j", "3")
    assert result.returncode == 0, result.stderr
    unit = unit_of(result.stdout)
    service = unit["Service"]
    command = exec_start(service["ExecStart"])
    assert os.path.isabs(command[0]) and os.access(command[0], os.X_OK), command
    assert command[command.index("scheduler") + 1] == str(project)
    assert command[command.index("scheduler") + 2 :] == ["--workers", "3", "--metrics-port", "9464"]
    assert service["WorkingDirectory"].replace("%%", "%") == str(project)
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # the scheduler stops its kernels itself
    assert int(service["TimeoutStopSec"]) >= 120
    assert re.search(r"^#User=\S+$", result.stdout, re.M), result.stdout
    assert unit["Install"]["WantedBy"] == "multi-user.target"

    # the command it names is this nbflow: it answers as this one does
    version = subprocess.run([*command[: command.index("scheduler")], "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout == run_cli("--version").stdout

    if shutil.which("systemd-analyze"):
        path = tmp_path / "nbflow-scheduler.service"
        path.write_text(result.stdout)
        check = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
        assert check.returncode == 0 and "nbflow-scheduler.service" not in check.stderr, check.stderr


def test_metrics_port_mistakes_are_said_before_anything_runs(project):
    result = run_cli("scheduler", str(project), "--metrics-port", "70000")
    assert result.returncode == 2 and "--metrics-port 70000: a port is a number from 1 to 65535" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("scheduler", str(project), "--metrics-port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_scheduler_serves_its_metrics_logs_each_firing_and_stops_on_sigterm(project, tmp_path):
    write_notebook(
        project / "stamp.ipynb", 'outputs = ["stamp.txt"]\nwhen = "never"', "open(outputs[0], 'w').write(when)"
    )
    added = run_cli(
        "schedule", "add", "quick", str(project), "--every", "2s", "-p", "when", "{datetime}",
        "--notify-on", "success", "--on-failure-command", "true",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    log = tmp_path / "scheduler.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbflow", "scheduler", str(project), "--metrics-port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = int(wait_for(lambda: re.search(r"metrics at http://127\.0\.0\.1:(\d+)/metrics", log.read_text()),
                            "the metrics port logged").group(1))  # fmt: skip
        wait_for(lambda: sum(r["state"] == "succeeded" for r in runs(project)) >= 2, "two runs succeeded")
        pause_schedule(project, "quick")
        wait_for(lambda: all(r["state"] != "running" for r in runs(project)), "the last run finished")
        store = Store(project / ".nbflow")
        succeeded = [r for r in runs(project) if r["state"] == "succeeded"]

        def notices(sent: bool) -> int:
            query = f"SELECT COUNT(*) FROM notifications WHERE state {'=' if sent else '!='} 'sent'"
            return store.db.execute(query).fetchone()[0]

        # a run's notice is recorded just after the run ends, so "none unsent" may come before the last notice
        wait_for(
            lambda: notices(sent=True) >= len(succeeded) and notices(sent=False) == 0,
            "every notice sent, one for each run that succeeded",
        )
        sent = notices(sent=True)
        store.close()

        got = scrape(f"http://127.0.0.1:{port}/metrics")
        assert got[("nbflow_runs_total", (("state", "succeeded"), ("trigger", "schedule:quick")))] == len(succeeded)
        assert got[("nbflow_schedule_paused", (("schedule", "quick"),))] == 1
        assert (
            abs(got[("nbflow_schedule_last_success_timestamp_seconds", (("schedule", "quick"),))] - time.time()) < 120
        )
        assert got[("nbflow_scheduler_lease_held", ())] == 1
        lease = [labels for name, labels in got if name == "nbflow_scheduler_lease_info"]
        assert len(lease) == 1 and ("pid", str(process.pid)) in lease[0]
        assert abs(got[("nbflow_scheduler_last_tick_timestamp_seconds", ())] - time.time()) < 30
        key = (("channel", "command"), ("event", "success"), ("state", "sent"))
        assert sent >= 2 and got[("nbflow_notifications_total", key)] == sent

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    output = log.read_text()
    assert "Traceback" not in output and "SIGTERM: stopping" in output and "scheduler stopped" in output
    for run in succeeded:  # one line when it fired and one when it finished, each naming schedule, slot and run
        (fired,) = re.findall(rf"quick: slot (\S+) fired: run {run['id']} started", output)
        (finished,) = re.findall(rf"quick: slot (\S+): run {run['id']} succeeded in \d+\.\d+s", output)
        assert fired == finished and fired[:4].isdigit()
    with pytest.raises(urllib.error.URLError):  # the metrics server stopped with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
