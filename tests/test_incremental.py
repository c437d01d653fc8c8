"""Incremental runs: what makes a task up to date, and what makes it run again."""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import run_cli, write_notebook
from test_run import task

import nbflow


def states(run) -> dict[str, str]:
    return {name: result.state for name, result in run.tasks.items()}


@pytest.fixture
def chain(project):
    (project / "raw.csv").write_text("1,2,3\n")
    task(
        project / "a.ipynb",
        'inputs = ["raw.csv"]\noutputs = ["a.txt"]\nscale = 1',
        "str(scale * len(open(inputs[0]).read()))",
    )
    task(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]', "open(inputs[0]).read() + '!'")
    assert states(nbflow.load(project).run()) == {"a": "succeeded", "b": "succeeded"}
    return project


def edit_code(path, change):
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def test_unchanged_pipeline_is_all_skipped(chain):
    run = nbflow.load(chain).run()
    assert states(run) == {"a": "skipped", "b": "skipped"} and run.state == "succeeded"


def test_code_edit_reruns_and_changed_output_reruns_downstream(chain):
    edit_code(
        chain / "a.ipynb",
        lambda nb: nb.cells[-1].update(
            source=nb.cells[-1].source.replace("TEXT", "") + "\nopen(outputs[0], 'a').write('+')"
        ),
    )
    run = nbflow.load(chain).run()
    assert states(run) == {"a": "succeeded", "b": "succeeded"}
    assert run.tasks["a"].reasons == ["code changed"]
    assert run.tasks["b"].reasons == ["input changed: a.txt"]


def test_comment_whitespace_and_markdown_edits_do_not_count(chain):
    def cosmetic(nb):
        nb.cells[-1].source = "# a comment\n" + nb.cells[-1].source.replace("=", " = ") + "\n\n"
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("# A new title"))

    edit_code(chain / "a.ipynb", cosmetic)
    assert states(nbflow.load(chain).run()) == {"a": "skipped", "b": "skipped"}


def test_parameter_change_reruns_and_same_output_keeps_downstream_skipped(chain):
    run = nbflow.load(chain).run(params={"scale": 2})
    assert states(run) == {"a": "succeeded", "b": "succeeded"}
    assert run.tasks["a"].reasons == ["parameters changed: scale"]
    # Back to the default: a reruns; its output is the same as before b's last run? No: b last saw scale=2's output.
    run = nbflow.load(chain).run(params={"scale": 2}, force=False)
    assert states(run) == {"a": "skipped", "b": "skipped"}


def test_rerun_with_identical_output_leaves_downstream_skipped(chain):
    edit_code(chain / "a.ipynb", lambda nb: nb.cells.append(nbformat.v4.new_code_cell("unused = 1")))
    run = nbflow.load(chain).run()
    assert states(run) == {"a": "succeeded", "b": "skipped"}


def test_input_content_change_reruns(chain):
    (chain / "raw.csv").write_text("1,2,3,4\n")
    run = nbflow.load(chain).run()
    assert run.tasks["a"].reasons == ["input changed: raw.csv"] and states(run)["b"] == "succeeded"


def test_deleted_or_edited_output_reruns(chain):
    (chain / "b.txt").unlink()
    run = nbflow.load(chain).run()
    assert states(run) == {"a": "skipped", "b": "succeeded"} and run.tasks["b"].reasons == ["output missing: b.txt"]
    (chain / "a.txt").write_text("tampered")
    run = nbflow.load(chain).run()
    assert run.tasks["a"].reasons == ["output changed since the last run: a.txt"]
    assert (chain / "a.txt").read_text() != "tampered"


def test_force_reruns_everything_selected(chain):
    run = nbflow.load(chain).run(force=True, targets=["a"])
    assert states(run) == {"a": "succeeded"}


def test_status_says_why_a_task_is_stale(chain):
    (chain / "raw.csv").write_text("changed\n")
    result = run_cli("status", str(chain), "--json")
    tasks = {t["name"]: t for t in json.loads(result.stdout)["tasks"]}
    assert tasks["a"]["status"] == "stale" and tasks["a"]["reasons"] == ["input changed: raw.csv"]
    assert tasks["b"]["status"] == "stale" and tasks["b"]["reasons"] == ["upstream a is stale"]
    assert tasks["a"]["last_state"] == "succeeded" and tasks["a"]["duration_s"] > 0


def test_upstream_by_name_reruns_when_its_upstream_ran(project):
    task(project / "setup.ipynb", 'outputs = ["s.txt"]\nv = 1', "str(v)")
    task(project / "after.ipynb", 'upstream = ["setup"]\noutputs = ["after.txt"]')
    nbflow.load(project).run()
    assert states(nbflow.load(project).run()) == {"setup": "skipped", "after": "skipped"}
    assert states(nbflow.load(project).run(params={"v": 2})) == {"setup": "succeeded", "after": "succeeded"}


def test_going_back_to_earlier_parameter_values_reruns_nothing_still_up_to_date_for_them(project):
    write_notebook(
        project / "report.ipynb",
        'outputs = ["reports/{day}.txt"]\nday = "2026-11-01"',
        "import time\nopen(outputs[0], 'w').write(day + str(time.time()))",
    )
    pipe = nbflow.load(project)
    assert pipe.run(params={"day": "2026-11-01"}).tasks["report"].state == "succeeded"
    assert pipe.run(params={"day": "2026-11-02"}).tasks["report"].state == "succeeded"
    back = pipe.run(params={"day": "2026-11-01"}).tasks["report"]
    assert back.state == "skipped", back.reasons
    (project / "reports/2026-11-02.txt").write_text("edited by hand")
    again = pipe.run(params={"day": "2026-11-02"}).tasks["report"]
    assert again.state == "succeeded" and again.reasons == ["output changed since the last run: reports/2026-11-02.txt"]
    # a value never run before is judged against the latest success, so the reason names what changed
    assert pipe.run(params={"day": "2026-11-03"}).tasks["report"].reasons == [
        "parameters changed: day",
        "output missing: reports/2026-11-03.txt",
    ]
