"""Glob inputs (fan-in, a folder's files) and folder outputs (files decided at run time) link tasks exactly."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, write_notebook

import nbflow

WRITE_STATUS = "open(outputs[0], 'w').write(name)"


def status_task(project: Path, name: str) -> None:
    write_notebook(
        project / "steps" / f"{name}.ipynb", f'outputs = ["../data/statuses/{name}.csv"]\nname = "{name}"', WRITE_STATUS
    )


def summary_task(project: Path) -> None:
    write_notebook(
        project / "summary.ipynb",
        'inputs = {"statuses": "data/statuses/*.csv"}\noutputs = ["summary.txt"]',
        "open(outputs[0], 'w').write(repr(inputs['statuses']) + '|' + ','.join(open(p).read() for p in "
        "inputs['statuses']))",
    )


def states(run: nbflow.Run) -> dict[str, str]:
    return {name: task.state.value for name, task in run.tasks.items()}


def test_a_glob_input_depends_on_every_task_whose_outputs_match_and_gets_the_sorted_list(project):
    for name in ("north", "east"):
        status_task(project, name)
    summary_task(project)
    pipe = nbflow.load(project)
    assert set(pipe.graph.predecessors("summary")) == {"north", "east"}
    assert pipe.graph.edges["north", "summary"]["via"] == [str(project / "data/statuses/*.csv")]
    run = pipe.run(workers=2)
    assert run.state == "succeeded", [t.error for t in run.tasks.values()]
    assert (project / "summary.txt").read_text() == ("['data/statuses/east.csv', 'data/statuses/north.csv']|east,north")


def test_adding_or_removing_a_matching_file_reruns_the_task_and_nothing_else_does(project):
    status_task(project, "north")
    summary_task(project)
    assert nbflow.load(project).run().state == "succeeded"
    assert states(nbflow.load(project).run()) == {"north": "skipped", "summary": "skipped"}
    (project / "data/statuses/manual.csv").write_text("manual")
    run = nbflow.load(project).run()
    assert states(run) == {"north": "skipped", "summary": "succeeded"}
    assert "input changed: data/statuses/*.csv" in run.tasks["summary"].reasons
    assert (project / "summary.txt").read_text().endswith("|manual,north")
    (project / "data/statuses/manual.csv").unlink()
    assert states(nbflow.load(project).run()) == {"north": "skipped", "summary": "succeeded"}


def test_a_folder_output_holds_files_decided_at_run_time_and_its_task_may_read_under_it(project):
    write_notebook(
        project / "split.ipynb",
        'inputs = ["orders.csv"]\noutputs = {"by_type": "out/by_type/"}',
        "import os\nfor kind in open(inputs[0]).read().split(','):\n"
        "    open(os.path.join(outputs['by_type'], kind + '.csv'), 'w').write(kind)\n"
        "assert sorted(os.listdir(outputs['by_type']))",  # it reads what it wrote under its own folder
    )
    write_notebook(
        project / "count.ipynb",
        'inputs = {"parts": "out/by_type/*.csv"}\noutputs = ["count.txt"]',
        "open(outputs[0], 'w').write(str(len(inputs['parts'])))",
    )
    (project / "orders.csv").write_text("books,games")
    pipe = nbflow.load(project)
    assert list(pipe.graph.edges) == [("split", "count")]  # and no self-cycle for split
    run = pipe.run()
    assert run.state == "succeeded", [t.error for t in run.tasks.values()]
    assert (project / "count.txt").read_text() == "2"
    (project / "orders.csv").write_text("books,games,toys")
    run = nbflow.load(project).run()
    assert states(run) == {"split": "succeeded", "count": "succeeded"}
    assert (project / "count.txt").read_text() == "3"


def test_a_folder_output_belongs_to_one_task(project):
    write_notebook(project / "split.ipynb", 'outputs = ["out/by_type/"]')
    write_notebook(project / "extra.ipynb", 'outputs = ["out/by_type/extra.csv"]')
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert (
        "out/by_type/extra.csv (extra.ipynb) lies inside the folder out/by_type/, which split (split.ipynb) "
        "declares as its output"
    ) in result.stderr


def test_globs_are_inputs_only_and_a_glob_matching_nothing_is_a_missing_source(project):
    write_notebook(project / "bad.ipynb", 'outputs = ["out/*.csv"]')
    result = run_cli("graph", str(project))
    assert result.returncode == 2 and "the output out/*.csv is a glob" in result.stderr
    write_notebook(project / "bad.ipynb", 'inputs = ["raw/*.csv"]\noutputs = ["x.txt"]', "open('x.txt', 'w')")
    result = run_cli("run", str(project))
    assert result.returncode == 2
    assert "bad.ipynb: input raw/*.csv matches no file and no task writes it" in result.stderr


def test_an_output_left_by_an_earlier_run_is_not_taken_for_this_runs(project):
    write_notebook(
        project / "daily.ipynb",
        'outputs = ["out.txt", "parts/"]\nwrite = True',
        "import os\nif write:\n    open(outputs[0], 'w').write('fresh')\n"
        "    open(os.path.join(outputs[1], 'p.csv'), 'w').write('fresh')",
    )
    assert nbflow.load(project).run().state == "succeeded"
    run = nbflow.load(project).run(params={"write": False})  # the code ran but wrote nothing this time
    assert run.tasks["daily"].state == "failed"
    assert run.tasks["daily"].error.evalue == "declared output not written by this run: out.txt, parts/"
