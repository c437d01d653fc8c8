"""The kernels under a task, with real kernels: a start that hangs is retried, a dead kernel is shut down without
an error in the log, and the executed notebook is there to open while the task still runs."""

from __future__ import annotations

import json
import logging
import sys
import time

import nbformat
import pytest
from conftest import write_notebook

import nbflow
from nbflow.models import TaskState
from nbflow.run.background import start_run
from nbflow.run.execute import KernelControl, execute_job
from nbflow.run.jobs import Job
from nbflow.run.kernels import kernel_specs

# A kernel whose first start hangs (it never opens its sockets); later starts are the real Python kernel.
HANGS_ONCE = (
    "import os, sys, time\n"
    "flag = os.path.join(os.environ['HANG_FLAG_DIR'], 'started-once')\n"
    "if not os.path.exists(flag):\n"
    "    open(flag, 'w').close()\n"
    "    time.sleep(600)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', '-f', sys.argv[1]])\n"
)


@pytest.fixture
def jupyter_path(tmp_path, monkeypatch):
    """A Jupyter data folder of this test's own, for kernel specs (the process keeps one KernelSpecManager, which
    reads JUPYTER_PATH when it is made)."""
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    kernel_specs.cache_clear()
    yield tmp_path / "jupyter"
    kernel_specs.cache_clear()


def test_a_kernel_start_that_hangs_is_retried_with_a_new_kernel(tmp_path, monkeypatch, jupyter_path):
    spec = jupyter_path / "kernels" / "hangs-once"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-c", HANGS_ONCE, "{connection_file}"],
                "display_name": "Hangs once",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("HANG_FLAG_DIR", str(tmp_path))
    notebook = write_notebook(tmp_path / "p" / "a.ipynb", "x = 1", "y = x + 1", kernel="hangs-once")
    job = Job(
        task="a",
        notebook=str(notebook),
        output_notebook=str(tmp_path / "runs" / "a.ipynb"),
        cwd=str(notebook.parent),
        kernel="hangs-once",
        parameters={},
        start_timeout=3,
    )
    result = execute_job(job, KernelControl())
    assert (tmp_path / "started-once").exists()  # the first start did hang
    assert result.state is TaskState.SUCCEEDED, result.error
    executed = nbformat.read(job.output_notebook, as_version=4)
    assert executed.cells[-1].execution_count is not None


def test_a_kernel_that_died_is_shut_down_without_an_error_in_the_log(project, caplog):
    """A forked kernel that exited is still interrupted before jupyter_client shuts it down; that must not log a
    traceback (a Jupyter server running nbflow would show it)."""
    write_notebook(project / "die.ipynb", 'outputs = ["d.txt"]', "import os", "os._exit(1)")
    caplog.set_level(logging.WARNING)
    run = nbflow.load(project).run()
    assert run.tasks["die"].error.ename == "DeadKernelError"
    tracebacks = [r for r in caplog.records if r.exc_info or "No such process" in r.getMessage()]
    assert tracebacks == []


def test_the_executed_notebook_can_be_opened_while_the_task_runs(project):
    write_notebook(
        project / "slow.ipynb",
        'outputs = ["s.txt"]',
        "print('first cell done')\nimport time; time.sleep(2)",
        "time.sleep(60)",
    )
    handle = start_run(nbflow.load(project))
    executed = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and executed is None:
        output = handle.run.tasks["slow"].output_notebook
        if output is not None and output.exists():
            try:
                partial = nbformat.read(output, as_version=4)
            except Exception:  # caught mid-write
                partial = None
            if partial is not None and partial.cells[2].outputs:
                executed = partial
        time.sleep(0.2)
    handle.cancel()
    assert handle.wait(timeout=60).state == "cancelled"
    assert executed is not None, "the notebook was not saved while its task ran"
    assert "first cell done" in executed.cells[2].outputs[0]["text"]
    assert executed.cells[2].metadata.papermill["status"] == "completed"
    assert executed.cells[3].outputs == []
