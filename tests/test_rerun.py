"""Running a task and what lies after it (`--downstream`, "run from here"), and a run's failures again
(`--rerun-failed RUN`, "rerun failed"): from the command line and the REST API's `POST runs`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, write_notebook


def chain(root: Path) -> None:
    """a -> b -> c, and d on its own; b fails while `flaky` exists and writes the `n` it was given."""
    (root / "nbflow.toml").write_text("")
    write_notebook(root / "a.ipynb", 'outputs = ["a.txt"]', "open('a.txt', 'w').write('a')")
    write_notebook(
        root / "b.ipynb",
        'inputs = ["a.txt"]\noutputs = ["b.txt"]\nn = 1',
        "import os\nif os.path.exists('flaky'):\n    raise RuntimeError('the source is down')",
        "open('b.txt', 'w').write(str(n))",
    )
    write_notebook(root / "c.ipynb", 'inputs = ["b.txt"]\noutputs = ["c.txt"]', "open('c.txt', 'w').write('c')")
    write_notebook(root / "d.ipynb", 'outputs = ["d.txt"]', "open('d.txt', 'w').write('d')")


def latest(root: Path) -> dict:
    return json.loads(run_cli("show", "latest", str(root), "--json").stdout)


def test_rerun_failed_runs_the_failures_and_their_downstream_again_with_the_runs_parameters(project):
    chain(project)
    (project / "flaky").write_text("")
    failed = run_cli("run", str(project), "-p", "n", "5")
    assert failed.returncode == 1
    first = latest(project)
    assert {t["name"]: t["state"] for t in first["tasks"]}["c"] == "upstream_failed"

    (project / "flaky").unlink()
    again = run_cli("run", str(project), "--rerun-failed", first["id"][:10])
    assert again.returncode == 0, again.stderr
    rerun = latest(project)
    assert {t["name"]: t["state"] for t in rerun["tasks"]} == {"b": "succeeded", "c": "succeeded"}
    assert (project / "b.txt").read_text() == "5"  # the failed run's parameters
    assert rerun["params"] == {"n": 5}


def test_rerun_failed_says_why_it_cannot(project):
    chain(project)
    assert run_cli("run", str(project)).returncode == 0
    nothing = run_cli("run", str(project), "--rerun-failed", "latest")
    assert nothing.returncode == 2 and "has no failed or cancelled task to rerun" in nothing.stderr
    mixed = run_cli("run", str(project), "--rerun-failed", "latest", "-t", "b")
    assert mixed.returncode == 2 and "leave out -t" in mixed.stderr
    unknown = run_cli("run", str(project), "--rerun-failed", "nosuchrun")
    assert unknown.returncode == 2 and "no run 'nosuchrun'" in unknown.stderr


def test_run_from_here_runs_a_task_and_everything_after_it_only(project):
    chain(project)
    assert run_cli("run", str(project)).returncode == 0
    planned = run_cli("run", str(project), "-t", "b", "--downstream", "--dry-run")
    assert [line.split()[0] for line in planned.stdout.splitlines()] == ["a", "b", "c"]  # upstream too, by default
    here = run_cli("run", str(project), "-t", "b", "--downstream", "--force", "--no-upstream")
    assert here.returncode == 0, here.stderr
    assert {t["name"]: t["state"] for t in latest(project)["tasks"]} == {"b": "succeeded", "c": "succeeded"}
