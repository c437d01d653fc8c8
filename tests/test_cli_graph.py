"""`nbflow graph` and the command line's help, errors and exit codes, run as a user runs them."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, write_notebook


@pytest.fixture
def chain(project):
    (project / "nbflow.toml").write_text('[params]\nday = "2026-11-24"\n')
    write_notebook(project / "extract.ipynb", 'outputs = {"raw": "data/{day}/raw.csv"}\nday = "x"\nseed = 7')
    write_notebook(
        project / "steps" / "clean.ipynb",
        'inputs = {"raw": "../data/{day}/raw.csv"}\noutputs = ["../data/{day}/clean.csv"]\nday = "x"\nwhen = today()',
    )
    write_notebook(project / "report.ipynb", 'inputs = ["data/2026-11-24/clean.csv"]\nupstream = ["extract"]')
    return project


def test_json_is_the_spec_shape(chain):
    result = run_cli("graph", str(chain), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "tasks": [
            {
                "name": "extract",
                "task": "extract",
                "grid": {},
                "notebook": "extract.ipynb",
                "inputs": [],
                "outputs": ["data/2026-11-24/raw.csv"],
                "upstream": [],
                "params": {"day": "2026-11-24", "seed": 7},
            },
            {
                "name": "clean",
                "task": "clean",
                "grid": {},
                "notebook": "steps/clean.ipynb",
                "inputs": ["data/2026-11-24/raw.csv"],
                "outputs": ["data/2026-11-24/clean.csv"],
                "upstream": ["extract"],
                "params": {"day": "2026-11-24", "when": "today()"},
            },
            {
                "name": "report",
                "task": "report",
                "grid": {},
                "notebook": "report.ipynb",
                "inputs": ["data/2026-11-24/clean.csv"],
                "outputs": [],
                "upstream": ["clean", "extract"],
                "params": {},
            },
        ],
        "edges": [
            {"from": "extract", "to": "clean", "via": ["data/2026-11-24/raw.csv"]},
            {"from": "extract", "to": "report", "via": []},
            {"from": "clean", "to": "report", "via": ["data/2026-11-24/clean.csv"]},
        ],
    }


def test_text_shows_levels_from_the_current_folder(chain):
    result = run_cli("graph", cwd=chain / "steps")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("3 task(s), 3 edge(s)")
    assert lines[1:] == [
        "level 1",
        "  extract  extract.ipynb",
        "level 2",
        "  clean    steps/clean.ipynb  <- extract",
        "level 3",
        "  report   report.ipynb       <- extract, clean",
    ]


def test_dot_and_svg(chain, tmp_path):
    dot = run_cli("graph", str(chain), "--format", "dot")
    assert dot.returncode == 0 and '"extract" -> clean' in dot.stdout.replace("extract ->", '"extract" ->')
    out = tmp_path / "g.svg"
    svg = run_cli("graph", str(chain), "--format", "svg", "-o", str(out))
    if svg.returncode == 2 and "not installed" in svg.stderr:
        pytest.skip("Graphviz's dot is not installed here (.ci/run installs it)")
    assert svg.returncode == 0, svg.stderr
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert all(name in text for name in ("extract", "clean", "report"))


def test_svg_without_graphviz_says_what_to_install(chain, tmp_path):
    result = run_cli("graph", str(chain), "--format", "svg", env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "apt-get install graphviz" in result.stderr and "--format dot" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_pipeline_exits_2_with_every_problem_and_no_traceback(project):
    write_notebook(project / "a.ipynb", 'inputs = make()\noutputs = ["a"]')
    write_notebook(project / "b.ipynb", 'upstream = ["nope"]')
    (project / "c.ipynb").write_text("")
    result = run_cli("graph", str(project))
    assert result.returncode == 2 and result.stdout == ""
    assert "the pipeline has 3 problems:" in result.stderr
    assert "a.ipynb: parameters cell, line 1:" in result.stderr
    assert "b.ipynb: parameters cell: `upstream` names 'nope'" in result.stderr
    assert "c.ipynb: is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_folder_is_exit_2(tmp_path):
    result = run_cli("graph", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "no such folder" in result.stderr


def test_empty_project_explains_what_a_task_is(project):
    result = run_cli("graph", str(project))
    assert result.returncode == 0 and "no task notebooks found" in result.stdout


def test_help_is_useful():
    top = run_cli("--help")
    assert top.returncode == 0 and "graph" in top.stdout and "Exit codes" in top.stdout
    graph = run_cli("graph", "--help")
    assert graph.returncode == 0 and "--format" in graph.stdout and "cycles" in graph.stdout
