"""Before anything runs, `graph`, `status` and `run` report every unknown kernel and missing source at once."""

from __future__ import annotations

import json

from conftest import run_cli, write_notebook


def test_unknown_kernels_and_missing_sources_are_reported_together_before_any_task_runs(project):
    write_notebook(project / "first.ipynb", 'outputs = ["first.txt"]', "open(outputs[0], 'w').write('ran')")
    write_notebook(
        project / "typo.ipynb",
        'inputs = ["first.txt"]\noutputs = ["t.txt"]',
        metadata={"nbflow": {"kernel": "pyhton3"}},
    )
    write_notebook(project / "reader.ipynb", 'inputs = ["sales.csv"]\noutputs = ["r.txt"]')
    (project / "sale.csv").write_text("id\n1\n")
    for command in ("graph", "status", "run"):
        result = run_cli(command, str(project))
        assert result.returncode == 2, command
        assert "the pipeline has 2 problems" in result.stderr, command
        assert (
            "typo.ipynb: no kernel named 'pyhton3' is installed (did you mean 'python3'?) (installed: " in result.stderr
        ), command
        assert "reader.ipynb: input sales.csv does not exist (did you mean 'sale.csv'?) and no task writes it" in (
            result.stderr
        ), command
    assert not (project / "first.txt").exists()  # nothing ran
    assert json.loads(run_cli("runs", str(project), "--json").stdout) == []


def test_a_run_of_other_targets_is_not_stopped_by_a_task_it_does_not_select(project):
    write_notebook(project / "ok.ipynb", 'outputs = ["ok.txt"]', "open(outputs[0], 'w').write('ran')")
    write_notebook(project / "elsewhere.ipynb", 'outputs = ["e.txt"]', metadata={"nbflow": {"kernel": "nope"}})
    assert run_cli("run", str(project), "-t", "ok").returncode == 0
    assert (project / "ok.txt").read_text() == "ran"
