"""What file hashes cannot see: `always_run` tasks, and a `check` whose output joins the fingerprint."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from conftest import run_cli, write_notebook

import nbflow

LOAD = (
    "import sqlite3\ncon = sqlite3.connect('shop.db')\n"
    "rows = con.execute('select count(*) from sales').fetchone()[0]\nopen(outputs[0], 'w').write(str(rows))"
)


def shop(project: Path, rows: int) -> None:
    with sqlite3.connect(project / "shop.db") as db:
        db.execute("create table if not exists sales (id integer primary key)")
        db.executemany("insert into sales default values", [()] * rows)


def loader(project: Path, check: str) -> None:
    write_notebook(project / "load.ipynb", 'outputs = ["loaded.txt"]', LOAD, metadata={"nbflow": {"check": check}})


def states(run: nbflow.Run) -> dict[str, str]:
    return {name: task.state.value for name, task in run.tasks.items()}


def test_a_check_command_reruns_the_task_when_what_it_prints_changes(project):
    shop(project, 2)
    loader(
        project,
        f"{sys.executable} -c \"import sqlite3; print(sqlite3.connect('shop.db').execute("
        f"'select max(id) from sales').fetchone()[0])\"",
    )
    assert states(nbflow.load(project).run()) == {"load": "succeeded"}
    assert states(nbflow.load(project).run()) == {"load": "skipped"}  # the source did not grow
    shop(project, 3)
    run = nbflow.load(project).run()
    assert states(run) == {"load": "succeeded"} and run.tasks["load"].reasons == ["check changed: 5"]
    assert (project / "loaded.txt").read_text() == "5"
    status = run_cli("status", str(project))
    assert "up_to_date" in status.stdout


def test_a_python_check_and_a_failing_check(project):
    (project / "checks.py").write_text(
        "import sqlite3\ndef max_id():\n    return sqlite3.connect('shop.db').execute('select max(id) from sales')"
        ".fetchone()[0]\n"
    )
    shop(project, 1)
    loader(project, "python:checks:max_id")
    nbflow.load(project).run()
    assert states(nbflow.load(project).run()) == {"load": "skipped"}
    shop(project, 1)
    assert nbflow.load(project).run().tasks["load"].reasons == ["check changed: 2"]
    (project / "checks.py").write_text("def max_id():\n    raise RuntimeError('the shop is closed')\n")
    run = nbflow.load(project).run()
    assert states(run) == {"load": "succeeded"}  # a check that cannot tell does not skip the task
    assert run.tasks["load"].reasons == ["check failed: the check exited with code 1: RuntimeError: the shop is closed"]


def test_an_always_run_task_runs_every_time_and_its_unchanged_output_skips_its_dependants(project):
    write_notebook(
        project / "poll.ipynb",
        'outputs = ["latest.txt"]',
        "open(outputs[0], 'w').write('same answer')",
        metadata={"nbflow": {"always_run": True}},
    )
    write_notebook(project / "use.ipynb", 'inputs = ["latest.txt"]\noutputs = ["used.txt"]', "open(outputs[0], 'w')")
    nbflow.load(project).run()
    run = nbflow.load(project).run()
    assert states(run) == {"poll": "succeeded", "use": "skipped"}
    assert run.tasks["poll"].reasons == ["always_run is set"]


def test_bad_options_are_reported_with_the_notebook(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', metadata={"nbflow": {"always_run": "yes", "chek": 1}})
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert "a.ipynb: metadata.nbflow.always_run must be true or false, not 'yes'." in result.stderr
    assert "a.ipynb: metadata.nbflow: unknown key `chek` (known: timeout, retries, kernel, always_run, check)" in (
        result.stderr
    )
