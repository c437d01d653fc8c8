"""Task files as an import reads and rewrites them: `.ipynb` with nbformat, `.py` text notebooks with jupytext
(written back in the percent format nbflow reads), and the parameters cell edited statement by statement.

Values are written as Python literals with double quotes, as nbflow's own examples write them, so the notebook
still runs by hand ("Run All") and nbflow reads the declarations without running anything.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

PARAMETERS_TAG = "parameters"
_WIDTH = 100  # a literal longer than this is written one entry per line


class FileProblem(Exception):
    """The task file cannot be read or edited as a notebook; the message says why."""


@dataclass
class Document:
    """One task file, read as a notebook: what it held, and the notebook to edit."""

    path: Path
    text: str
    notebook: nbformat.NotebookNode
    text_format: str | None  # jupytext's format of a `.py` file ("percent", "light", ...); None for `.ipynb`

    def name_kernel(self, name: str) -> bool:
        """Give a notebook that names no kernel the kernelspec `name` (a text notebook: in its jupytext header), as
        Ploomber chose one for it at each run; False when it names one already."""
        metadata = self.notebook.metadata
        if isinstance(metadata.get("kernelspec"), dict) and metadata["kernelspec"].get("name"):
            return False
        display = "Python 3" if name == "python3" else name
        metadata["kernelspec"] = {"display_name": display, "language": "python", "name": name}
        header = metadata.get("jupytext")
        if isinstance(header, dict) and header.get("notebook_metadata_filter") == "-all":
            header["notebook_metadata_filter"] = "kernelspec,-all"  # a file without a header gets one for this only
        return True

    def render(self) -> str:
        """The file's text as it would be written now."""
        if self.text_format is None:
            return str(nbformat.writes(self.notebook)) + "\n"  # as nbformat.write ends the file
        import jupytext

        return str(jupytext.writes(self.notebook, fmt="py:percent"))


def read_document(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(f"cannot be read ({exc})") from exc
    if path.suffix == ".ipynb":
        try:
            return Document(path, text, nbformat.reads(text, as_version=4), None)
        except Exception as exc:  # nbformat raises JSON, validation and version errors of several kinds
            raise FileProblem(f"is not a readable notebook ({type(exc).__name__}: {exc})") from exc
    import jupytext
    from jupytext.formats import guess_format

    text_format = guess_format(text, ".py")[0]
    try:
        return Document(path, text, jupytext.reads(text, fmt=f"py:{text_format}"), text_format)
    except Exception as exc:  # jupytext raises plain exceptions of several kinds for text it cannot read
        raise FileProblem(f"cannot be read as a notebook by jupytext ({type(exc).__name__}: {exc})") from exc


def tags(cell: nbformat.NotebookNode) -> list[str]:
    found = cell.get("metadata", {}).get("tags", [])
    return list(found) if isinstance(found, list) else []


def tagged_cell(notebook: nbformat.NotebookNode, tag: str) -> int | None:
    """The index of the first code cell carrying `tag`."""
    return next(
        (i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and tag in tags(c)),
        None,
    )


def new_code_cell(source: str, tag: str) -> nbformat.NotebookNode:
    cell: nbformat.NotebookNode = nbformat.v4.new_code_cell(source, metadata={"tags": [tag]})
    return cell


def literal(value: Any, indent: int = 0) -> str:
    """`value` (what YAML reads: str, numbers, bool, None, lists, dicts) as Python source."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        items = [literal(v, indent + 4) for v in value]
        return _bracketed("[", items, "]", indent)
    if isinstance(value, dict):
        items = [f"{literal(k)}: {literal(v, indent + 4)}" for k, v in value.items()]
        return _bracketed("{", items, "}", indent)
    return literal(str(value))  # dates and other YAML scalars: as the text papermill would inject


def _bracketed(opening: str, items: list[str], closing: str, indent: int) -> str:
    flat = opening + ", ".join(items) + closing
    if len(flat) + indent <= _WIDTH and "\n" not in flat:
        return flat
    pad = " " * (indent + 4)
    return opening + "\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + closing


def assigned_names(source: str) -> dict[str, ast.stmt]:
    """The names the cell's top-level statements assign (one name each), with the last statement doing so."""
    names: dict[str, ast.stmt] = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            names[stmt.targets[0].id] = stmt
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            names[stmt.target.id] = stmt
    return names


def assigned_value(stmt: ast.stmt) -> Any:
    """The literal a statement from `assigned_names` assigns; ValueError when it is no literal."""
    assert isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None
    return ast.literal_eval(stmt.value)


def edit_parameters(source: str, head: dict[str, Any], drop: set[str], values: dict[str, Any]) -> str:
    """The parameters cell rewritten: `head` assigned first (in order); the statements assigning a name in `drop`
    removed, with the comment lines right above them; those assigning a name in `values` given that value where
    they stand (the rest appended); every other line kept as written. SyntaxError when the cell is not Python."""
    lines = source.replace("\r\n", "\n").split("\n")
    replaced: dict[int, str | None] = {}  # first line of a statement -> its new text (None: removed)
    covered: set[int] = set()
    remaining = dict(values)
    for stmt in ast.parse(source).body:
        targets = (
            stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        )
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if len(names) != 1 or len(targets) != 1:
            continue
        (name,) = names
        if name in drop or name in head:
            replaced[stmt.lineno - 1] = None
            # the comment lines right above a removed statement describe it: they go with it
            above = stmt.lineno - 2
            while above >= 0 and lines[above].lstrip().startswith("#") and above not in covered:
                covered.add(above)
                above -= 1
        elif name in remaining:
            replaced[stmt.lineno - 1] = f"{name} = {literal(remaining.pop(name))}"
        else:
            continue
        covered.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno)))
    kept: list[str] = []
    for index, line in enumerate(lines):
        if index in replaced:
            if replaced[index] is not None:
                kept.append(str(replaced[index]))
        elif index not in covered:
            kept.append(line)
    body = "\n".join(kept).strip("\n")
    declared = "\n".join(f"{name} = {literal(value)}" for name, value in head.items())
    appended = "\n".join(f"{name} = {literal(value)}" for name, value in remaining.items())
    return "\n".join(part for part in (declared, body, appended) if part)
