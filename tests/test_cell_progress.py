"""How far a running notebook has got: the cell it runs, that cell's first line and the last lines it printed, in
the store while it runs (what `show --json`, `GET runs/ID` and the panels read) and in the terminal's live table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import run_cli, write_notebook

import nbflow
from nbflow.models import CellProgress, Run, TaskRun, TaskState
from nbflow.progress import LiveProgress
from nbflow.run.background import start_run
from nbflow.store import open_store

WAIT_FOR_GO = "import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.05)"


def progress_of(root: Path, run_id: str, task: str) -> CellProgress | None:
    store = open_store(root / ".nbflow")
    try:
        return next(t.progress for t in store.task_runs(run_id) if t.name == task)
    finally:
        store.close()


def wait_until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def test_the_store_follows_the_running_cell_and_what_it_printed(project):
    write_notebook(
        project / "load.ipynb",
        'outputs = ["done.txt"]',
        "for i in range(30):\n    print(f'row {i}')",
        "# wait for the test\n" + WAIT_FOR_GO,
        "open('done.txt', 'w').write('ok')",
    )
    handle = start_run(nbflow.load(project), trigger="api")

    progress = wait_until(lambda: (p := progress_of(project, handle.id, "load")) and p.cell == 4 and p)
    # parameters, injected parameters, the printing cell, the waiting one: 4 of 5
    assert progress.cells == 5
    assert progress.line == "# wait for the test"
    assert progress.tail[-1] == "row 29" and len(progress.tail) == CellProgress.TAIL_LINES
    assert handle.run.tasks["load"].progress == progress  # the live table's view of the same

    (project / "go").write_text("")
    run = handle.wait(timeout=60)
    assert run.state == "succeeded"
    assert progress_of(project, handle.id, "load").cell == 5  # as far as it got: the last cell

    shown = json.loads(run_cli("show", handle.id, str(project), "--json").stdout)
    assert shown["tasks"][0]["progress"]["cell"] == 5 and shown["tasks"][0]["progress"]["tail"][-1] == "row 29"


def test_a_notebook_of_thousands_of_quick_cells_is_recorded_a_few_times_a_second(project):
    """Every cell start and printed line reaches the executor's hooks; the store gets only what moved, at most
    five times a second: the run is not slowed by writes of its own progress."""
    write_notebook(project / "many.ipynb", 'outputs = ["m.txt"]', *["print(1)"] * 500, "open('m.txt','w').write('')")
    store = open_store(project / ".nbflow")
    try:
        before = store.db.execute("PRAGMA data_version").fetchone()[0]
        changes = 0
        handle = start_run(nbflow.load(project), trigger="api")
        while not handle.done:
            version = store.db.execute("PRAGMA data_version").fetchone()[0]
            changes += version != before
            before = version
            time.sleep(0.01)
        assert handle.wait().state == "succeeded"
    finally:
        store.close()
    assert progress_of(project, handle.id, "many").cell == 503
    duration = handle.run.tasks["many"].duration_s or 0
    assert changes <= 20 + 5 * duration  # the run's own state changes, and progress at most 5 times a second


def test_the_live_table_shows_the_running_cell_and_the_last_line_printed():
    run = Run("r1", "cli", {}, {"load": TaskRun("load", TaskState.RUNNING, started_at="2026-12-03T08:00:00+00:00")})
    run.tasks["load"].progress = CellProgress(12, 40, "df = clean(df)", ["rows: 1000", "rows: 2000"])
    live = LiveProgress()
    live.run = run
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(live.__rich__())
    text = console.export_text()
    assert "cell 12/40: df = clean(df)" in text and "> rows: 2000" in text
