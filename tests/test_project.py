"""Project root discovery, nbflow.toml settings and notebook discovery."""

from __future__ import annotations

import pytest
from conftest import write_notebook

from nbflow.errors import PipelineError
from nbflow.project import discover, find_root, load_project


def test_root_is_the_nearest_folder_with_nbflow_toml(tmp_path):
    (tmp_path / "nbflow.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == (tmp_path, tmp_path / "nbflow.toml")


def test_root_by_pyproject_tool_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nbflow]\nworkers = 3\n[tool.nbflow.params]\nx = 1\n")
    (tmp_path / "sub").mkdir()
    project = load_project(tmp_path / "sub")
    assert project.root == tmp_path and project.workers == 3 and project.params == {"x": 1}


def test_pyproject_without_the_table_does_not_mark_a_root(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "sub").mkdir()
    assert find_root(tmp_path / "sub") == (tmp_path / "sub", None)


def test_without_settings_the_given_folder_is_the_root(tmp_path):
    assert load_project(tmp_path).root == tmp_path


def test_settings_are_read_and_every_mistake_reported(tmp_path):
    (tmp_path / "nbflow.toml").write_text('workers = 0\ntimeout = "long"\nretries = 1\ncolour = "red"\n')
    with pytest.raises(PipelineError) as info:
        load_project(tmp_path)
    message = str(info.value)
    assert "`workers` must be" in message and "`timeout` must be" in message and "unknown setting `colour`" in message
    assert "`retries` must be" not in message


def test_invalid_toml_names_the_file(tmp_path):
    (tmp_path / "nbflow.toml").write_text("workers = = 2\n")
    with pytest.raises(PipelineError, match="nbflow.toml: not valid TOML"):
        load_project(tmp_path)


def test_discovery_skips_hidden_folders_checkpoints_and_the_store(project):
    for rel in [
        "a.ipynb",
        "sub/b.ipynb",
        ".ipynb_checkpoints/a-checkpoint.ipynb",
        ".nbflow/runs/1/a.ipynb",
        ".venv/lib/c.ipynb",
        "sub/.hidden/d.ipynb",
    ]:
        write_notebook(project / rel, None)
    found = [p.relative_to(project).as_posix() for p in discover(load_project(project))]
    assert found == ["a.ipynb", "sub/b.ipynb"]


def test_notebooks_globs_narrow_the_pipeline(project):
    (project / "nbflow.toml").write_text('notebooks = ["pipeline/**/*.ipynb"]\n')
    for rel in ["scratch.ipynb", "pipeline/a.ipynb", "pipeline/deep/b.ipynb", "pipeline/.ipynb_checkpoints/x.ipynb"]:
        write_notebook(project / rel, None)
    found = [p.relative_to(project).as_posix() for p in discover(load_project(project))]
    assert found == ["pipeline/a.ipynb", "pipeline/deep/b.ipynb"]


def test_a_command_run_where_no_settings_file_marks_a_root_says_which_folder_it_took(tmp_path):
    from conftest import run_cli, write_notebook

    sub = tmp_path / "analysis" / "step"
    write_notebook(sub / "a.ipynb", 'outputs = ["a.txt"]')
    result = run_cli("graph", str(sub))
    assert result.returncode == 0
    assert f"no nbflow.toml (nor a pyproject.toml with [tool.nbflow]) in {sub} or any folder above it" in result.stderr
    (tmp_path / "nbflow.toml").write_text("")
    assert "no nbflow.toml" not in run_cli("graph", str(sub)).stderr
