"""Faults injected into real runs: kernels killed, kernels that never start, exits, floods, hangs, crashes of
nbflow itself, concurrent readers, and parameter values that try to become code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import nbformat
from conftest import run_cli, write_notebook
from test_run import task

import nbflow
from nbflow.run.background import start_run
from nbflow.store import Store


def wait_for(path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return path.read_text()


def test_a_kernel_killed_by_a_signal_mid_cell_fails_its_task_only(project):
    write_notebook(
        project / "victim.ipynb",
        'outputs = ["v.txt"]',
        "import os, time",
        "open('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)",
    )  # killed in this cell
    task(project / "bystander.ipynb", 'outputs = ["b.txt"]', "'fine'", "import time; time.sleep(2)")
    handle = start_run(nbflow.load(project), workers=2)
    os.kill(int(wait_for(project / "pid")), signal.SIGKILL)
    run = handle.wait(timeout=60)
    victim = run.tasks["victim"]
    assert victim.state == "failed" and victim.error.ename == "DeadKernelError"
    assert "kernel died while running cell 3" in victim.error.evalue  # after the injected cell
    assert run.tasks["bystander"].state == "succeeded"
    assert victim.output_notebook.exists()


def test_a_kernel_that_never_starts_is_a_clear_failure(project, tmp_path):
    kernels = tmp_path / "jupyter" / "kernels" / "broken"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"],
                "display_name": "Broken",
                "language": "python",
            }
        )
    )
    write_notebook(project / "k.ipynb", 'outputs = ["k.txt"]', "x = 1", metadata={"nbflow": {"kernel": "broken"}})
    started = time.monotonic()
    result = run_cli("run", str(project), env={"JUPYTER_PATH": str(tmp_path / "jupyter")})
    assert result.returncode == 1 and time.monotonic() - started < 60
    assert "k: RuntimeError" in result.stderr and "died" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_sys_exit_in_a_cell_fails_the_task_with_its_code(project):
    write_notebook(project / "bye.ipynb", 'outputs = ["bye.txt"]', "import sys", "sys.exit(1)")
    error = nbflow.load(project).run().tasks["bye"].error
    assert error.ename == "SystemExit" and error.evalue == "1" and error.cell_index == 3


def test_a_flood_of_output_is_truncated_with_a_note_and_the_notebook_kept(project):
    write_notebook(
        project / "loud.ipynb",
        'outputs = ["l.txt"]',
        "line = 'x' * 1023 + '\\n'\nfor _ in range(50 * 1024):\n    print(line, end='')",
        "open(outputs[0], 'w').write('done')",
    )
    run = nbflow.load(project).run()
    assert run.tasks["loud"].state == "succeeded"
    executed = run.tasks["loud"].output_notebook
    assert executed.stat().st_size < 12 * 1024 * 1024
    text = "".join(o.get("text", "") for o in nbformat.read(executed, as_version=4).cells[2].outputs)
    assert "[nbflow: output truncated: this cell wrote more than 10 MiB; the rest was dropped]" in text


def test_an_infinite_loop_is_stopped_by_the_timeout(project):
    write_notebook(project / "spin.ipynb", 'outputs = ["s.txt"]', "while True:\n    pass")
    started = time.monotonic()
    result = run_cli("run", str(project), "--timeout", "3")
    assert result.returncode == 1 and time.monotonic() - started < 40
    assert "spin: TaskTimeout in cell 1 (`while True:`)" in result.stderr


def test_finished_tasks_survive_a_killed_run_and_are_not_rerun(project):
    task(project / "fast.ipynb", 'outputs = ["fast.txt"]')
    write_notebook(
        project / "slow.ipynb",
        'inputs = ["fast.txt"]\noutputs = ["slow.txt"]',
        "open('started', 'w').write('1')\nimport time; time.sleep(60)\nopen(outputs[0], 'w').write('x')",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(project)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(project / "started")
    process.kill()
    process.wait(timeout=30)
    status = {t["name"]: t for t in json.loads(run_cli("status", str(project), "--json").stdout)["tasks"]}
    assert status["fast"]["status"] == "up_to_date" and status["slow"]["last_state"] == "cancelled"
    (project / "slow.ipynb").unlink()
    write_notebook(
        project / "slow.ipynb", 'inputs = ["fast.txt"]\noutputs = ["slow.txt"]', "open(outputs[0], 'w').write('x')"
    )
    run = nbflow.load(project).run()
    assert {n: r.state for n, r in run.tasks.items()} == {"fast": "skipped", "slow": "succeeded"}
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert [r["state"] for r in runs] == ["succeeded", "interrupted"]
    assert Store(project / ".nbflow").db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_readers_during_a_run_never_see_a_locked_database(project):
    for i in range(6):
        task(project / f"t{i}.ipynb", f'outputs = ["t{i}.txt"]', "'x'", "import time; time.sleep(0.3)")
    handle = start_run(nbflow.load(project), workers=2)
    failures, reads = [], 0

    def read_loop():
        nonlocal reads
        while not handle.done:
            for command in (["status", "--json"], ["runs", "--json"], ["show", "latest", "--json"]):
                result = run_cli(command[0], *command[1:2], str(project), *command[2:])
                reads += 1
                if result.returncode != 0 or "locked" in result.stderr:
                    failures.append(result.stderr)

    reader = threading.Thread(target=read_loop)
    reader.start()
    run = handle.wait(timeout=120)
    reader.join(timeout=60)
    assert run.state == "succeeded" and reads >= 3 and failures == []


def test_parameter_values_cannot_become_code(project):
    task(project / "p.ipynb", 'outputs = ["p.txt"]\nlabel = "x"', "label")
    nasty = "\"); __import__('os').system('touch pwned'); (\"\n'''\\\n# \"\"\""
    result = run_cli("run", str(project), "-p", "label", nasty)
    assert result.returncode == 0, result.stderr
    assert (project / "p.txt").read_text() == nasty
    assert not (project / "pwned").exists()
