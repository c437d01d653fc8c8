"""`nbflow diff`: real runs of a tiny pipeline, with parameters, a code cell and an input file changed between
them; the text and the JSON say exactly what changed and nothing else, secrets masked, refs and `-t` checked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

pytestmark = pytest.mark.timeout(300)

CLEAN = "text = open('raw.csv').read()\nclean = text.{how}()\nn = open(outputs[0], 'w').write(clean)"


def pipeline(root: Path, how: str = "upper", raw: str = "a,b\n1,2\n") -> None:
    """load reads raw.csv and prints its region; other writes a file of its own and never changes."""
    (root / "raw.csv").write_text(raw)
    write_notebook(
        root / "load.ipynb",
        'region = "north"\ninputs = ["raw.csv"]\noutputs = ["clean_{region}.txt"]',
        "print('region', region)",
        CLEAN.format(how=how),
        "len(clean)",
    )
    write_notebook(root / "other.ipynb", 'outputs = ["other.txt"]', "open('other.txt', 'w').write('same')")


def nbflow(*args: str, code: int = 0, env: dict | None = None) -> str:
    result = run_cli(*args, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout if code == 0 else result.stderr


def run_ids(root: Path) -> list[str]:
    """The runs, oldest first."""
    return [r["id"] for r in reversed(json.loads(nbflow("runs", str(root), "--json")))]


def diff_json(root: Path, run_a: str, run_b: str, *options: str) -> dict:
    return json.loads(nbflow("diff", run_a, run_b, str(root), *options, "--json"))


def test_diff_says_which_parameter_code_line_input_and_outputs_changed_and_nothing_else(project):
    pipeline(project)
    nbflow("run", str(project))
    pipeline(project, how="title", raw="a,b\n30,40\n")
    nbflow("run", str(project), "-p", "region", "south")
    first, second = run_ids(project)

    text = nbflow("diff", "previous", "latest", str(project)).splitlines()
    assert text[0].startswith(f"run {first} (") and f"-> run {second} (" in text[0]
    assert text[1:] == [
        "== load: succeeded -> succeeded",
        "  param region: north -> south",
        "  input changed: raw.csv",
        "  cell 1 changed: print('region', region)",
        "    output stdout changed:",
        "      - region north",
        "      + region south",
        "  cell 2 changed: text = open('raw.csv').read()",
        "    - clean = text.upper()",
        "    + clean = text.title()",
        "  cell 3 changed: len(clean)",
        "    output text/plain changed:",
        "      - 8",
        "      + 10",
        "1 instance differs, 1 unchanged.",
    ]

    found = diff_json(project, first, second)
    assert found == diff_json(project, "previous", "latest")
    assert (found["a"]["id"], found["b"]["id"], found["unchanged"], found["tasks_more"]) == (first, second, 1, 0)
    [load] = found["tasks"]
    assert (load["name"], load["change"], load["state_a"], load["state_b"]) == (
        "load",
        "changed",
        "succeeded",
        "succeeded",
    )
    assert load["params"] == [{"name": "region", "change": "changed", "before": "north", "after": "south"}]
    [raw] = load["inputs"]
    assert raw["path"] == "raw.csv" and raw["change"] == "changed" and raw["before"] != raw["after"]
    assert load["code_changed"] is True and load["notes"] == []
    # the injected parameters cell holds the new region too: it is the parameters' change, not a code change
    cells = {c["cell_b"]: c for c in load["cells"]}
    assert sorted(cells) == [1, 2, 3]
    assert [c["source_changed"] for c in cells.values()] == [False, True, False]
    code = cells[2]
    assert code["before"][code["removed"][0]] == "clean = text.upper()" and code["removed"] == [1]
    assert code["after"][code["added"][0]] == "clean = text.title()" and code["added"] == [1]
    assert cells[1]["outputs"] == [
        {"kind": "stdout", "change": "changed", "before": "region north\n", "after": "region south\n", "note": None}
    ]

    # -t: the instance alone, or one that did not change
    assert diff_json(project, first, second, "-t", "load")["tasks"] == found["tasks"]
    unchanged = nbflow("diff", first, second, str(project), "-t", "other").splitlines()
    assert unchanged[1:] == ["no differences (1 unchanged)."]
    # --exit-code: 1 when the runs differ
    nbflow("diff", first, second, str(project), "--exit-code", code=1)
    nbflow("diff", first, first, str(project), "--exit-code")


def test_an_instance_up_to_date_in_one_run_says_so_and_grid_instances_are_paired_by_name(project):
    pipeline(project)
    nbflow("run", str(project), "-g", "region", "north,south")
    nbflow("run", str(project), "-g", "region", "north,east")  # north and other up to date: skipped
    nbflow("run", str(project), "-t", "load", "-p", "region", "south")  # up to date since the first run
    first, second, third = run_ids(project)

    found = diff_json(project, first, second)
    assert [(t["name"], t["change"], t["state_a"], t["state_b"]) for t in found["tasks"]] == [
        ("load[region=east]", "added", None, "succeeded"),
        ("load[region=south]", "removed", "succeeded", None),
    ]
    assert found["unchanged"] == 2  # load[region=north] (skipped in the second) and other
    text = nbflow("diff", first, second, str(project), "-t", "load[region=east]")
    assert "== load[region=east]: absent -> succeeded (only in B)" in text and "south" not in text

    # the third run's load was up to date with the first run's south: no notebook of its own to compare
    found = diff_json(project, second, third, "-t", "load")
    [load] = [t for t in found["tasks"] if t["name"] == "load"]
    assert (load["change"], load["state_b"]) == ("added", "skipped")
    assert load["notes"] == [f"skipped (up to date) in B (run {third}): no executed notebook of its own to compare"]
    text = nbflow("diff", second, third, str(project), "-t", "load").splitlines()
    assert text[1:3] == [
        "== load: absent -> skipped (only in B)",
        f"  (skipped (up to date) in B (run {third}): no executed notebook of its own to compare)",
    ]


def test_a_parameter_change_against_an_up_to_date_run_names_the_values_and_says_skipped(project):
    pipeline(project)
    nbflow("run", str(project))
    nbflow("run", str(project), "-p", "region", "south")
    nbflow("run", str(project))  # north again: up to date since the first run
    _, second, third = run_ids(project)
    [load] = diff_json(project, second, third)["tasks"]
    assert load["params"] == [{"name": "region", "change": "changed", "before": "south", "after": "north"}]
    assert (load["state_a"], load["state_b"], load["cells"], load["inputs"]) == ("succeeded", "skipped", [], [])
    assert load["notes"] == [f"skipped (up to date) in B (run {third}): no executed notebook of its own to compare"]


def test_secrets_are_masked_in_what_diff_shows(project):
    variable, value = f"NBFLOW_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}", f"sk-{uuid.uuid4().hex}"
    (project / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        project / "fetch.ipynb",
        'api_key = ""\nregion = "north"\noutputs = ["out.txt"]',
        "print('key', api_key, 'for', region)\nopen('out.txt', 'w').write(region)",
    )
    env = {variable: value}
    nbflow("run", str(project), env=env)
    nbflow("run", str(project), "-p", "region", "south", env=env)
    shown = run_cli("diff", "previous", "latest", str(project), env=env).stdout
    shown_json = run_cli("diff", "previous", "latest", str(project), "--json", env=env).stdout
    assert value not in shown and value not in shown_json
    assert "      - key *** for north" in shown and "      + key *** for south" in shown
    assert "param api_key" not in shown  # the mask on both sides: the secret's parameter did not change


def test_unknown_refs_and_tasks_are_usage_errors_naming_how_to_find_them(project):
    pipeline(project)
    nbflow("run", str(project))
    error = nbflow("diff", "previous", "latest", str(project), code=2)
    assert "no run 'previous' in this project" in error and "`nbflow runs` lists the run ids" in error
    error = nbflow("diff", "latest", "nosuchrun", str(project), code=2)
    assert "no run 'nosuchrun'" in error
    error = nbflow("diff", "latest", "latest", str(project), "-t", "nosuchtask", code=2)
    assert "has a task or instance 'nosuchtask'" in error and "nbflow show RUN" in error
    assert "Traceback" not in error


def test_long_outputs_are_cut_and_say_how_much_more(project):
    write_notebook(
        project / "long.ipynb",
        'region = "north"\noutputs = ["long.txt"]',
        "print(region * 1000)\nopen('long.txt', 'w')",
    )
    nbflow("run", str(project))
    nbflow("run", str(project), "-p", "region", "south")
    [task] = diff_json(project, "previous", "latest")["tasks"]
    [output] = task["cells"][0]["outputs"]
    assert output["before"] == "north" * 400 + "… (3001 more characters)"  # 5,000 and a newline, 2,000 shown
    assert output["after"].startswith("south" * 400 + "…")
