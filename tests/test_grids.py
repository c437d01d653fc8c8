"""Grids: one notebook, many instances; fan-in through globs; run grids and backfills. Real kernels throughout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

import nbflow
from nbflow.errors import PipelineError, UsageError

REGIONS = ["north", "south", "east", "west"]


def regional_pipeline(project: Path, sleep: float = 0, fail_region: str | None = None) -> None:
    """clean (per day) -> report (per day and region, a grid) -> summary (per day, reads every report by a glob)."""
    write_notebook(
        project / "clean.ipynb",
        'day = "2026-11-01"\ninputs = ["raw/{day}.csv"]\noutputs = ["clean/{day}.csv"]',
        "open(outputs[0], 'w').write(open(inputs[0]).read().upper())",
    )
    fail = f"assert region != {fail_region!r}, 'no data for ' + region" if fail_region else "pass"
    write_notebook(
        project / "report.ipynb",
        f'day = "2026-11-01"\nregion = "all"\ngrid = {{"region": {REGIONS!r}}}\n'
        'inputs = ["clean/{day}.csv"]\noutputs = ["reports/{day}_{region}.txt"]',
        f"import time; time.sleep({sleep})",
        fail,
        "open(outputs[0], 'w').write(region + ':' + open(inputs[0]).read())",
    )
    write_notebook(
        project / "summary.ipynb",
        'day = "2026-11-01"\ninputs = {"reports": "reports/{day}_*.txt"}\noutputs = ["summary/{day}.json"]',
        "import json",
        "json.dump(inputs['reports'], open(outputs[0], 'w'))",
    )


def raw(project: Path, *days: str) -> None:
    (project / "raw").mkdir(exist_ok=True)
    for day in days:
        (project / "raw" / f"{day}.csv").write_text(f"rows of {day}\n")


def states(run) -> dict[str, str]:
    return {name: str(task.state) for name, task in run.tasks.items()}


def test_a_grid_runs_one_instance_per_value_in_parallel_and_fans_in(project):
    regional_pipeline(project, sleep=1.5)
    raw(project, "2026-11-01")
    pipe = nbflow.load(project)
    assert pipe.instances["report"] == [f"report[region={r}]" for r in REGIONS]  # in the grid's order
    assert set(pipe.graph.predecessors("summary")) == set(pipe.instances["report"])

    run = pipe.run(workers=4)
    assert run.state == "succeeded", states(run)
    for region in REGIONS:
        assert (project / "reports" / f"2026-11-01_{region}.txt").read_text() == f"{region}:ROWS OF 2026-11-01\n"
    # the fan-in got every instance's output, as a sorted list of paths from its folder
    assert json.loads((project / "summary" / "2026-11-01.json").read_text()) == [
        f"reports/2026-11-01_{r}.txt" for r in sorted(REGIONS)
    ]
    reports = [run.tasks[f"report[region={r}]"] for r in REGIONS]
    latest_start = max(t.started_at for t in reports)
    assert all(t.finished_at > latest_start for t in reports)  # all four were running at one moment
    notebook = run.tasks["report[region=north]"].output_notebook
    assert notebook.name == "report[region=north].ipynb" and notebook.exists()


def test_instances_are_skipped_and_rerun_one_by_one(project):
    regional_pipeline(project)
    raw(project, "2026-11-01")
    assert nbflow.load(project).run(workers=2).state == "succeeded"

    again = nbflow.load(project).run(workers=2)
    assert set(states(again).values()) == {"skipped"}

    # one instance's output changed behind nbflow's back: only that instance reruns; it writes what it wrote
    # before, so the fan-in reading it is still up to date
    (project / "reports" / "2026-11-01_east.txt").write_text("edited")
    third = nbflow.load(project).run(workers=2)
    ran = {name for name, state in states(third).items() if state == "succeeded"}
    assert ran == {"report[region=east]"}
    assert (
        "output changed since the last run: reports/2026-11-01_east.txt" in third.tasks["report[region=east]"].reasons
    )


def test_a_failing_instance_fails_only_its_own_downstream(project):
    regional_pipeline(project, fail_region="west")
    write_notebook(  # downstream of one healthy instance only
        project / "north_mail.ipynb",
        'day = "2026-11-01"\ninputs = ["reports/{day}_north.txt"]\noutputs = ["mail/{day}.txt"]',
        "open(outputs[0], 'w').write(open(inputs[0]).read())",
    )
    raw(project, "2026-11-01")
    run = nbflow.load(project).run(workers=2)
    assert run.state == "failed"
    assert states(run) == {
        "clean": "succeeded",
        **{f"report[region={r}]": "succeeded" for r in ["east", "north", "south"]},
        "report[region=west]": "failed",
        "north_mail": "succeeded",
        "summary": "upstream_failed",
    }
    assert "no data for west" in run.tasks["report[region=west]"].error.evalue


def test_targets_select_instances_and_a_parameter_narrows_a_grid(project):
    regional_pipeline(project)
    raw(project, "2026-11-01")
    pipe = nbflow.load(project)
    run = pipe.run(targets=["report[region=north]"])
    assert states(run) == {"clean": "succeeded", "report[region=north]": "succeeded"}

    narrowed = pipe.run(params={"region": "south"})
    assert sorted(narrowed.tasks) == ["clean", "report[region=south]", "summary"]

    result = run_cli("run", str(project), "-t", "report[region=norht]")
    assert result.returncode == 2
    assert "report has no instance with region=norht (did you mean 'north'?)" in result.stderr
    result = run_cli("run", str(project), "-p", "region", "central")
    assert result.returncode == 2
    assert "region=central is set for this run, but the task's grid runs region over north, south" in result.stderr


def test_a_backfill_runs_every_day_linked_per_day_and_going_back_reruns_nothing(project):
    regional_pipeline(project)
    (project / "nbflow.toml").write_text('[params]\nday = "2026-11-01"\n')
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    raw(project, *days)
    result = run_cli("run", str(project), "-g", "day", "2026-11-01..2026-11-30", "-t", "summary", "-j", "4")
    assert result.returncode == 0, result.stderr
    [latest] = json.loads(run_cli("runs", str(project), "--json").stdout)
    shown = json.loads(run_cli("show", latest["id"], str(project), "--json").stdout)
    assert len(shown["tasks"]) == 30 * 6 and {t["state"] for t in shown["tasks"]} == {"succeeded"}
    assert shown["grid"] == {"day": days} and "day" not in shown["params"]  # the grid, not [params], set it
    for day in days:
        assert json.loads((project / "summary" / f"{day}.json").read_text()) == [
            f"reports/{day}_{r}.txt" for r in sorted(REGIONS)
        ]
    # the plain tasks (the default day, 11-01, from [params]) were built by the backfill's 11-01 instances
    status = {t["name"]: t for t in json.loads(run_cli("status", str(project), "--json").stdout)["tasks"]}
    assert status["clean"]["status"] == "up_to_date" and status["clean"]["last_run"] == latest["id"]
    assert status["clean"]["last_instance"] == "clean[day=2026-11-01]"
    pipe = nbflow.load(project)
    backfill = pipe.with_params(run_grid={"day": days})
    # linked per day: the 11-03 report follows the 11-03 clean only
    assert list(backfill.graph.predecessors("report[day=2026-11-03,region=east]")) == ["clean[day=2026-11-03]"]

    # going back to one day already built reruns nothing, with `-g` or with `-p`
    again = pipe.run(grid={"day": ["2026-11-03", "2026-11-17"]})
    assert set(states(again).values()) == {"skipped"} and len(again.tasks) == 2 * 6
    single = pipe.run(params={"day": "2026-11-05"})
    assert set(states(single).values()) == {"skipped"}


def test_a_run_grid_over_a_comma_list_with_a_step_and_in_the_dry_run(project):
    regional_pipeline(project)
    raw(project, "2026-11-01", "2026-11-08", "2026-11-15")
    result = run_cli("run", str(project), "-g", "day", "2026-11-01..2026-11-15/7d", "-t", "clean", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "clean[day=2026-11-01]",
        "clean[day=2026-11-08]",
        "clean[day=2026-11-15]",
    ]
    result = run_cli("run", str(project), "-g", "region", "north,east", "-t", "report")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["2026-11-01_east.txt", "2026-11-01_north.txt"]


@pytest.mark.parametrize(
    "parameters, message",
    [
        (
            'x = 1\ngrid = {"y": [1, 2]}\noutputs = ["o_{x}.txt"]',
            "line 2: `grid` names 'y', which the cell does not assign (its parameters: `x`)",
        ),
        (
            'x = 1\ngrid = {"x": [1, 2]}\noutputs = ["o.txt"]',
            "line 2: `grid`: the output 'o.txt' does not use {x}, so every instance would write the same file",
        ),
        (
            'x = 1\ngrid = {"x": list(range(3))}\noutputs = ["o_{x}.txt"]',
            "line 2: `grid` must be a Python literal",
        ),
        (
            'x = 1\ngrid = {"x": []}\noutputs = ["o_{x}.txt"]',
            "line 2: `grid`: the values of 'x' must be a non-empty list",
        ),
        ('x = 1\ngrid = {"x": [1, 1]}\noutputs = ["o_{x}.txt"]', "line 2: `grid`: 'x' lists 1 more than once"),
    ],
)
def test_a_bad_grid_is_reported_before_anything_runs_naming_the_notebook_and_line(project, parameters, message):
    write_notebook(project / "t.ipynb", parameters, "pass")
    with pytest.raises(PipelineError) as caught:
        nbflow.load(project)
    assert f"t.ipynb: parameters cell, {message}" in str(caught.value)
    assert not (project / ".nbflow" / "runs").exists()


def test_a_grid_on_a_notebook_that_is_no_task_is_left_alone(project):
    write_notebook(project / "model.ipynb", "grid = {'C': [0.1, 1.0]}", "pass")  # a scikit-learn search grid
    write_notebook(project / "t.ipynb", 'outputs = ["t.txt"]', "open(outputs[0], 'w').write('t')")
    assert list(nbflow.load(project).tasks) == ["t"]


def test_run_grid_mistakes_are_exit_2_with_the_reason(project):
    regional_pipeline(project)
    write_notebook(
        project / "latest.ipynb",
        'day = "2026-11-01"\ninputs = ["clean/{day}.csv"]\noutputs = ["latest.csv"]',
        "pass",
    )
    result = run_cli("run", str(project), "-g", "dya", "2026-11-01..2026-11-02")
    assert result.returncode == 2
    assert "-g dya: no selected task uses `dya`" in result.stderr and "did you mean 'day'" in result.stderr
    result = run_cli("run", str(project), "-g", "day", "2026-11-01..2026-11-02")
    assert result.returncode == 2
    assert "latest.ipynb uses `day`, but its output 'latest.csv' does not use {day}" in result.stderr
    result = run_cli("run", str(project), "-g", "day", "2026-11-05..2026-11-01", "-t", "summary")
    assert result.returncode == 2 and "ends before it starts" in result.stderr
    result = run_cli("run", str(project), "-g", "day", "2026-11-01", "-p", "day", "2026-11-02", "-t", "summary")
    assert result.returncode == 2 and "give a name either one value (-p) or several (-g)" in result.stderr
    with pytest.raises(UsageError, match="no selected task uses `nope`"):
        nbflow.load(project).run(targets=["summary"], grid={"nope": [1]})


def test_a_placeholder_mistake_in_a_grid_task_is_reported_once_not_per_instance(project):
    write_notebook(project / "t.ipynb", 'x = 1\ngrid = {"x": [1, 2, 3]}\noutputs = ["o_{x}_{nope}.txt"]', "pass")
    with pytest.raises(PipelineError) as caught:
        nbflow.load(project)
    assert [p.kind for p in caught.value.problems] == ["placeholder"]
    assert "uses {nope}, which is no parameter of this task" in str(caught.value)
