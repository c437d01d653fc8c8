"""`nbflow run -t TASK --no-upstream`: the targets alone, their upstream taken as done, as an outside orchestrator
(Airflow, through `nbflow export airflow`) runs one task at a time."""

from __future__ import annotations

from conftest import run_cli
from test_run import task

import nbflow


def chain(project):
    """a -> b -> c through files, and d beside them."""
    task(project / "a.ipynb", 'outputs = ["a.txt"]', "'a'")
    task(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]', "open(inputs[0]).read() + 'b'")
    task(project / "c.ipynb", 'inputs = ["b.txt"]\noutputs = ["c.txt"]', "open(inputs[0]).read() + 'c'")
    task(project / "d.ipynb", 'outputs = ["d.txt"]')
    return project


def states(run) -> dict[str, str]:
    return {name: result.state for name, result in run.tasks.items()}


def test_each_task_runs_alone_in_order_and_then_is_up_to_date(project):
    chain(project)
    pipeline = nbflow.load(project)
    for name in ("a", "b", "c"):
        assert states(pipeline.run(targets=[name], upstream=False)) == {name: "succeeded"}
    assert (project / "c.txt").read_text() == "abc" and not (project / "d.txt").exists()
    # the history sees them as any run's successes: the same task again is up to date
    assert states(pipeline.run(targets=["b"], upstream=False)) == {"b": "skipped"}
    # and an upstream change is noticed through the input it rewrote, not by running the upstream
    (project / "a.txt").write_text("A")
    run = pipeline.run(targets=["c", "b"], upstream=False)
    assert states(run) == {"b": "succeeded", "c": "succeeded"}
    assert run.tasks["b"].reasons == ["input changed: a.txt"]
    assert (project / "c.txt").read_text() == "Abc"


def test_a_missing_input_names_the_writer_left_out(project):
    chain(project)
    result = run_cli("run", str(project), "-t", "b", "--no-upstream")
    assert result.returncode == 2
    assert "b.ipynb: input a.txt does not exist; a writes it but this run leaves it out (--no-upstream)" in (
        result.stderr
    )
    assert not (project / ".nbflow" / "runs").exists()
    # without the flag the upstream comes along, as always
    result = run_cli("run", str(project), "-t", "b")
    assert result.returncode == 0, result.stderr
    assert (project / "b.txt").read_text() == "ab"


def test_cli_runs_a_grid_instance_alone_and_the_dry_run_agrees(project):
    task(project / "raw.ipynb", 'outputs = ["raw.txt"]', "'r'")
    task(
        project / "part.ipynb",
        'inputs = ["raw.txt"]\noutputs = ["part_{n}.txt"]\nn = 1\ngrid = {"n": [1, 2]}',
        "open(inputs[0]).read() + str(n)",
    )
    assert run_cli("run", str(project), "-t", "raw").returncode == 0
    result = run_cli("run", str(project), "-t", "part[n=2]", "--no-upstream", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [["part[n=2]", "run"]]
    result = run_cli("run", str(project), "-t", "part[n=2]", "--no-upstream")
    assert result.returncode == 0, result.stderr
    assert "1 succeeded" in result.stdout
    assert (project / "part_2.txt").read_text() == "r2" and not (project / "part_1.txt").exists()
