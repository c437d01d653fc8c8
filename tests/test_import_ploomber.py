"""`nbflow import ploomber`: a Ploomber project's notebook and script tasks become nbflow tasks that compute what
Ploomber computed, with their code untouched; what cannot be converted is listed with the reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import run_cli

from nbflow.adopt.ploomber import grids_supported, plan_import
from nbflow.adopt.ploomber_tasks import COMPAT_TAG, Outcome

PIPELINE = """\
tasks:
  - source: tasks/load.py
    product:
      nb: output/load.ipynb
      data: output/raw.json
    params:
      n: 5

  - source: clean.ipynb
    product:
      nb: output/clean.ipynb
      data: output/clean.json
    params:
      factor: 10

  - source: report.py
    name: final-report
    product:
      nb: output/report.ipynb
      summary: "{{here}}/output/summary.txt"

  - source: helpers.make_totals
    product: output/totals.json
"""

# a script in jupytext's light format, as `ploomber scaffold` writes them
LOAD = """\
# + tags=["parameters"]
# declare a list tasks whose products you want to use as inputs
upstream = None
product = None
n = 3

# +
import json
from pathlib import Path

Path(product["data"]).parent.mkdir(parents=True, exist_ok=True)
Path(product["data"]).write_text(json.dumps(list(range(n))))
"""

CLEAN_CODE = """\
import json

values = json.loads(open(upstream["load"]["data"]).read())
with open(product["data"], "w") as fh:
    json.dump([v * factor for v in values], fh)"""

REPORT = """\
# %% tags=["parameters"]
upstream = ["clean"]
product = None

# %%
import json

values = json.loads(open(upstream["clean"]["data"]).read())
with open(product["summary"], "w") as fh:
    fh.write(f"total={sum(values)}\\n")
"""

HELPERS = """\
import json
from pathlib import Path


def make_totals(product, upstream):
    values = json.loads(Path(upstream["clean"]["data"]).read_text())
    Path(str(product)).write_text(json.dumps({"total": sum(values)}))
"""

# What the pipeline computes: load writes range(5), clean multiplies by 10, the report sums
EXPECTED = {
    "output/raw.json": [0, 1, 2, 3, 4],
    "output/clean.json": [0, 10, 20, 30, 40],
    "output/summary.txt": "total=100\n",
}


def write_clean_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Clean\nScales what `load` wrote."),
        nbformat.v4.new_code_cell('upstream = ["load"]\nproduct = None\nfactor = 1', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(CLEAN_CODE),
    ]
    nbformat.write(nb, path)


def ploomber_project(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(PIPELINE)
    (root / "tasks" / "load.py").write_text(LOAD)
    write_clean_notebook(root / "clean.ipynb")
    (root / "report.py").write_text(REPORT)
    (root / "helpers.py").write_text(HELPERS)
    return root


def outcomes(stdout: str) -> dict[str, tuple[str, str]]:
    """The import's task lines: Ploomber's name -> (outcome, the rest of the line)."""
    found = re.findall(r"^  (converted|already imported|not converted) +(\S+) +(.*)$", stdout, re.MULTILINE)
    return {name: (outcome, rest) for outcome, name, rest in found}


def outputs_of(root: Path) -> dict[str, object]:
    return {
        name: (path.read_text() if name.endswith(".txt") else json.loads(path.read_text()))
        for name in EXPECTED
        if (path := root / name).exists()
    }


def code_cells(path: Path) -> list[str]:
    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".nbflow" not in p.relative_to(root).parts
    }


def test_an_imported_project_runs_under_nbflow_and_computes_what_ploomber_computed(tmp_path):
    root = ploomber_project(tmp_path / "shop")
    before = {name: code_cells(root / name) for name in ("tasks/load.py", "clean.ipynb", "report.py")}

    result = run_cli("import", "ploomber", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    listed = outcomes(result.stdout)
    assert listed["load"][0] == listed["clean"][0] == listed["final-report"][0] == "converted"
    assert "nbflow names it 'report'" in result.stdout
    assert listed["make_totals"][0] == "not converted" and "Python function" in listed["make_totals"][1]

    # the code after the parameters cell is as it was; the parameters cell and one new cell changed
    for name, cells in before.items():
        after = code_cells(root / name)
        assert after[2:] == cells[1:], name
    graph = json.loads(run_cli("graph", str(root), "--format", "json").stdout)
    assert {(e["from"], e["to"]) for e in graph["edges"]} == {("load", "clean"), ("clean", "report")}
    assert {t["name"]: t["params"] for t in graph["tasks"]}["clean"] == {"factor": 10}

    run = run_cli("run", str(root))
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs_of(root) == EXPECTED
    # the executed notebooks are nbflow's, not Ploomber's `nb` products
    assert not (root / "output" / "load.ipynb").exists()


def ploomber_command() -> str:
    command = os.environ.get("NBFLOW_TEST_PLOOMBER") or shutil.which("ploomber")
    if not command:
        pytest.skip(
            "ploomber is not installed here (its dependencies pin jupyter_client<8, which nbflow's own environment "
            "cannot take); set NBFLOW_TEST_PLOOMBER to a `ploomber` command from another environment to run this"
        )
    return command


def test_ploomber_builds_the_original_to_the_same_outputs_as_nbflow_runs_the_import(tmp_path):
    command = ploomber_command()
    original = ploomber_project(tmp_path / "original")
    imported = ploomber_project(tmp_path / "imported")
    build = subprocess.run([command, "build"], cwd=original, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert run_cli("import", "ploomber", str(imported)).returncode == 0
    run = run_cli("run", str(imported))
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs_of(imported) == outputs_of(original) == EXPECTED


def test_an_imported_task_still_runs_by_hand(tmp_path):
    """ "Run All" in Jupyter: no injection, the notebook's folder as working directory."""
    from nbclient import NotebookClient

    root = ploomber_project(tmp_path / "shop")
    assert run_cli("import", "ploomber", str(root)).returncode == 0
    for name in ("tasks/load.py", "clean.ipynb"):
        path = root / name
        nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    # by hand the cell's own default applies: n = 5 from pipeline.yaml, factor = 10
    assert outputs_of(root)["output/clean.json"] == EXPECTED["output/clean.json"]


def test_importing_twice_changes_nothing_the_second_time(tmp_path):
    root = ploomber_project(tmp_path / "shop")
    first = run_cli("import", "ploomber", str(root))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "the originals are in .nbflow/backup/ploomber-" in first.stdout
    (backup,) = (root / ".nbflow" / "backup").iterdir()
    assert (backup / "tasks" / "load.py").read_text() == LOAD
    files = files_of(root)

    second = run_cli("import", "ploomber", str(root))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to change" in second.stdout
    assert [outcome for outcome, _ in outcomes(second.stdout).values()].count("already imported") == 3
    assert files_of(root) == files
    assert len(list((root / ".nbflow" / "backup").iterdir())) == 1


def test_a_dry_run_prints_the_changes_and_writes_nothing(tmp_path):
    root = ploomber_project(tmp_path / "shop")
    files = files_of(root)
    result = run_cli("import", "ploomber", str(root), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert '+outputs = {"data": "../output/raw.json"}' in result.stdout
    assert "+++ nbflow.toml" in result.stdout
    assert "dry run: nothing written" in result.stdout
    assert files_of(root) == files and not (root / ".nbflow").exists()


def test_the_parameters_cell_declares_paths_from_the_notebooks_folder_and_keeps_ploomber_names(tmp_path):
    root = ploomber_project(tmp_path / "shop")
    assert run_cli("import", "ploomber", str(root)).returncode == 0
    text = (root / "tasks" / "load.py").read_text()
    assert '# %% tags=["parameters"]\noutputs = {"data": "../output/raw.json"}\nn = 5\n' in text
    assert f'# %% tags=["{COMPAT_TAG}"]' in text and "product = dict(outputs)" in text
    nb = jupytext.read(root / "report.py")
    params, compat = nb.cells[0].source, nb.cells[1].source
    assert 'inputs = {"clean.data": "output/clean.json"}' in params
    assert 'upstream = ["clean"]' in params and "product" not in params
    assert '"clean": {"data": inputs["clean.data"]}' in compat
    settings = (root / "nbflow.toml").read_text()
    assert '"tasks/load.py"' in settings and "helpers" not in settings


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("tasks:\n  - source: a.py\n    product: out.txt\n   name: broken\n", 4),
        ("tasks:\n  - source: a.py\n    product: out.txt\n  - product: b.txt\n    name: b\n", 4),
        ("meta:\n  extract_upstreams: false\ntasks:\n  - source: a.py\n    product: a.ipynb\n", 2),
    ],
    ids=["yaml", "no-source", "meta"],
)
def test_a_bad_pipeline_yaml_is_one_paragraph_naming_the_file_and_line(tmp_path, text, line):
    (tmp_path / "pipeline.yaml").write_text(text)
    result = run_cli("import", "ploomber", str(tmp_path))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert f"pipeline.yaml, line {line}" in message, message
    assert "\n" not in message and "Traceback" not in message


def test_other_tasks_are_listed_as_not_converted_with_the_reason(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent(
            """\
            tasks:
              - source: helpers.fetch
                product: raw.csv
              - source: sql/summary.sql
                product: [summary, table]
              - source: missing.py
                product: {nb: missing.ipynb}
              - source: fit.py
                name: fit-small
                product: {nb: small.ipynb, model: small.pkl}
              - source: fit.py
                name: fit-large
                product: {nb: large.ipynb, model: large.pkl}
              - source: stamp.py
                product: {nb: "out/{{now}}.ipynb"}
              - source: use.py
                product: {nb: use.ipynb, out: use.txt}
              - source: typo.py
                product: {nb: typo.ipynb, out: typo.txt}
              - source: after_typo.py
                product: {nb: after_typo.ipynb}
            """
        )
    )
    for name in ("fit.py", "stamp.py"):
        (tmp_path / name).write_text('# %% tags=["parameters"]\nupstream = None\nproduct = None\n\n# %%\npass\n')
    (tmp_path / "use.py").write_text(
        '# %% tags=["parameters"]\nupstream = ["fetch", "fit-small"]\nproduct = None\n\n# %%\npass\n'
    )
    (tmp_path / "typo.py").write_text('# %% tags=["parameters"]\nupstream = ["fecth"]\nproduct = None\n\n# %%\npass\n')
    (tmp_path / "after_typo.py").write_text(
        '# %% tags=["parameters"]\nupstream = ["typo"]\nproduct = None\n\n# %%\npass\n'
    )
    plan = plan_import(tmp_path)
    outcome = {t.name: (t.outcome, t.reason) for t in plan.tasks}
    assert outcome["fetch"][0] is Outcome.NOT_CONVERTED and "Python function" in outcome["fetch"][1]
    assert outcome["summary"][0] is Outcome.NOT_CONVERTED and "SQL" in outcome["summary"][1]
    assert "no such file" in outcome["missing"][1]
    assert outcome["fit-small"][0] is Outcome.CONVERTED
    assert outcome["fit-large"][0] is Outcome.NOT_CONVERTED and "also task 'fit-small'" in outcome["fit-large"][1]
    assert "{{now}}" in outcome["stamp"][1]
    use = next(t for t in plan.tasks if t.name == "use")
    # the function's product is still an input; nbflow does not run the function, and says so
    assert use.outcome is Outcome.CONVERTED
    assert any("'fetch', which is not converted" in note for note in use.notes)
    assert 'inputs = {"fetch": "raw.csv", "fit-small.model": "small.pkl"}' in (use.new_text or "")
    assert 'upstream = ["fit"]' in (use.new_text or "")
    assert outcome["typo"][0] is Outcome.NOT_CONVERTED and "'fecth' is no task" in outcome["typo"][1]
    # a task after one that is not converted is converted, without naming it in its `upstream`
    after_typo = next(t for t in plan.tasks if t.name == "after_typo")
    assert after_typo.outcome is Outcome.CONVERTED and "upstream = [" not in (after_typo.new_text or "")


GRID_PIPELINE = """\
tasks:
  - source: fit.py
    name: fit-
    product:
      nb: products/fit.ipynb
      model: "products/[[model]]/fit.json"
    grid:
      model: [tree, forest]
      size: [1, 2]

  - source: compare.py
    product:
      nb: products/compare.ipynb
      table: products/compare.json
"""

FIT = """\
# %% tags=["parameters"]
upstream = None
product = None

# %%
import json
from pathlib import Path

Path(product["model"]).parent.mkdir(parents=True, exist_ok=True)
Path(product["model"]).write_text(json.dumps({"model": model, "size": size}))
"""

COMPARE = """\
# %% tags=["parameters"]
upstream = ["fit-*"]
product = None

# %%
import json

fitted = [json.loads(open(p["model"]).read()) for p in upstream["fit-*"].values()]
with open(product["table"], "w") as fh:
    json.dump(fitted, fh)
"""


def test_a_grid_becomes_a_grid_literal_with_placeholders_and_its_readers_a_glob(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(GRID_PIPELINE)
    (tmp_path / "fit.py").write_text(FIT)
    (tmp_path / "compare.py").write_text(COMPARE)
    result = run_cli("import", "ploomber", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    fit = jupytext.read(tmp_path / "fit.py").cells[0].source
    assert 'outputs = {"model": "products/{model}/fit-{size}.json"}' in fit
    assert 'grid = {"model": ["tree", "forest"], "size": [1, 2]}' in fit
    assert 'model = "tree"' in fit and "size = 1" in fit
    compare = jupytext.read(tmp_path / "compare.py").cells[0].source
    assert '"fit-*.model": "products/*/fit-*.json"' in compare
    if grids_supported():
        assert "one instance per value" in result.stdout
    else:
        assert 'runs once, with model="tree", size=1' in result.stdout

    run = run_cli("run", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    table = json.loads((tmp_path / "products" / "compare.json").read_text())
    written = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "products").rglob("fit-*.json"))
    if grids_supported():
        assert len(table) == len(written) == 4
    else:  # one instance, with the first value of each grid parameter
        assert table == [{"model": "tree", "size": 1}]
        assert written == ["products/tree/fit-1.json"]
