"""The JSON shapes as models: what nbflow writes fits them, request bodies are read with them, and the
JupyterLab extension's generated types are what the models give today."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import write_notebook

from nbflow import render
from nbflow.graph import load
from nbflow.server.errors import ApiError
from nbflow.server.requests import MAX_BODY, read_body
from nbflow.shapes import Graph, RunRequest, ScheduleRequest, json_schema

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"
GENERATED = LABEXTENSION / "src" / "shapes.generated.ts"


def test_the_committed_typescript_types_are_what_the_models_generate():
    """Change a model, then regenerate: `python -m nbflow.shapes | node scripts/shapes.mjs >
    src/shapes.generated.ts` in labextension/."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the TypeScript types cannot be generated here")
    if not (LABEXTENSION / "node_modules" / "json-schema-to-typescript").is_dir():
        pytest.skip("json-schema-to-typescript is not installed: run `jlpm install` in labextension/")
    generated = subprocess.run(
        [node, "scripts/shapes.mjs"],
        input=json.dumps(json_schema(), indent=2),
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert generated == GENERATED.read_text(encoding="utf-8"), (
        "labextension/src/shapes.generated.ts is out of date with nbflow/shapes.py; regenerate it (see this test)"
    )


def test_the_graph_json_fits_its_model(project):
    write_notebook(project / "a.ipynb", 'outputs = ["out/{region}.csv"]\nregion = "eu"')
    write_notebook(project / "b.ipynb", 'inputs = ["out/eu.csv"]\noutputs = ["b.txt"]', "")
    write_notebook(project / "c.ipynb", 'upstream = ["b"]\noutputs = ["c.txt"]')
    data = render.to_dict(load(project))
    graph = Graph.model_validate(data)
    assert graph.to_json() == data
    assert graph.edges[0].to_json() == {"from": "a", "to": "b", "via": ["out/eu.csv"]}


def test_parameter_text_is_read_as_the_command_line_reads_it():
    request = read_body(RunRequest, b'{"params": {"x": "True"}, "params_text": {"a": "True", "b": "3", "c": "x"}}')
    assert request.param_values() == {"x": "True", "a": True, "b": 3, "c": "x"}  # typed JSON stays as sent


def test_a_schedule_request_with_blank_fields_is_one_without_them():
    request = read_body(ScheduleRequest, b'{"name": "x", "cron": "", "every": "1h", "tz": "", "targets": null}')
    assert (request.cron, request.every, request.tz, request.targets) == (None, "1h", None, None)


@pytest.mark.parametrize(
    "model, body, message",
    [
        (RunRequest, b"", None),
        (RunRequest, b"  ", None),
        (
            RunRequest,
            b'{"force": 1}',
            "`force` must be true or false: run the selected tasks even if they are up to date.",
        ),
        (
            RunRequest,
            b'{"targets": ["a"], "x": 1, "y": 2}',
            "unknown field(s) x, y; known: targets, params, params_text, force, no_wait, grid, grid_text, upstream, "
            "downstream, rerun_failed.",
        ),
        (
            RunRequest,
            b'{"targets": [',
            "the request body is not valid JSON: EOF while parsing a list at line 1 column 13.",
        ),
        (ScheduleRequest, b'{"every": "1h"}', "`name` is required; it must be a string: the schedule's name"),
        (ScheduleRequest, b'{"name": "x", "cron": "* * * * *", "every": "1m"}', "give a schedule either `cron`"),
        (ScheduleRequest, b'{"name": "x", "every": "1m", "tz": 1}', "`tz` must be a string: an IANA time zone"),
    ],
)
def test_a_bad_body_is_refused_with_the_field_and_what_it_must_be(model, body, message):
    if message is None:
        assert read_body(model, body) == model()
        return
    with pytest.raises(ApiError) as refused:
        read_body(model, body)
    assert refused.value.status == 400
    assert refused.value.message.startswith(message), refused.value.message
    assert refused.value.problems and "pydantic" not in refused.value.message


def test_several_mistakes_are_listed_each_on_its_line():
    with pytest.raises(ApiError) as refused:
        read_body(RunRequest, b'{"targets": "a", "force": "yes"}')
    assert refused.value.message.splitlines() == [
        "the request has 2 problems:",
        "  - `targets` must be a list of task names (each run with its upstream), or null for all tasks.",
        "  - `force` must be true or false: run the selected tasks even if they are up to date.",
    ]
    assert len(refused.value.problems) == 2


def test_a_body_over_the_bound_is_refused_unread():
    with pytest.raises(ApiError) as refused:
        read_body(RunRequest, b"{" + b" " * MAX_BODY + b"}")
    assert refused.value.status == 413
