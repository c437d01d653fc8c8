"""A full disk (a small tmpfs) and output without end: the kernel's log and the executed notebook are capped, and
"no space left" fails the task, or ends the run, with that reason, in seconds, never a hang."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import run_cli, write_notebook
from test_failures import wait_for_none

import nbflow
from nbflow.run import engine, kernels

FILL = """
def fill_the_disk():
    try:
        with open("filler", "wb") as f:
            while True:
                f.write(b"x" * 65536)
                f.flush()
    except OSError:
        pass
"""
FLOOD = "import subprocess; subprocess.run(\"head -c 400000 /dev/zero | tr '\\\\0' x\", shell=True)"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A project on a 4 MiB tmpfs of its own."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (mount needs root)")
    try:
        (disk / "nbflow.toml").write_text("")
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_kernel_writing_to_a_full_disk_fails_its_task_and_never_hangs(small_disk, marker):
    """Before, ipykernel's echo of fd output died at the first ENOSPC and the kernel blocked on its full pipe."""
    write_notebook(
        small_disk / "flood.ipynb",
        'outputs = ["flood.txt"]',
        FILL,
        f"fill_the_disk(); {FLOOD}",
        "import os, time; time.sleep(1); os.remove('filler')",  # room again for the notebook and the store
        "open(outputs[0], 'w').write('done')",
    )
    started = time.monotonic()
    result = run_cli("run", str(small_disk), timeout=90)
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    (run,) = json.loads(run_cli("runs", str(small_disk), "--json").stdout)
    (task,) = json.loads(run_cli("show", run["id"], str(small_disk), "--json").stdout)["tasks"]
    assert task["state"] == "failed" and task["error"]["ename"] == "NoSpaceLeft"
    assert "flood.kernel.log" in task["error"]["evalue"] and "free some space" in task["error"]["evalue"]
    executed = nbformat.read(small_disk / ".nbflow" / "runs" / run["id"] / "flood.ipynb", as_version=4)
    assert executed.cells[-1].execution_count is not None  # the notebook ran to its end and was kept
    assert wait_for_none(marker) == []


def test_a_full_disk_under_the_store_ends_the_run_at_once_with_that_reason(small_disk, marker):
    """The store takes no more writes: what runs is stopped (before, the run waited for it, then said "internal
    error"), the message says the disk is full, and the history before the run is kept."""
    write_notebook(small_disk / "first.ipynb", 'outputs = ["first.txt"]', "open(outputs[0], 'w').write('1')")
    assert run_cli("run", str(small_disk)).returncode == 0
    write_notebook(small_disk / "slow.ipynb", 'outputs = ["slow.txt"]', "import time; time.sleep(120)")
    write_notebook(small_disk / "fill.ipynb", 'outputs = ["fill.txt"]', FILL, "fill_the_disk()")
    started = time.monotonic()
    result = run_cli("run", str(small_disk), "-j", "2", timeout=100)
    assert time.monotonic() - started < 60
    assert result.returncode == 2
    assert "is full" in result.stderr and "nbflow.db" in result.stderr and "free some space" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert wait_for_none(marker) == []
    (small_disk / "filler").unlink()
    runs = json.loads(run_cli("runs", str(small_disk), "--json").stdout)
    assert [r["state"] for r in runs][-1] == "succeeded" and len(runs) == 2  # the first run, and this one ended
    assert runs[0]["state"] in ("failed", "interrupted")


def test_the_kernel_log_is_capped(project, monkeypatch):
    monkeypatch.setattr(kernels, "KERNEL_LOG_LIMIT_BYTES", 100_000)
    write_notebook(project / "loud.ipynb", 'outputs = ["loud.txt"]', FLOOD, "open(outputs[0], 'w').write('x')")
    run = nbflow.load(project).run()
    assert run.state == "succeeded"
    log = (project / ".nbflow" / "runs" / run.id / "loud.kernel.log").read_text()
    assert log.count("x") == 100_000 and "[nbflow: kernel log truncated at 0 MiB" in log


def test_the_notebook_s_outputs_are_capped_in_all(project, monkeypatch):
    """Each cell under its own limit, the notebook over its total: the rest is dropped, with a note in each cell."""
    monkeypatch.setattr(engine, "NOTEBOOK_LIMIT_BYTES", 1_000_000)
    cells = ["print('y' * 400_000)"] * 4
    write_notebook(project / "many.ipynb", 'outputs = ["many.txt"]', *cells, "_ = open(outputs[0], 'w').write('x')")
    run = nbflow.load(project).run()
    assert run.state == "succeeded"
    executed = nbformat.read(project / ".nbflow" / "runs" / run.id / "many.ipynb", as_version=4)
    texts = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in executed.cells if c.cell_type == "code"]
    assert 999_990 <= sum(t.count("y") for t in texts) <= 1_000_000  # (the newlines count too)
    notes = [t for t in texts if "the notebook's outputs passed 0 MiB; the rest was dropped" in t]
    assert len(notes) == 2  # the cell that crossed the limit, and the one after it
