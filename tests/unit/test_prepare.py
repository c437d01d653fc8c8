"""A run before it starts: parameters split and checked, sources checked, and what each notebook gets injected."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notebook

import nbflow
from nbflow.errors import PipelineError, UsageError
from nbflow.preflight import check as check_sources
from nbflow.run.prepare import injected_parameters, prepare, split_params

from .fakes import FakeExecutor
from .helpers import task


@pytest.mark.parametrize(
    ("params", "pipeline", "per_task"),
    [
        (None, {}, {}),
        ({"x": 1, "clean.y": 2}, {"x": 1}, {"clean": {"y": 2}}),
        ({"clean.y": 2, "clean.z": "t"}, {}, {"clean": {"y": 2, "z": "t"}}),
        ({"sub/clean.y": 2}, {}, {"sub/clean": {"y": 2}}),  # a task named by its folder
        ({"a.b.c": 3}, {}, {"a.b": {"c": 3}}),  # the name is what follows the last dot
    ],
)
def test_split_params_into_pipeline_and_per_task_values(params, pipeline, per_task):
    assert split_params(params) == (pipeline, per_task)


@pytest.fixture
def two_tasks(project: Path) -> nbflow.api.Pipeline:
    """clean (assigns scale, day) -> report (assigns title)."""
    (project / "raw.csv").write_text("1\n")
    task(project, "clean.ipynb", inputs=["raw.csv"], outputs=["clean.csv"], params='scale = 1\nday = "x"')
    task(project, "report.ipynb", inputs=["clean.csv"], outputs=["report.txt"], params='title = "t"')
    return nbflow.load(project)


def usage_error(pipeline, targets=None, params=None) -> str:
    with pytest.raises(UsageError) as caught:
        prepare(pipeline, targets, params)
    return str(caught.value)


def test_a_per_task_value_for_an_unknown_task_names_it_with_a_suggestion(two_tasks):
    assert usage_error(two_tasks, params={"claen.scale": 2}) == (
        "parameter `claen.scale`: `claen` is no task (did you mean 'clean'?)."
    )


def test_a_per_task_value_the_notebook_does_not_assign_names_the_notebook_with_a_suggestion(two_tasks):
    assert usage_error(two_tasks, params={"clean.sclae": 2}) == (
        "parameter `clean.sclae`: clean.ipynb does not assign `sclae` in its parameters cell (did you mean 'scale'?)."
    )


def test_every_bad_per_task_value_is_reported_at_once(two_tasks):
    message = usage_error(two_tasks, params={"nope.x": 1, "report.titel": "x", "clean.scale": 2})
    assert message.startswith("2 problems:")
    assert "parameter `nope.x`: `nope` is no task." in message
    assert (
        "parameter `report.titel`: report.ipynb does not assign `titel` in its parameters cell (did you mean 'title'?)"
        in (message)
    )


def test_a_pipeline_value_no_selected_task_assigns_is_refused_with_a_suggestion(two_tasks):
    assert usage_error(two_tasks, params={"scael": 2}) == (
        "parameter `scael`: no selected task assigns `scael` in its parameters cell (did you mean 'scale'?); check "
        "the name."
    )
    # `title` is report's: with only clean selected, no selected task assigns it
    assert usage_error(two_tasks, targets=["clean"], params={"title": "x"}).startswith(
        "parameter `title`: no selected task assigns `title` in its parameters cell"
    )


def test_a_bad_parameter_stops_the_run_before_anything_starts(two_tasks):
    fake = FakeExecutor()
    with pytest.raises(UsageError):
        two_tasks.run(executor=fake, params={"clean.sclae": 2})
    assert fake.submitted == [] and not (two_tasks.project.store_dir / "nbflow.db").exists()


def test_prepare_resolves_the_values_and_selects_the_targets_with_their_upstream(two_tasks):
    (two_tasks.project.root / "nbflow.toml").write_text('[params]\nday = "2026-01-01"\n')
    pipeline = nbflow.load(two_tasks.project.root)
    prepared = prepare(pipeline, ["report"], {"scale": 2, "report.title": "Q4"})
    assert prepared.selected == ["clean", "report"]
    assert prepared.task_params == {"report": {"title": "Q4"}}
    assert prepared.pipeline.tasks["clean"].params == {"scale": 2, "day": "2026-01-01"}
    assert prepared.pipeline.tasks["report"].params == {"title": "Q4"}
    assert prepared.recorded_params == {"day": "2026-01-01", "scale": 2, "report.title": "Q4"}
    assert prepare(pipeline, ["clean"], None).selected == ["clean"]


# -- sources --------------------------------------------------------------------------------------------------


def test_a_missing_source_is_named_with_the_notebook_that_reads_it(project):
    task(project, "sub/a.ipynb", inputs=["../data/raw.csv", "here.csv"], outputs=["../a.txt"])
    (project / "sub" / "here.csv").write_text("1\n")
    pipeline = nbflow.load(project)
    with pytest.raises(PipelineError) as caught:
        check_sources(pipeline, ["a"])
    assert [(p.kind, p.message) for p in caught.value.problems] == [
        (
            "missing-source",
            "sub/a.ipynb: input data/raw.csv does not exist and no task writes it; create it, fix the path, or add "
            "the task that writes it.",
        )
    ]
    fake = FakeExecutor()
    with pytest.raises(PipelineError):  # the run refuses to start
        pipeline.run(executor=fake)
    assert fake.submitted == []


def test_an_input_that_an_upstream_task_writes_need_not_exist_yet(project):
    task(project, "a.ipynb", outputs=["a.txt"])
    task(project, "b.ipynb", inputs=["a.txt"], outputs=["b.txt"])
    pipeline = nbflow.load(project)
    check_sources(pipeline, ["a", "b"])  # nothing raised
    assert not (project / "a.txt").exists()


# -- injection ------------------------------------------------------------------------------------------------


def test_paths_are_injected_relative_to_the_notebooks_folder_as_declared(project):
    elsewhere = project / "shared" / "ref.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text("1\n")
    (project / "data").mkdir()
    (project / "data" / "2026.csv").write_text("1\n")
    write_notebook(
        project / "sub" / "a.ipynb",
        f'inputs = {{"raw": "../data/./{{day}}.csv", "ref": "{elsewhere}"}}\n'
        'outputs = ["../out/table.csv", "plots/"]\n'
        'day = "2025"',
        "x = 1",
    )
    prepared = prepare(nbflow.load(project), None, {"day": "2026"})
    injected = injected_parameters(prepared.pipeline, prepared.pipeline.tasks["a"], {})
    assert injected == {
        "day": "2026",
        # relative ones open from sub/, normalised and filled; an absolute one stays absolute
        "inputs": {"raw": "../data/2026.csv", "ref": str(elsewhere)},
        # a folder keeps its trailing "/"
        "outputs": ["../out/table.csv", "plots/"],
    }


def test_only_values_set_from_outside_are_injected(project):
    (project / "nbflow.toml").write_text('[params]\nregion = "eu"\n')
    task(project, "a.ipynb", outputs=["a.txt"], params='region = "x"\nscale = 1\nn = 3\nlabel = "keep"')
    task(project, "b.ipynb", outputs=["b.txt"], params="n = 3")
    prepared = prepare(nbflow.load(project), None, {"scale": 2, "a.n": 5})
    pipeline = prepared.pipeline

    def injected(name: str) -> dict:
        return injected_parameters(pipeline, pipeline.tasks[name], prepared.task_params.get(name, {}))

    # the project's and the run's values, and a's own; never a value the notebook itself sets (label)
    assert injected("a") == {"region": "eu", "scale": 2, "n": 5, "inputs": [], "outputs": ["a.txt"]}
    assert injected("b") == {"inputs": [], "outputs": ["b.txt"]}


def test_an_explicitly_empty_declaration_is_injected_and_an_absent_one_is_not(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "x = 1")
    write_notebook(project / "b.ipynb", 'inputs = []\noutputs = ["b.txt"]', "x = 1")
    pipeline = nbflow.load(project)
    assert injected_parameters(pipeline, pipeline.tasks["a"], {}) == {"outputs": ["a.txt"]}
    assert injected_parameters(pipeline, pipeline.tasks["b"], {}) == {"inputs": [], "outputs": ["b.txt"]}


def test_the_run_hands_each_job_its_injected_values_and_the_notebooks_folder(project):
    task(project, "sub/a.ipynb", outputs=["../a.txt"], params="scale = 1")
    fake = FakeExecutor()
    nbflow.load(project).run(executor=fake, params={"a.scale": 4})
    (job,) = fake.submitted
    assert job.parameters == {"scale": 4, "inputs": [], "outputs": ["../a.txt"]}
    assert job.cwd == str(project / "sub") and job.notebook == str(project / "sub" / "a.ipynb")
    assert (project / "a.txt").read_text() == "a\n"  # written where the notebook, run in sub/, opens it


def test_an_explicitly_empty_declaration_after_a_markdown_cell_is_injected(project):
    write_notebook(project / "a.ipynb", 'inputs = []\noutputs = ["a.txt"]', markdown="# A task")
    pipeline = nbflow.load(project)
    task = pipeline.tasks["a"]
    assert injected_parameters(pipeline, task, {})["inputs"] == []
