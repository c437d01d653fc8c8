"""Failures: errors recorded, downstream upstream_failed, fail-fast, timeouts, retries, dead kernels."""

from __future__ import annotations

import json
import os
import time

import nbformat
import psutil
from conftest import run_cli, write_notebook
from test_run import task

import nbflow
from nbflow.run.background import start_run


def test_error_is_recorded_and_the_executed_notebook_kept_with_it(project):
    write_notebook(project / "bad.ipynb", 'outputs = ["bad.txt"]', "x = 41", "raise ValueError(f'bad value {x}')")
    task(project / "after.ipynb", 'inputs = ["bad.txt"]\noutputs = ["after.txt"]')
    task(project / "other.ipynb", 'outputs = ["other.txt"]')
    run = nbflow.load(project).run(workers=1)
    assert run.state == "failed" and run.exit_code == 1
    bad = run.tasks["bad"]
    assert bad.state == "failed"
    assert (bad.error.ename, bad.error.evalue, bad.error.cell_index) == ("ValueError", "bad value 41", 3)
    assert any("raise ValueError" in line for line in bad.error.traceback)
    assert not any("\x1b[" in line for line in bad.error.traceback)
    executed = nbformat.read(bad.output_notebook, as_version=4)
    assert any("An Exception was encountered" in c.source for c in executed.cells if c.cell_type == "markdown")
    assert executed.cells[-1].outputs[0]["ename"] == "ValueError"
    assert run.tasks["after"].state == "upstream_failed"
    assert run.tasks["other"].state == "succeeded"


def test_fail_fast_stops_the_rest(project):
    write_notebook(project / "bad.ipynb", 'outputs = ["bad.txt"]', "raise RuntimeError('stop')")
    task(project / "slow.ipynb", 'outputs = ["slow.txt"]', "'x'", "import time; time.sleep(30)")
    task(project / "zlater.ipynb", 'outputs = ["later.txt"]')
    started = time.monotonic()
    run = nbflow.load(project).run(workers=2, fail_fast=True)
    assert time.monotonic() - started < 20
    states = {n: r.state for n, r in run.tasks.items()}
    assert states["bad"] == "failed" and states["slow"] == "cancelled" and states["zlater"] == "cancelled"
    assert run.state == "failed"


def test_timeout_stops_the_whole_task(project):
    write_notebook(
        project / "hang.ipynb",
        'outputs = ["h.txt"]',
        "x = 1",
        "import time\nwhile True: time.sleep(1)",
        metadata={"nbflow": {"timeout": 3}},
    )
    started = time.monotonic()
    run = nbflow.load(project).run()
    assert time.monotonic() - started < 15
    error = run.tasks["hang"].error
    assert run.tasks["hang"].state == "failed" and error.ename == "TaskTimeout" and error.cell_index == 3


def test_retries_rerun_a_failing_task_and_record_each_attempt(project):
    write_notebook(
        project / "flaky.ipynb",
        'outputs = ["f.txt"]',
        "import os\nn = len(os.listdir('tries')) if os.path.isdir('tries') else 0\n"
        "os.makedirs('tries', exist_ok=True); open(f'tries/{n}', 'w').close()\n"
        "assert n >= 2, f'attempt {n + 1} fails'\nopen(outputs[0], 'w').write('ok')",
    )
    run = nbflow.load(project).run(retries=2)
    flaky = run.tasks["flaky"]
    assert flaky.state == "succeeded" and flaky.attempts == 3
    from nbflow.store import Store

    rows = (
        Store(project / ".nbflow")
        .db.execute("SELECT attempt, state FROM attempts WHERE task = 'flaky' ORDER BY attempt")
        .fetchall()
    )
    assert [tuple(r) for r in rows] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    kept = sorted(p.name for p in flaky.output_notebook.parent.glob("flaky*.ipynb"))
    assert kept == ["flaky.attempt-1.ipynb", "flaky.attempt-2.ipynb", "flaky.ipynb"]


def test_a_kernel_that_dies_is_a_failed_task_not_a_hang(project):
    write_notebook(project / "die.ipynb", 'outputs = ["d.txt"]', "import os", "os._exit(1)")
    started = time.monotonic()
    run = nbflow.load(project).run()
    assert time.monotonic() - started < 20
    error = run.tasks["die"].error
    assert error.ename == "DeadKernelError" and "kernel died while running cell 3" in error.evalue


def test_declared_output_not_written_fails_the_task(project):
    write_notebook(project / "lazy.ipynb", 'outputs = ["promised.csv"]', "x = 1")
    run = nbflow.load(project).run()
    assert run.tasks["lazy"].state == "failed"
    assert run.tasks["lazy"].error.evalue == "declared output not written by this run: promised.csv"


def processes_with(marker: str) -> list[int]:
    """Processes (other than this one) whose environment holds `marker`: kernels inherit it, forked or not, and
    keep it when orphaned."""
    name, _, value = marker.partition("=")
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(name) == value and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for_none(marker: str, seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_no_kernel_outlives_a_run_even_prewarmed_ones(project, marker):
    # b..e would get kernels started ahead while a runs; a fails, so none of them ever runs.
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "import time; time.sleep(1)", "1 / 0")
    for prev, name in zip("abcd", "bcde"):
        task(project / f"{name}.ipynb", f'inputs = ["{prev}.txt"]\noutputs = ["{name}.txt"]')
    run = nbflow.load(project).run(workers=2)
    assert [r.state for r in run.tasks.values()] == ["failed"] + ["upstream_failed"] * 4
    assert wait_for_none(marker) == []
    nbflow.load(project).run(workers=2, targets=["a"], fail_fast=True)
    assert wait_for_none(marker) == []


def test_the_cli_leaves_no_kernel_server_behind_whatever_the_run_does(project, marker):
    """`nbflow run` starts its kernel fork server before it reads the pipeline; a run that needs no kernel (all up
    to date, or a pipeline with a mistake) must still leave nothing running."""
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    assert run_cli("run", str(project)).returncode == 0
    assert wait_for_none(marker) == []
    assert run_cli("run", str(project)).stdout.count("skipped") >= 1  # the no-op run
    assert wait_for_none(marker) == []
    task(project / "b.ipynb", 'outputs = ["a.txt"]')  # a duplicate output: exit 2 before anything runs
    assert run_cli("run", str(project)).returncode == 2
    assert wait_for_none(marker) == []


def test_kernels_started_ahead_never_exceed_j(project, marker):
    """While `slow` runs, the six tasks after it are all upcoming: with -j 2 at most two kernels wait for them."""
    write_notebook(
        project / "slow.ipynb",
        'outputs = ["slow.txt"]',
        "import time; time.sleep(4)",
        "open(outputs[0], 'w').write('x')",
    )
    for name in "bcdefg":
        task(project / f"{name}.ipynb", f'inputs = ["slow.txt"]\noutputs = ["{name}.txt"]')
    handle = start_run(nbflow.load(project), workers=2)
    most, deadline = 0, time.monotonic() + 60
    # Until slow is done: then b and c run, and two more kernels may wait.
    while not (project / "slow.txt").exists() and time.monotonic() < deadline:
        marked = set(processes_with(marker))
        kernels = []
        for pid in marked:  # forked kernels are the fork server's children; the server is ours
            try:
                if psutil.Process(pid).ppid() in marked:
                    kernels.append(pid)
            except psutil.NoSuchProcess:
                pass
        most = max(most, len(kernels))
        time.sleep(0.05)
    assert handle.wait(timeout=120).state == "succeeded"
    assert most == 3  # slow's own kernel and two waiting ones
    assert wait_for_none(marker) == []


def test_the_failing_cell_is_named_as_the_user_sees_it_in_the_source_notebook(project):
    """papermill counts the cell it injects; the user's notebook has no such cell."""
    write_notebook(
        project / "deep.ipynb",
        'outputs = ["d.txt"]',
        "a = 1",
        "b = 2",
        "# the check\nassert a > b, 'a is not above b'",
        markdown="# Deep",
    )
    error = nbflow.load(project).run().tasks["deep"].error
    # source: markdown 0, parameters 1, a 2, b 3, the check 4; executed: the injected cell is 2
    assert (error.cell_index, error.source_cell, error.source_line) == (5, 4, "# the check")
    assert str(error) == "AssertionError in cell 4 (`# the check`): a is not above b"
    executed = json.loads(next((project / ".nbflow" / "runs").glob("*/deep.ipynb")).read_text())["cells"]
    banners = [c for c in executed if "papermill-error-cell-tag" in c["metadata"].get("tags", [])]
    cells = [c for c in executed if c not in banners]  # papermill's red banners are not counted
    assert banners and "assert a > b" in "".join(cells[error.cell_index]["source"])
