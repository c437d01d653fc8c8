"""Runs started in the background: for the panel, the server and the scheduler."""

from __future__ import annotations

import threading

import pytest
from conftest import write_notebook

import nbflow
from nbflow.errors import LockedError, PipelineError
from nbflow.run.background import start_run


def test_a_background_run_can_be_followed_and_cancelled(project):
    write_notebook(project / "slow.ipynb", 'outputs = ["s.txt"]', "import time", "time.sleep(60)")
    handle = start_run(nbflow.load(project), trigger="api")
    assert handle.id and handle.run.tasks["slow"].state in ("pending", "running")
    with pytest.raises(LockedError):
        start_run(nbflow.load(project), no_wait=True)  # it would wait for `slow`
    handle.cancel()
    run = handle.wait(timeout=60)
    assert run is not None and run.state == "cancelled" and run.tasks["slow"].state == "cancelled"


def test_start_errors_are_raised_to_the_caller(project):
    write_notebook(project / "a.ipynb", 'inputs = ["missing.csv"]\noutputs = ["a.txt"]', "x = 1")
    with pytest.raises(PipelineError, match="missing.csv does not exist"):
        start_run(nbflow.load(project))


def test_a_long_lived_process_does_not_gather_threads_run_after_run(project):
    """The server and the scheduler run pipeline after pipeline in one process: each run must leave no thread
    behind (nbclient used to leave one heartbeat thread per task)."""
    for name in "abcd":
        write_notebook(project / f"{name}.ipynb", f'outputs = ["{name}.txt"]', "open(outputs[0], 'w').write('x')")
    pipeline = nbflow.load(project)
    pipeline.run(workers=2, force=True)
    settled = threading.active_count()
    for _ in range(3):
        assert start_run(pipeline, workers=2, force=True).wait(timeout=120).state == "succeeded"
    assert threading.active_count() <= settled
