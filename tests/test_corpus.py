"""The resolver survives every real notebook in ../shared/corpus: a non-task, or a clear error, never a crash."""

from __future__ import annotations

import csv
import json
import shutil

from conftest import CORPUS, needs_corpus, run_cli

from nbflow.declare import TaskSpec, read_spec
from nbflow.errors import Problem


def manifest() -> list[dict]:
    needs_corpus()
    with open(CORPUS / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_corpus_notebook_is_a_non_task_or_a_clear_error():
    rows = manifest()
    assert len(rows) == 118
    for row in rows:
        result = read_spec(CORPUS / row["path"], row["path"])
        assert result is None or isinstance(result, Problem), row["path"]
        if isinstance(result, Problem):
            assert result.message.startswith(row["path"] + ": ")
        if row["nbformat"] == "invalid":
            assert isinstance(result, Problem) and result.kind == "unreadable", row["path"]


def test_the_whole_corpus_as_a_project_lists_the_unreadable_files(tmp_path):
    needs_corpus()
    copy = shutil.copytree(CORPUS, tmp_path / "corpus")
    result = run_cli("graph", str(copy))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    invalid = [r["path"] for r in manifest() if r["nbformat"] == "invalid"]
    for path in invalid:
        assert f"  - {path}: " in result.stderr


def test_corpus_parameters_cells_become_tasks_or_clear_errors(tmp_path):
    """Add `outputs` to every corpus notebook with a parameters cell: each is then a task, or a precise error."""
    outcomes = {}
    for row in manifest():
        if row["has_parameters_cell"] != "yes" or row["nbformat"] != "4":
            continue
        nb = json.loads((CORPUS / row["path"]).read_text(encoding="utf-8"))
        cell = next(c for c in nb["cells"] if "parameters" in (c.get("metadata", {}).get("tags") or []))
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = 'outputs = ["out.csv"]\n' + source
        target = tmp_path / row["path"].replace("/", "__")
        target.write_text(json.dumps(nb), encoding="utf-8")
        outcomes[row["path"]] = read_spec(target, row["path"])
    assert len(outcomes) >= 15
    for path, result in outcomes.items():
        assert isinstance(result, (TaskSpec, Problem)), path
    # The syntax error of complex_parameters.ipynb is at line 14 of the cell (13 + the added line).
    assert "parameters cell, line 15:" in outcomes["papermill/complex_parameters.ipynb"].message
    assert "kernel language is 'r'" in outcomes["papermill/notimplemented_translator.ipynb"].message
    assert isinstance(outcomes["papermill/simple_execute.ipynb"], TaskSpec)
