"""Bad input: every file either works or gives its documented, one-paragraph error; never a traceback."""

from __future__ import annotations

import json
import time

import pytest
from conftest import run_cli, write_notebook
from test_run import task

import nbflow

V3_TASK = {
    "nbformat": 3,
    "nbformat_minor": 0,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "worksheets": [
        {
            "cells": [
                {
                    "cell_type": "code",
                    "language": "python",
                    "metadata": {"tags": ["parameters"]},
                    "input": 'outputs = ["v3.txt"]',
                    "outputs": [],
                },
                {
                    "cell_type": "code",
                    "language": "python",
                    "metadata": {},
                    "input": "open(outputs[0], 'w').write('from v3')",
                    "outputs": [],
                },
            ]
        }
    ],
}


def write(project, name, content):
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.ipynb", b"", "empty.ipynb: is not valid JSON (line 1, column 1"),
        ("cut.ipynb", b'{"cells": [{"cell_type": "code", "sou', "cut.ipynb: is not valid JSON"),
        ("list.ipynb", b"[]", "list.ipynb: is JSON but not a notebook"),
        ("nover.ipynb", b'{"cells": []}', "nover.ipynb: is JSON but not a notebook (no integer `nbformat` version)"),
    ],
)
def test_unreadable_files_are_reported_by_name(project, name, content, message):
    write(project, name, content)
    result = run_cli("graph", str(project))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "parameters, message",
    [
        ('outputs = ["a.txt"]\nx = = 1', "t.ipynb: parameters cell, line 2: invalid syntax"),
        ('outputs = ["a.txt"\nx = 1', "t.ipynb: parameters cell, line 1:"),
        ("outputs = [1, 2]", "t.ipynb: parameters cell, line 1: every path in `outputs` must be a non-empty string"),
        ('inputs = {"a": None}', "t.ipynb: parameters cell, line 1: every path in `inputs` must be a non-empty string"),
        ("outputs = 3.5", "t.ipynb: parameters cell, line 1: `outputs` must be a dict of name -> path"),
        ('outputs = ["../../elsewhere.txt"]', "t.ipynb: parameters cell: the output"),
        ('outputs = [""]', "every path in `outputs` must be a non-empty string"),
    ],
)
def test_bad_declarations_name_notebook_and_line(project, parameters, message):
    write_notebook(project / "t.ipynb", parameters, "x = 1")
    result = run_cli("graph", str(project))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_notebook_without_a_parameters_cell_is_left_alone(project):
    write_notebook(project / "notes.ipynb", None, "this is not even python")
    task(project / "a.ipynb", 'outputs = ["a.txt"]')
    assert list(nbflow.load(project).tasks) == ["a"]


def test_an_nbformat_v3_task_runs(project):
    write(project, "old.ipynb", json.dumps(V3_TASK))
    run = nbflow.load(project).run()
    assert run.state == "succeeded" and (project / "v3.txt").read_text() == "from v3"


def test_inputs_may_point_outside_the_root(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("shared-data") / "rates.csv"
    outside.write_text("1.5\n")
    task(project / "use.ipynb", f'inputs = ["{outside}"]\noutputs = ["use.txt"]', "open(inputs[0]).read()")
    assert nbflow.load(project).run().state == "succeeded"
    assert (project / "use.txt").read_text() == "1.5\n"


def test_unicode_and_spaces_in_names_and_paths(project):
    task(
        project / "données brutes" / "éxécuté ü.ipynb",
        'outputs = ["../sortie/résumé ü.csv"]\nétiquette = "ça"',
        "étiquette * 2",
    )
    task(
        project / "rapport final.ipynb",
        'inputs = ["sortie/résumé ü.csv"]\noutputs = ["rapport ✓.txt"]',
        "open(inputs[0]).read() + '!'",
    )
    result = run_cli("run", str(project), "-p", "étiquette", "où")
    assert result.returncode == 0, result.stderr
    assert (project / "rapport ✓.txt").read_text() == "oùoù!"
    executed = json.loads(run_cli("show", "latest", str(project), "--json").stdout)["tasks"][0]["output_notebook"]
    assert (project / executed).exists() and "éxécuté ü" in executed


def test_a_10000_cell_notebook_resolves_and_a_2000_cell_one_runs(project):
    write_notebook(project / "huge.ipynb", 'outputs = ["huge.txt"]', *[f"x{i} = {i}" for i in range(10_000)])
    started = time.monotonic()
    assert run_cli("graph", str(project)).returncode == 0
    assert run_cli("run", str(project), "--dry-run").returncode == 0
    assert time.monotonic() - started < 30
    (project / "huge.ipynb").unlink()
    write_notebook(
        project / "big.ipynb",
        'outputs = ["big.txt"]',
        *[f"x{i} = {i}" for i in range(2_000)],
        "open(outputs[0], 'w').write(str(x1999))",
    )
    run = nbflow.load(project).run()
    assert run.state == "succeeded" and (project / "big.txt").read_text() == "1999"
