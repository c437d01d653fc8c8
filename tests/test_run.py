"""`nbflow run` with real kernels: order, parallelism, parameters, injection, and the run record."""

from __future__ import annotations

import json
import os
from datetime import datetime

import nbformat
import pytest
from conftest import run_cli, write_notebook

import nbflow

WRITE = "import os\nos.makedirs(os.path.dirname(outputs[0]) or '.', exist_ok=True)\nopen(outputs[0], 'w').write(TEXT)"


def task(path, parameters: str, text: str = "'x'", *extra: str):
    """A task that writes `text` (a Python expression) to its first output."""
    return write_notebook(path, parameters, *extra, WRITE.replace("TEXT", text))


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_chain_runs_in_order_in_each_notebooks_folder_and_keeps_sources(project):
    a = task(project / "one" / "a.ipynb", 'outputs = ["../data/a.txt"]', "os.getcwd()")
    b = task(project / "two" / "b.ipynb", 'inputs = ["../data/a.txt"]\noutputs = ["b.txt"]', "open(inputs[0]).read()")
    before = a.read_bytes(), b.read_bytes()
    run = nbflow.load(project).run()
    assert run.state == "succeeded" and run.exit_code == 0
    assert (project / "data" / "a.txt").read_text() == str(project / "one")
    assert (project / "two" / "b.txt").read_text() == str(project / "one")
    assert when(run.tasks["b"].started_at) >= when(run.tasks["a"].finished_at)
    assert (a.read_bytes(), b.read_bytes()) == before
    executed = run.tasks["b"].output_notebook
    assert executed == project / ".nbflow" / "runs" / run.id / "b.ipynb" and executed.exists()


def test_independent_tasks_run_at_the_same_time_up_to_j(project):
    for name in "pq":
        task(project / f"{name}.ipynb", f'outputs = ["{name}.txt"]', "'x'", "import time; time.sleep(1.5)")
    both = nbflow.load(project).run(workers=2, force=True).tasks
    assert when(both["p"].started_at) < when(both["q"].finished_at) and when(both["q"].started_at) < when(
        both["p"].finished_at
    )
    one = nbflow.load(project).run(workers=1, force=True).tasks
    first, second = sorted(one.values(), key=lambda t: t.started_at)
    assert when(second.started_at) >= when(first.finished_at)


def test_parameters_at_three_levels_and_injected_paths_stay_relative(project):
    (project / "nbflow.toml").write_text('[params]\nday = "2026-01-01"\nregion = "eu"\n')
    task(project / "a.ipynb", 'outputs = ["out/{day}/a.txt"]\nday = "x"\nregion = "x"\nn = 1', "f'{day} {region} {n}'")
    task(project / "b.ipynb", 'outputs = ["out/{day}/b.txt"]\nday = "x"\nregion = "x"\nn = 1', "f'{day} {region} {n}'")
    run = nbflow.load(project).run(params={"day": "2026-11-24", "a.n": 5})
    assert (project / "out" / "2026-11-24" / "a.txt").read_text() == "2026-11-24 eu 5"
    assert (project / "out" / "2026-11-24" / "b.txt").read_text() == "2026-11-24 eu 1"
    assert run.params == {"day": "2026-11-24", "region": "eu", "a.n": 5}
    injected = nbformat.read(run.tasks["a"].output_notebook, as_version=4).cells[1]
    assert "injected-parameters" in injected.metadata.tags
    assert 'outputs = ["out/2026-11-24/a.txt"]' in injected.source and str(project) not in injected.source


def test_cli_parameter_values_and_typos(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]\nn = 1\nflag = False\nlabel = "x"', "repr((n, flag, label))")
    ok = run_cli("run", str(project), "-p", "n", "7", "-p", "flag", "True", "-p", "label", "None")
    assert ok.returncode == 0, ok.stderr
    assert (project / "a.txt").read_text() == "(7, True, None)"
    typo = run_cli("run", str(project), "-p", "nn", "2")
    assert (
        typo.returncode == 2 and "parameter `nn`: no selected task assigns `nn`" in typo.stderr and "'n'" in typo.stderr
    )
    bad_task = run_cli("run", str(project), "-p", "aa.n", "2")
    assert bad_task.returncode == 2 and "`aa` is no task (did you mean 'a'?)" in bad_task.stderr
    bad_name = run_cli("run", str(project), "-p", "a.m", "2")
    assert bad_name.returncode == 2 and "does not assign `m`" in bad_name.stderr


def test_parse_value_agrees_with_papermill():
    from papermill.cli import _resolve_type

    from nbflow.params import parse_value

    for text in ["1", "-3", "1.5", "1e3", "True", "False", "None", "true", "text", "", "0x10", "nan", " 4"]:
        assert parse_value(text) == _resolve_type(text) or (text == "nan"), text


def test_targets_run_their_upstream_only(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    task(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]')
    task(project / "c.ipynb", 'outputs = ["c.txt"]')
    run = nbflow.load(project).run(targets=["b"])
    assert list(run.tasks) == ["a", "b"] and not (project / "c.txt").exists()


def test_missing_source_is_exit_2_before_anything_runs(project):
    task(project / "a.ipynb", 'inputs = ["raw/orders.csv"]\noutputs = ["a.txt"]')
    result = run_cli("run", str(project))
    assert result.returncode == 2
    assert "a.ipynb: input raw/orders.csv does not exist and no task writes it" in result.stderr
    assert not (project / ".nbflow" / "runs").exists()


def test_history_commands_json_shapes(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    write_notebook(project / "bad.ipynb", 'outputs = ["bad.txt"]', "x = 1", "1 / 0")
    first = run_cli("run", str(project))
    assert first.returncode == 1
    runs = json.loads(run_cli("runs", str(project), "--json").stdout)
    assert len(runs) == 1 and set(runs[0]) == {
        "id",
        "trigger",
        "state",
        "started_at",
        "finished_at",
        "duration_s",
        "grid",
        "counts",
        "params",
    }
    assert runs[0]["trigger"] == "cli" and runs[0]["state"] == "failed"
    assert runs[0]["counts"] == {"succeeded": 1, "failed": 1}
    assert when(runs[0]["started_at"]).utcoffset() is not None
    detail = json.loads(run_cli("show", runs[0]["id"][:12], str(project), "--json").stdout)
    assert set(detail) == {
        "id",
        "trigger",
        "state",
        "started_at",
        "finished_at",
        "duration_s",
        "grid",
        "params",
        "tasks",
    }
    bad = next(t for t in detail["tasks"] if t["name"] == "bad")
    assert set(bad) == {
        "name",
        "task",
        "grid",
        "state",
        "started_at",
        "finished_at",
        "duration_s",
        "attempts",
        "error",
        "output_notebook",
        "progress",
    }
    assert bad["error"]["ename"] == "ZeroDivisionError" and bad["error"]["cell_index"] == 3  # in the executed file
    assert (bad["error"]["source_cell"], bad["error"]["source_line"]) == (2, "1 / 0")  # in the user's notebook
    assert (bad["progress"]["cell"], bad["progress"]["line"]) == (4, "1 / 0")  # as far as it got: the failing cell
    assert any("1 / 0" in line for line in bad["error"]["traceback"])
    assert bad["output_notebook"] == f".nbflow/runs/{detail['id']}/bad.ipynb"
    status = json.loads(run_cli("status", str(project), "--json").stdout)["tasks"]
    assert {t["name"]: t["status"] for t in status} == {"a": "up_to_date", "bad": "failed"}
    assert set(status[0]) == {
        "name",
        "task",
        "grid",
        "status",
        "reasons",
        "last_run",
        "last_instance",
        "last_state",
        "duration_s",
    }
    text = run_cli("show", "latest", str(project))
    assert "ZeroDivisionError in cell 2 (`1 / 0`): division by zero" in text.stdout


def test_plain_progress_lines_when_not_a_terminal(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    result = run_cli("run", str(project))
    assert result.returncode == 0
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.endswith("a  running") for line in lines)
    assert any(" a  succeeded " in line for line in lines)
    assert lines[-1].startswith("run ") and "succeeded: 1 succeeded" in lines[-1]
    assert "WARNING" not in result.stderr and "Kernel is running" not in result.stderr


def test_dry_run_says_what_would_run(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    task(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]')
    task(project / "c.ipynb", 'inputs = ["a.txt"]\noutputs = ["c.txt"]\nn = 1')
    nbflow.load(project).run()
    (project / "a.txt").write_text("edited")
    result = run_cli("run", str(project), "--dry-run", "-p", "c.n", "2")
    assert result.returncode == 0
    # b read what a is about to write again, so only the run can tell; c must run whatever a writes
    assert result.stdout.splitlines() == [
        "a                        run                      output changed since the last run: a.txt",
        "b                        run if upstream changes  upstream a will run",
        "c                        run                      parameters changed: n",
    ]
    assert len(json.loads(run_cli("runs", str(project), "--json").stdout)) == 1
    # and the run does what the dry run said: a rewrites what b read before, so b is up to date
    run = nbflow.load(project).run(params={"c.n": 2})
    assert {name: t.state for name, t in run.tasks.items()} == {"a": "succeeded", "b": "skipped", "c": "succeeded"}


@pytest.mark.parametrize("prewarm", [True, False])
def test_kernels_are_fresh_and_import_modules_beside_the_notebook(project, prewarm):
    """Forked (prewarmed) kernels behave as `python -m ipykernel_launcher` started in the notebook's folder."""
    (project / "steps").mkdir()
    (project / "steps" / "helpers.py").write_text("ANSWER = 42\n")
    for name in "pq":
        task(
            project / "steps" / f"{name}.ipynb",
            f'outputs = ["{name}.txt"]',
            "repr((helpers.ANSWER, random.random(), os.getpid(), sys.executable, os.getcwd()))",
            "import os, random, sys\nimport helpers",
        )
    run = nbflow.load(project).run(workers=2, prewarm=prewarm)
    assert run.state == "succeeded", {n: r.error for n, r in run.tasks.items()}
    p, q = (eval((project / "steps" / f"{n}.txt").read_text()) for n in "pq")
    assert p[0] == q[0] == 42
    assert p[1] != q[1] and p[2] != q[2]
    assert p[3] == q[3] and p[4] == q[4] == str(project / "steps")


def test_every_task_of_a_chain_gets_the_kernel_prepared_for_it(project):
    """With prewarming, each kernel is forked ahead of its task by the run's fork server; a task whose prepared
    kernel went missing would start a cold one itself, as this process's own child."""
    for i in range(6):
        inputs = f'inputs = ["c{i - 1}.txt"]\n' if i else ""
        task(project / f"c{i}.ipynb", f'{inputs}outputs = ["c{i}.txt"]', "str(os.getppid())")
    run = nbflow.load(project).run(workers=2)
    assert run.state == "succeeded", {n: r.error for n, r in run.tasks.items()}
    parents = {(project / f"c{i}.txt").read_text() for i in range(6)}
    assert len(parents) == 1 and parents != {str(os.getpid())}


def test_the_dry_run_keeps_its_columns_for_long_task_names(project):
    task(project / "a_task_with_a_rather_long_descriptive_name.ipynb", 'outputs = ["a.txt"]')
    task(project / "b.ipynb", 'inputs = ["a.txt"]\noutputs = ["b.txt"]')
    lines = run_cli("run", str(project), "--dry-run").stdout.splitlines()
    columns = {line.index(" run") for line in lines}
    assert len(lines) == 2 and len(columns) == 1 and columns.pop() >= len("a_task_with_a_rather_long_descriptive_name")


def test_piping_into_a_reader_that_stops_early_is_quiet(project):
    import subprocess
    import sys

    for n in range(30):
        task(project / f"t{n}.ipynb", f'outputs = ["t{n}.txt"]')
    command = f"{sys.executable} -m nbflow graph {project} | head -n 1"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert result.stdout.count("\n") == 1
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_executor_is_refused_naming_the_known_ones(project):
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    result = run_cli("run", str(project), "--executor", "kubernetes")
    assert result.returncode == 2
    assert "unknown executor 'kubernetes' (known: local, dask" in result.stderr
    assert not (project / "a.txt").exists()
