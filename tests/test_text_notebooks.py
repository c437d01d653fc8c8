"""Text notebooks (jupytext percent `.py`, MyST `.md`) are tasks like `.ipynb` files; plain modules are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

import nbflow

PERCENT = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # {title}

# %% tags=["parameters"]
{parameters}

# %%
{code}
"""

MYST = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A report

```{{code-cell}} ipython3
:tags: [parameters]
{parameters}
```

```{{code-cell}} ipython3
{code}
```
"""


def percent(path: Path, parameters: str, code: str = "pass", title: str = "A task", header: bool = True) -> Path:
    text = PERCENT.format(title=title, parameters=parameters, code=code)
    if not header:
        text = text.split("# ---\n\n", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def myst(path: Path, parameters: str, code: str = "pass") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MYST.format(parameters=parameters, code=code))
    return path


def test_percent_and_myst_notebooks_are_tasks_and_plain_files_are_left_alone(project):
    percent(project / "tasks" / "extract.py", 'outputs = ["../raw.txt"]')
    percent(project / "tasks" / "clean.py", 'inputs = ["../raw.txt"]\noutputs = ["../clean.txt"]', header=False)
    myst(project / "report.md", 'inputs = ["clean.txt"]')
    # a helper module the notebooks import, a README and a module that only mentions cell markers in its text
    (project / "tasks" / "helpers.py").write_text('"""Shared code."""\nTABLE = "sales"\n')
    (project / "README.md").write_text("# The project\n\nRun it with nbflow.\n")
    (project / "tasks" / "notes.py").write_text('x = 1\n"""we use # %% markers in our notebooks"""\n')
    pipe = nbflow.load(project)
    assert list(pipe.tasks) == ["extract", "clean", "report"]
    assert pipe.tasks["clean"].notebook == "tasks/clean.py"
    assert set(pipe.graph.edges) == {("extract", "clean"), ("clean", "report")}


def test_a_notebooks_glob_over_text_files_finds_their_tasks(project):
    (project / "nbflow.toml").write_text('notebooks = ["tasks/*.py"]\n')
    percent(project / "tasks" / "a.py", 'outputs = ["../a.txt"]')
    assert list(nbflow.load(project).tasks) == ["a"]


def test_a_notebooks_glob_that_finds_no_task_says_so(project):
    (project / "nbflow.toml").write_text('notebooks = ["tasks/*.py"]\n')
    percent(project / "tasks" / "a.py", "n = 1")  # a notebook, but it declares nothing
    result = run_cli("run", str(project))
    assert result.returncode == 2
    assert "matches 1 notebook(s) (tasks/a.py) but none is a task" in result.stderr
    assert 'tags=["parameters"]' in result.stderr
    (project / "nbflow.toml").write_text('notebooks = ["steps/*.py"]\n')
    result = run_cli("graph", str(project))
    assert result.returncode == 2 and "matches no notebook" in result.stderr


def test_a_paired_notebook_is_one_task_read_from_its_text_file(project):
    text = percent(project / "clean.py", 'outputs = ["from_text.txt"]')
    write_notebook(
        project / "clean.ipynb",
        'outputs = ["from_ipynb.txt"]',
        metadata={"jupytext": {"formats": "ipynb,py:percent"}},
    )
    pipe = nbflow.load(project)
    assert list(pipe.tasks) == ["clean"]
    assert pipe.tasks["clean"].spec.notebook == text
    assert [Path(p).name for p in pipe.tasks["clean"].output_paths] == ["from_text.txt"]


def test_an_unpaired_notebook_beside_a_text_file_of_its_stem_is_a_name_clash_named_by_path(project):
    percent(project / "steps" / "clean.py", 'outputs = ["a.txt"]')
    write_notebook(project / "steps" / "clean.ipynb", 'outputs = ["b.txt"]')
    assert sorted(nbflow.load(project).tasks) == ["steps/clean.ipynb", "steps/clean.py"]


def test_a_text_notebook_without_a_kernelspec_takes_the_projects_kernel(project):
    (project / "nbflow.toml").write_text('kernel = "python3-nbflow-test"\n')
    percent(project / "a.py", 'outputs = ["a.txt"]', header=False)
    assert nbflow.load(project).tasks["a"].spec.kernel == "python3-nbflow-test"


def test_a_text_notebook_jupytext_cannot_read_is_reported_with_its_path(project):
    percent(project / "good.py", 'outputs = ["a.txt"]')
    broken = project / "broken.md"
    broken.write_bytes(b"---\njupytext:\n  text_representation: [\n---\n\xff\xfe")
    result = run_cli("graph", str(project))
    assert result.returncode == 2
    assert "broken.md" in result.stderr


@pytest.mark.parametrize("edit", ["markdown", "comment"])
def test_fingerprints_see_code_cells_only(project, edit):
    from nbflow import fingerprint

    path = percent(project / "a.py", 'outputs = ["a.txt"]', code="x = 1")
    before = fingerprint.code_hash(nbflow.load(project).tasks["a"].spec.code_cells, "python3")
    text = path.read_text()
    if edit == "markdown":
        text = text.replace("# # A task", "# # A task, reworded\n# with a second line")
    else:
        text = text.replace("x = 1", "x = 1  # the first value")
    path.write_text(text)
    pipe = nbflow.load(project)
    assert fingerprint.code_hash(pipe.tasks["a"].spec.code_cells, "python3") == before
    path.write_text(text.replace("x = 1", "x = 2"))
    assert fingerprint.code_hash(nbflow.load(project).tasks["a"].spec.code_cells, "python3") != before


def test_text_notebooks_run_with_parameters_injected_and_keep_their_source(project):
    extract = percent(
        project / "tasks" / "extract.py",
        'outputs = ["../raw.txt"]\nn = 2',
        code="open(outputs[0], 'w').write(str(n * 21))",
    )
    report = myst(
        project / "report.md",
        'inputs = ["raw.txt"]\noutputs = ["report.txt"]',
        code="open(outputs[0], 'w').write('total ' + open(inputs[0]).read())",
    )
    before = extract.read_bytes(), report.read_bytes()
    run = nbflow.load(project).run(params={"n": 3})
    assert run.state == "succeeded", [t.error for t in run.tasks.values()]
    assert (project / "report.txt").read_text() == "total 63"
    assert (extract.read_bytes(), report.read_bytes()) == before  # the sources are never written to
    executed = run.tasks["extract"].output_notebook
    assert executed.suffix == ".ipynb" and executed.parent.parent.name == "runs"
    cells = json.loads(executed.read_text())["cells"]
    assert any(
        "injected-parameters" in c["metadata"].get("tags", []) and "n = 3" in "".join(c["source"]) for c in cells
    )


def test_a_markdown_or_comment_edit_in_a_text_notebook_reruns_nothing(project):
    path = percent(project / "a.py", 'outputs = ["a.txt"]', code="open(outputs[0], 'w').write('x')")
    assert nbflow.load(project).run().tasks["a"].state == "succeeded"
    path.write_text(
        path.read_text()
        .replace("# # A task", "# # A task, explained at length")
        .replace("write('x')", "write('x')  # the only value")
    )
    assert nbflow.load(project).run().tasks["a"].state == "skipped"
