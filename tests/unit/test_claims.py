"""Claims with the real store and a scripted executor: an instance an older running run holds waits and is then
judged; a dead holder is found and released; `no_wait` refuses before anything runs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import nbflow
from nbflow.errors import LockedError
from nbflow.models import RunState, TaskRun, TaskState
from nbflow.run.claims import Claims
from nbflow.store import Store

from .fakes import FakeExecutor
from .helpers import states, task


def older_run(project: Path, *instances: str, pid: int | None = None) -> str:
    """A run recorded as running by this process (or by `pid`), claiming `instances` as a real run would."""
    pipeline = nbflow.load(project)
    store = Store(project / ".nbflow")
    run_id = "20260101T000000000-0ld0"
    claims = Claims.of(store, run_id, pipeline, instances)
    store.create_run(run_id, "cli", {}, [], [TaskRun(name) for name in instances], claims=claims.keys)
    if pid is not None:
        store.db.execute("UPDATE runs SET pid = ?, pid_started = NULL WHERE id = ?", (pid, run_id))
    store.close()
    return run_id


@pytest.fixture
def grid_project(project: Path) -> Path:
    task(
        project,
        "r.ipynb",
        outputs=["out/{region}.txt"],
        params='region = "north"\ngrid = {"region": ["north", "south"]}',
    )
    return project


def test_an_instance_held_by_an_older_run_waits_then_is_judged(grid_project):
    holder = older_run(grid_project, "r[region=north]")
    seen: list[tuple[str, TaskState, list[str]]] = []

    def finish_later() -> None:
        time.sleep(0.6)
        store = Store(grid_project / ".nbflow")
        store.finish_run(holder, RunState.SUCCEEDED)  # releases its claims
        store.close()

    threading.Thread(target=finish_later).start()
    run = nbflow.load(grid_project).run(
        executor=FakeExecutor(), on_event=lambda run, t: seen.append((t.name, t.state, list(t.reasons)))
    )
    assert states(run) == {"r[region=north]": TaskState.SUCCEEDED, "r[region=south]": TaskState.SUCCEEDED}
    north = [(state, reasons) for name, state, reasons in seen if name == "r[region=north]"]
    assert north[0] == (TaskState.WAITING, [f"waiting for run {holder}, which has r[region=north] to run"])
    south_done = next(i for i, (name, state, _) in enumerate(seen) if name == "r[region=south]" and state.finished)
    north_ran = next(i for i, (name, state, _) in enumerate(seen) if name == "r[region=north]" and state.finished)
    assert south_done < north_ran  # the free instance did not wait for the held one


def test_a_holder_whose_process_died_is_marked_interrupted_and_its_instance_goes_on(grid_project):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = older_run(grid_project, "r[region=north]", pid=int(gone.stdout))
    run = nbflow.load(grid_project).run(executor=FakeExecutor())
    assert set(states(run).values()) == {TaskState.SUCCEEDED}
    store = Store(grid_project / ".nbflow")
    assert store.run(holder).state is RunState.INTERRUPTED
    store.close()


def test_no_wait_refuses_naming_the_holder_and_records_nothing(grid_project):
    holder = older_run(grid_project, "r[region=north]")
    with pytest.raises(LockedError, match=rf"r\[region=north\] \(run {holder} has r\[region=north\]\)"):
        nbflow.load(grid_project).run(executor=FakeExecutor(), no_wait=True)
    store = Store(grid_project / ".nbflow")
    assert [r.id for r in store.runs()] == [holder]
    store.close()
    run = nbflow.load(grid_project).run(targets=["r[region=south]"], executor=FakeExecutor(), no_wait=True)
    assert states(run) == {"r[region=south]": TaskState.SUCCEEDED}


def test_two_instances_writing_one_path_in_two_runs_do_not_overlap(project):
    task(project, "w.ipynb", outputs=["shared.txt"], params="stamp = 1")
    older_run(project, "w")
    with pytest.raises(LockedError, match="w \\(run 20260101T000000000-0ld0 has w\\)"):
        nbflow.load(project).run(params={"stamp": 2}, executor=FakeExecutor(), no_wait=True)
