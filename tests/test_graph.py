"""Building the graph from declarations, and every problem the resolver reports."""

from __future__ import annotations

import pytest
from conftest import write_notebook

import nbflow
from nbflow.errors import PipelineError


def problems_of(path) -> list[str]:
    with pytest.raises(PipelineError) as info:
        nbflow.load(path)
    return [p.message for p in info.value.problems]


def test_edges_follow_paths_relative_to_each_notebook(project):
    write_notebook(project / "extract" / "sales.ipynb", 'outputs = {"raw": "../data/raw.csv"}')
    write_notebook(project / "clean.ipynb", 'inputs = ["data/raw.csv"]\noutputs = "data/clean.csv"')
    write_notebook(project / "reports" / "report.ipynb", 'inputs = {"c": "../data/./clean.csv"}')
    pipe = nbflow.load(project)
    assert list(pipe.tasks) == ["sales", "clean", "report"]
    assert set(pipe.graph.edges) == {("sales", "clean"), ("clean", "report")}
    assert pipe.graph.edges["clean", "report"]["via"] == [str(project / "data" / "clean.csv")]


def test_folder_outputs_cover_what_is_under_them(project):
    write_notebook(project / "split.ipynb", 'outputs = ["parts/"]')
    write_notebook(project / "use.ipynb", 'inputs = ["parts/2026/p1.csv"]')
    write_notebook(project / "all.ipynb", 'inputs = ["parts/"]')
    pipe = nbflow.load(project)
    assert set(pipe.graph.edges) == {("split", "use"), ("split", "all")}


def test_an_input_folder_depends_on_the_files_written_inside_it(project):
    write_notebook(project / "a.ipynb", 'outputs = ["out/a.csv"]')
    write_notebook(project / "b.ipynb", 'outputs = ["out/b.csv"]')
    write_notebook(project / "merge.ipynb", 'inputs = ["out/"]')
    assert set(nbflow.load(project).graph.edges) == {("a", "merge"), ("b", "merge")}


def test_upstream_edges_carry_no_file(project):
    write_notebook(project / "setup.ipynb", "upstream = []")
    write_notebook(project / "work.ipynb", 'upstream = ["setup"]')
    pipe = nbflow.load(project)
    assert pipe.graph.edges["setup", "work"]["via"] == []


def test_absolute_paths_are_kept_and_outputs_outside_the_root_need_a_setting(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "shared.csv"
    write_notebook(project / "w.ipynb", f'outputs = ["{elsewhere}"]')
    write_notebook(project / "sub" / "r.ipynb", f'inputs = ["{elsewhere}", "../../outside/input.csv"]')
    (problem,) = problems_of(project)
    assert f"w.ipynb: parameters cell: the output {elsewhere} lies outside the project root" in problem
    assert "outputs_outside_root = true" in problem
    (project / "nbflow.toml").write_text("outputs_outside_root = true\n")
    assert list(nbflow.load(project).graph.edges) == [("w", "r")]


def test_same_name_in_two_folders_names_both_by_path(project):
    write_notebook(project / "sales" / "clean.ipynb", 'outputs = ["a.csv"]')
    write_notebook(project / "returns" / "clean.ipynb", 'outputs = ["b.csv"]')
    write_notebook(project / "load.ipynb", 'inputs = ["sales/a.csv"]')
    assert sorted(nbflow.load(project).tasks) == ["load", "returns/clean", "sales/clean"]


def test_placeholders_are_filled_from_params_then_notebook_defaults(project):
    (project / "nbflow.toml").write_text('[params]\nreport_date = "2026-11-24"\n')
    write_notebook(
        project / "a.ipynb", 'outputs = ["d/{report_date}/{region}.csv"]\nreport_date = "1999-01-01"\nregion = "eu"'
    )
    write_notebook(project / "b.ipynb", 'inputs = ["d/{report_date}/eu.csv"]')
    pipe = nbflow.load(project)
    assert pipe.tasks["a"].output_paths == [str(project / "d" / "2026-11-24" / "eu.csv")]
    assert list(pipe.graph.edges) == [("a", "b")]
    assert pipe.tasks["a"].params == {"report_date": "2026-11-24", "region": "eu"}
    # Other values move the edges: b keeps reading the default date's file.
    moved = pipe.with_params({"report_date": "2026-12-01"})
    assert list(moved.graph.edges) == [("a", "b")]
    moved_a = pipe.with_params(task_params={"a": {"region": "us"}})
    assert list(moved_a.graph.edges) == []


def test_every_problem_is_reported_at_once(project):
    write_notebook(project / "a.ipynb", 'inputs = ["c.csv"]\noutputs = ["a.csv"]')
    write_notebook(project / "b.ipynb", 'inputs = ["a.csv"]\noutputs = ["b.csv"]')
    write_notebook(project / "c.ipynb", 'inputs = ["b.csv"]\noutputs = ["c.csv"]')
    write_notebook(project / "d1.ipynb", 'outputs = ["same.csv"]')
    write_notebook(project / "d2.ipynb", 'outputs = ["same.csv"]')
    write_notebook(project / "u.ipynb", 'upstream = ["d_1"]')
    write_notebook(project / "nonlit.ipynb", "outputs = paths()")
    write_notebook(project / "ph.ipynb", 'outputs = ["x/{nowhere}.csv"]')
    (project / "junk.ipynb").write_text("{not json")
    problems = problems_of(project)
    assert len(problems) == 6
    joined = "\n".join(problems)
    assert (
        "cycle: a (a.ipynb) -> b (b.ipynb) -> c (c.ipynb) -> a (a.ipynb): b reads a.csv, which a writes; "
        "c reads b.csv, which b writes; a reads c.csv, which c writes. Each task must run before the next"
    ) in joined
    assert "same.csv is declared as an output by d1 (d1.ipynb) and d2 (d2.ipynb)" in joined
    assert "u.ipynb: parameters cell: `upstream` names 'd_1', which is no task (did you mean 'd1'?)" in joined
    assert "nonlit.ipynb: parameters cell, line 1: `outputs` must be a Python literal" in joined
    assert "ph.ipynb: parameters cell: 'x/{nowhere}.csv' uses {nowhere}" in joined
    assert "junk.ipynb: is not valid JSON" in joined


def test_a_task_reading_its_own_output_is_a_cycle(project):
    write_notebook(project / "self.ipynb", 'inputs = ["s.csv"]\noutputs = ["s.csv"]')
    assert problems_of(project) == [
        "cycle: self (self.ipynb) -> self (self.ipynb): self reads s.csv, which it writes itself. Each task must "
        "run before the next, which cannot be; break the loop by removing one of these inputs or `upstream` names."
    ]


def test_unused_pipeline_param_is_reported(project):
    (project / "nbflow.toml").write_text('[params]\nreport_dat = "2026-11-24"\n')
    write_notebook(project / "a.ipynb", 'outputs = ["a.csv"]\nreport_date = "x"')
    (problem,) = problems_of(project)
    assert "[params] sets `report_dat`" in problem


def test_select_takes_targets_and_their_upstream(project):
    write_notebook(project / "a.ipynb", 'outputs = ["a.csv"]')
    write_notebook(project / "b.ipynb", 'inputs = ["a.csv"]\noutputs = ["b.csv"]')
    write_notebook(project / "c.ipynb", 'outputs = ["c.csv"]')
    pipe = nbflow.load(project)
    assert pipe.select(["b"]) == ["a", "b"]
    assert pipe.select(None) == ["a", "b", "c"]
    with pytest.raises(PipelineError, match="target `bb` names no task \\(did you mean 'b'\\?\\)"):
        pipe.select(["bb"])


def test_graph_is_a_networkx_digraph_and_tasks_carry_specs(project):
    import networkx as nx

    write_notebook(project / "a.ipynb", 'outputs = ["a.csv"]\nn = 2', metadata={"nbflow": {"timeout": 5}})
    pipe = nbflow.load(project)
    assert isinstance(pipe.graph, nx.DiGraph)
    assert pipe.tasks["a"].spec.timeout == 5.0 and pipe.tasks["a"].params == {"n": 2}


def test_a_cycle_through_upstream_names_says_so(project):
    write_notebook(project / "a.ipynb", 'upstream = ["b"]\noutputs = ["a.csv"]')
    write_notebook(project / "b.ipynb", 'inputs = ["a.csv"]')
    (message,) = problems_of(project)
    assert (
        "cycle: a (a.ipynb) -> b (b.ipynb) -> a (a.ipynb): b reads a.csv, which a writes; a names b in `upstream`"
        in (message)
    )
