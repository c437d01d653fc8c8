"""The dry run says what the real run then does: run, skip, or run only if an upstream task's output changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nbflow
from nbflow.models import TaskState
from nbflow.run.plan import Action, plan
from nbflow.store import open_store

from .fakes import FakeExecutor, Succeed
from .helpers import task

RUN, SKIP, RUN_IF = Action.RUN, Action.SKIP, Action.RUN_IF_UPSTREAM_CHANGES
SUCCEEDED, SKIPPED = TaskState.SUCCEEDED, TaskState.SKIPPED


def pipeline_files(project: Path, b_code: str = "x = 1") -> None:
    """raw.csv -> a -> a.txt -> b; c names a as its upstream (no file between them)."""
    (project / "raw.csv").write_text("1,2,3\n")
    task(project, "a.ipynb", inputs=["raw.csv"], outputs=["a.txt"], params="scale = 1")
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"], code=b_code)
    task(project, "c.ipynb", outputs=["c.txt"], upstream=["a"])


def runs_recorded(project: Path) -> int:
    store = open_store(project / ".nbflow")
    try:
        return len(store.runs())
    finally:
        store.close()


def ran_once(project: Path) -> None:
    pipeline_files(project)
    run = nbflow.load(project).run(executor=FakeExecutor())
    assert {t.state for t in run.tasks.values()} == {SUCCEEDED}


def first_run(project: Path) -> dict[str, Any]:
    pipeline_files(project)
    return {}


def nothing_changed(project: Path) -> dict[str, Any]:
    ran_once(project)
    return {}


def input_changed(project: Path) -> dict[str, Any]:
    ran_once(project)
    (project / "raw.csv").write_text("4,5,6\n")
    return {}  # a's rerun writes the same a.txt


def input_changed_and_output_too(project: Path) -> dict[str, Any]:
    ran_once(project)
    (project / "raw.csv").write_text("4,5,6\n")
    return {"script": {"a": Succeed("new\n")}}


def parameter_changed(project: Path) -> dict[str, Any]:
    ran_once(project)
    return {"params": {"scale": 2}}


def downstream_code_changed(project: Path) -> dict[str, Any]:
    ran_once(project)
    pipeline_files(project, b_code="x = 2")
    return {}


def forced(project: Path) -> dict[str, Any]:
    ran_once(project)
    return {"force": True}


# what the dry run says of a, b and c, and what the run then does with them
CASES = {
    first_run: {"a": (RUN, SUCCEEDED), "b": (RUN, SUCCEEDED), "c": (RUN, SUCCEEDED)},
    nothing_changed: {"a": (SKIP, SKIPPED), "b": (SKIP, SKIPPED), "c": (SKIP, SKIPPED)},
    # b reads what a rewrites, unchanged: skipped; c follows a's runs, not its files: it runs
    input_changed: {"a": (RUN, SUCCEEDED), "b": (RUN_IF, SKIPPED), "c": (RUN_IF, SUCCEEDED)},
    input_changed_and_output_too: {"a": (RUN, SUCCEEDED), "b": (RUN_IF, SUCCEEDED), "c": (RUN_IF, SUCCEEDED)},
    parameter_changed: {"a": (RUN, SUCCEEDED), "b": (RUN_IF, SKIPPED), "c": (RUN_IF, SUCCEEDED)},
    downstream_code_changed: {"a": (SKIP, SKIPPED), "b": (RUN, SUCCEEDED), "c": (SKIP, SKIPPED)},
    forced: {"a": (RUN, SUCCEEDED), "b": (RUN, SUCCEEDED), "c": (RUN, SUCCEEDED)},
}


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_the_dry_run_says_what_the_run_then_does(project, case):
    options = case(project)
    params, force = options.get("params"), options.get("force", False)
    pipeline = nbflow.load(project)
    runs_before = runs_recorded(project)

    steps = plan(pipeline, params=params, force=force)
    assert runs_recorded(project) == runs_before  # nothing ran, nothing was recorded
    fake = FakeExecutor(script=options.get("script"))
    run = pipeline.run(executor=fake, params=params, force=force)

    assert {step.task: (step.action, run.tasks[step.task].state) for step in steps} == CASES[case]
    assert [step.task for step in steps] == list(run.tasks)  # in the order the run takes them
    for step in steps:
        result = run.tasks[step.task]
        if step.action is RUN:  # for the same reasons
            assert result.reasons == step.reasons
        elif step.action is SKIP:
            assert step.task not in fake.tasks_run and step.reasons == []
        else:
            assert step.reasons == [f"upstream {u} will run" for u in pipeline.graph.predecessors(step.task)]
