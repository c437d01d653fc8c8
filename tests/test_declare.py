"""Reading declarations from a notebook's `parameters` cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

from nbflow.declare import TaskSpec, read_spec
from nbflow.errors import Problem


def spec_of(path: Path) -> TaskSpec | Problem | None:
    return read_spec(path, path.name)


def test_dict_list_and_string_forms(tmp_path):
    a = write_notebook(tmp_path / "a.ipynb", 'inputs = {"orders": "raw/orders.csv"}\noutputs = ["x.csv", "out/"]')
    b = write_notebook(tmp_path / "b.ipynb", 'outputs = "one.csv"\nupstream = "a"')
    spec_a, spec_b = spec_of(a), spec_of(b)
    assert spec_a.inputs == {"orders": "raw/orders.csv"}
    assert spec_a.outputs == ["x.csv", "out/"]
    assert spec_b.outputs == "one.csv"
    assert spec_b.upstream == ("a",)


def test_ordinary_parameters_keep_values_and_source(tmp_path):
    nb = write_notebook(
        tmp_path / "p.ipynb",
        'outputs = ["r/{report_date}.html"]\nreport_date = "2026-11-24"\nn: int = 3\n'
        "start = datetime.date.today()\nratio = -0.5",
    )
    spec = spec_of(nb)
    assert spec.outputs == ["r/{report_date}.html"]
    assert {name: (p.value, p.literal) for name, p in spec.params.items()} == {
        "report_date": ("2026-11-24", True),
        "n": (3, True),
        "start": (None, False),
        "ratio": (-0.5, True),
    }
    assert spec.params["start"].source == "datetime.date.today()"
    assert spec.params["start"].line == 4


def test_non_literal_declaration_names_notebook_and_line(tmp_path):
    nb = write_notebook(tmp_path / "clean.ipynb", 'x = 1\ninputs = make_paths()\noutputs = ["a.csv"]')
    problem = spec_of(nb)
    assert isinstance(problem, Problem)
    assert problem.message.startswith("clean.ipynb: parameters cell, line 2: `inputs` must be a Python literal")
    assert "make_paths()" in problem.message


def test_every_declaration_mistake_in_a_cell_is_reported(tmp_path):
    nb = write_notebook(tmp_path / "bad.ipynb", 'inputs = f(1)\noutputs = [1, "ok.csv"]\nupstream = 3')
    problem = spec_of(nb)
    assert "line 1" in problem.message and "line 2" in problem.message and "line 3" in problem.message


def test_syntax_error_in_a_task_cell_is_an_error_with_its_line(tmp_path):
    nb = write_notebook(tmp_path / "t.ipynb", 'outputs = ["a.csv"]\nx = = 2')
    problem = spec_of(nb)
    assert isinstance(problem, Problem)
    assert "t.ipynb: parameters cell, line 2:" in problem.message


def test_a_notebook_without_declarations_is_left_alone_however_odd(tmp_path):
    broken = write_notebook(tmp_path / "odd.ipynb", "alpha = = 3\nthis is not python")
    plain = write_notebook(tmp_path / "plain.ipynb", None, "print(1)")
    ploomber = write_notebook(tmp_path / "ploomber.ipynb", "upstream = None\nproduct = None")
    assert spec_of(broken) is None and spec_of(plain) is None and spec_of(ploomber) is None


def test_ipython_magics_in_the_parameters_cell_are_understood(tmp_path):
    nb = write_notebook(tmp_path / "m.ipynb", '%matplotlib inline\n!echo hi\noutputs = ["a.csv"]')
    assert spec_of(nb).outputs == ["a.csv"]


def test_tag_on_a_markdown_cell_does_not_make_a_task(tmp_path):
    path = write_notebook(tmp_path / "md.ipynb", None, "outputs = ['a.csv']")
    nb = json.loads(path.read_text())
    nb["cells"].insert(
        0, {"cell_type": "markdown", "metadata": {"tags": ["parameters"]}, "source": "outputs = 1", "id": "md1"}
    )
    path.write_text(json.dumps(nb))
    # not a task; and since its first code cell declares, the tag it lacks is named
    problem = spec_of(path)
    assert isinstance(problem, Problem) and problem.kind == "untagged"
    assert "md.ipynb: its first code cell assigns `outputs` (line 1) but is not tagged `parameters`" in str(problem)


def test_an_untagged_declaration_cell_is_named_in_its_own_notebook_not_in_its_consumer(project):
    write_notebook(project / "extract.ipynb", None, 'outputs = ["raw.csv"]\nimport pandas', "print(1)")
    write_notebook(project / "clean.ipynb", 'inputs = ["raw.csv"]')
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert "extract.ipynb: its first code cell assigns `outputs` (line 1) but is not tagged `parameters`" in (
        result.stderr
    )
    # a notebook that assigns such a name later, or not at the top of its first cell, is simply no task
    write_notebook(project / "extract.ipynb", None, "import pandas", 'outputs = ["raw.csv"]')
    assert "extract.ipynb" not in run_cli("graph", str(project)).stderr


def test_metadata_options_and_kernel(tmp_path):
    nb = write_notebook(
        tmp_path / "k.ipynb",
        'outputs = ["a"]',
        kernel="python3",
        metadata={"nbflow": {"timeout": 30, "retries": 2, "kernel": "other"}},
    )
    spec = spec_of(nb)
    assert (spec.timeout, spec.retries, spec.kernel) == (30.0, 2, "other")
    bad = write_notebook(
        tmp_path / "bad.ipynb", 'outputs = ["a"]', metadata={"nbflow": {"timeout": -1, "retries": "x", "colour": 1}}
    )
    message = spec_of(bad).message
    assert "metadata.nbflow.timeout" in message and "metadata.nbflow.retries" in message and "colour" in message


def test_declarations_in_a_non_python_notebook_are_an_error(tmp_path):
    path = write_notebook(tmp_path / "r.ipynb", 'outputs = c("a.csv")')
    nb = json.loads(path.read_text())
    nb["metadata"]["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    path.write_text(json.dumps(nb))
    problem = spec_of(path)
    assert isinstance(problem, Problem) and "kernel language is 'r'" in problem.message


def test_nbformat_v3_notebook_is_read(tmp_path):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "language": "python",
                        "metadata": {"tags": ["parameters"]},
                        "input": 'outputs = ["v3.csv"]',
                        "outputs": [],
                    }
                ]
            }
        ],
    }
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    assert spec_of(path).outputs == ["v3.csv"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not valid JSON"),
        (b'{"cells": [', "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"cells": []}', "no integer `nbformat`"),
        ('{"nbformat": 4, "cells": []}'.encode("utf-16"), "UTF-16"),
        (b'{"nbformat": 9, "cells": []}', "version 9"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path, content, expected):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    problem = spec_of(path)
    assert isinstance(problem, Problem) and problem.kind == "unreadable"
    assert problem.message.startswith("broken.ipynb: ") and expected in problem.message


def test_code_cells_exclude_markdown(tmp_path):
    nb = write_notebook(tmp_path / "c.ipynb", 'outputs = ["a"]', "x = 1", markdown="# Title")
    assert spec_of(nb).code_cells == ('outputs = ["a"]', "x = 1")
