"""A Ploomber spec's tasks as this import sees them: what kind each is (notebook, script, function, ...), its
file read as a notebook, its products as absolute paths, and the name nbflow will give it.

Ploomber names a task after its file (or function) unless the spec says `name:`; nbflow names it after its file,
or by its path where two files share a name. A grid (`grid:`) is one task whose products get `{name}`
placeholders, where Ploomber added each instance's number to the file name.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from nbflow.adopt.notebook_files import (
    PARAMETERS_TAG,
    Document,
    FileProblem,
    assigned_names,
    assigned_value,
    read_document,
    tagged_cell,
)
from nbflow.adopt.ploomber_yaml import Entry, Spec

COMPAT_TAG = "ploomber-compat"
NOTEBOOK_SUFFIXES = (".ipynb", ".py")
_OTHER_SOURCES = {
    ".sql": "a SQL task (SQLScript/SQLDump); nbflow runs notebooks: query the database from a notebook task",
    ".sh": "a shell task; nbflow runs notebooks: call the script from a notebook task (`!bash script.sh`)",
    ".r": "an R script; nbflow runs Python notebooks",
    ".rmd": "an R Markdown notebook; nbflow runs Python notebooks",
}
_NOTEBOOK_CLASSES = {"NotebookRunner", "ScriptRunner"}
# Task keys this import reads; the others are named in the notes as ignored
_READ_KEYS = {
    "source",
    "product",
    "name",
    "upstream",
    "params",
    "grid",
    "class",
    "product_class",
    "kernelspec_name",
    "local_execution",
}
_GRID_PLACEHOLDER = re.compile(r"\[\[\s*(\w+)\s*\]\]")


class Outcome(str, Enum):
    """What the import does with a task: writes its declarations, finds them written before, or leaves it."""

    CONVERTED = "converted"
    ALREADY = "already imported"
    NOT_CONVERTED = "not converted"


@dataclass
class Products:
    """A task's file products: `data` (key -> absolute path, or one path) and the executed notebook's path."""

    data: dict[str, str] | str | None  # None: no file products nbflow can link (a SQL table, ...)
    notebook: str | None = None


@dataclass(eq=False)  # compared and hashed by identity: one per task of the spec
class TaskImport:
    """What the import does with one task of pipeline.yaml."""

    name: str  # Ploomber's name
    entry: Entry
    outcome: Outcome
    reason: str = ""  # why it is not converted
    document: Document | None = None
    nbflow_name: str = ""
    products: Products = field(default_factory=lambda: Products(None))
    grid: dict[str, list[Any]] | None = None
    notes: list[str] = field(default_factory=list)
    summary: str = ""  # what it declares, in a few words
    kernel_named: str | None = None  # the kernelspec written into a file that named none
    new_text: str | None = None

    @property
    def file(self) -> Path | None:
        return self.document.path if self.document else None

    @property
    def ignored_keys(self) -> list[str]:
        """The task's keys in the spec that this import has no use for."""
        return sorted(set(self.entry.data) - _READ_KEYS)

    @property
    def instances(self) -> list[tuple[str, dict[str, Any]]]:
        """Ploomber's names for a grid's tasks, each with its values (one pair for a task without a grid)."""
        if not self.grid:
            return [(self.name, {})]
        names = list(self.grid)
        combos = [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]
        if "[[" in self.name:
            return [(_render(self.name, combo), combo) for combo in combos]
        return [(f"{self.name}{i}", c) for i, c in enumerate(combos)]


def _render(template: str, values: dict[str, Any]) -> str:
    """Ploomber's `[[name]]` placeholders filled (as its grids name their tasks)."""
    return _GRID_PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), "")), template)


def read_tasks(spec: Spec) -> list[TaskImport]:
    """Every task of the spec, classified, its products resolved and its nbflow name given."""
    tasks = [_classify(spec, entry) for entry in spec.entries]
    _reject_duplicates(tasks)
    for task in tasks:
        task.products = _products(spec, task)
    _name_for_nbflow(spec, tasks)
    return tasks


def _classify(spec: Spec, entry: Entry) -> TaskImport:
    """What kind of task the entry is, and its file read when it is a notebook or a script."""
    data, source = entry.data, entry.source
    suffix = Path(source).suffix
    is_file = suffix in NOTEBOOK_SUFFIXES or suffix.lower() in _OTHER_SOURCES
    # Ploomber names a task after its file, or after its function
    name = str(data.get("name") or (Path(source).stem if is_file else source.rsplit(".", 1)[-1]))

    def not_converted(reason: str) -> TaskImport:
        return TaskImport(name, entry, Outcome.NOT_CONVERTED, reason)

    if entry.unfilled:
        return not_converted(
            f"uses {entry.unfilled[0]}, which has no fixed value (Ploomber fills it at each build); write the path "
            "out, or make the varying part a parameter and use a {name} placeholder"
        )
    task_class = data.get("class")
    if suffix.lower() in _OTHER_SOURCES:
        return not_converted(_OTHER_SOURCES[suffix.lower()])
    if suffix not in NOTEBOOK_SUFFIXES:
        if "/" not in source and "." in source:
            return not_converted(
                f"a Python function ({source}); nbflow runs notebooks: call it from a notebook task, or move its "
                "body into one"
            )
        return not_converted(f"its source {source!r} is neither a notebook, a script nor a function's dotted path")
    if task_class is not None and task_class not in _NOTEBOOK_CLASSES:
        return not_converted(f"`class: {task_class}` is not a notebook task")
    if data.get("product_class") not in (None, "File"):
        return not_converted(f"`product_class: {data['product_class']}` is not a file nbflow can link")
    file = Path(source) if os.path.isabs(source) else spec.root / source
    file = Path(os.path.normpath(file))
    task = TaskImport(name, entry, Outcome.CONVERTED)
    if not file.is_file():
        task.outcome, task.reason = Outcome.NOT_CONVERTED, f"{source}: no such file"
        return task
    if not (str(file) + "/").startswith(str(spec.root) + "/"):
        task.outcome, task.reason = Outcome.NOT_CONVERTED, f"{source} lies outside the project folder {spec.root}"
        return task
    try:
        task.document = read_document(file)
    except FileProblem as exc:
        task.outcome, task.reason = Outcome.NOT_CONVERTED, f"{source} {exc}"
        return task
    notebook = task.document.notebook
    if tagged_cell(notebook, COMPAT_TAG) is not None:
        task.outcome = Outcome.ALREADY
    elif tagged_cell(notebook, PARAMETERS_TAG) is None:
        task.outcome = Outcome.NOT_CONVERTED
        task.reason = f"{source} has no cell tagged `parameters` (Ploomber needs one too)"
    grid = data.get("grid")
    if grid is not None:
        problem = _grid_problem(grid)
        if problem:
            task.outcome, task.reason = Outcome.NOT_CONVERTED, problem
        else:
            task.grid = {str(k): (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in grid.items()}
    return task


def _grid_problem(grid: Any) -> str | None:
    if isinstance(grid, list):
        return (
            "its `grid` is a list of grids; nbflow's `grid` is one dict of name -> values: split the task, or "
            "make it one grid"
        )
    if not isinstance(grid, dict) or not grid:
        return "its `grid` must be a mapping of parameter name -> list of values"
    for key, values in grid.items():
        if isinstance(values, dict):
            return f"grid `{key}` is computed by a function (`dotted_path`); write its values out"
    return None


def _reject_duplicates(tasks: list[TaskImport]) -> None:
    """One notebook is one nbflow task: a source used by two tasks (with other params) is converted once."""
    first_by_file: dict[Path, TaskImport] = {}
    names = Counter(t.name for t in tasks)
    for task in tasks:
        if names[task.name] > 1 and task.outcome is not Outcome.NOT_CONVERTED:
            task.outcome, task.reason = Outcome.NOT_CONVERTED, f"two tasks are named {task.name!r}; name each once"
            continue
        if task.file is None or task.outcome is Outcome.NOT_CONVERTED:
            continue
        first = first_by_file.setdefault(task.file, task)
        if first is not task:
            task.outcome = Outcome.NOT_CONVERTED
            task.reason = (
                f"its source is also task {first.name!r}'s; nbflow runs a notebook as one task: copy the notebook, "
                "or make the parameters that differ a `grid`"
            )


def _products(spec: Spec, task: TaskImport) -> Products:
    """The task's products as absolute paths (a grid's with {name} placeholders), its executed notebook apart."""
    entry = task.entry
    raw = entry.data.get("product")
    if raw is None and spec.meta.get("extract_product") and task.document is not None:
        raw = _extracted(task, "product")
    if raw is None and task.outcome is Outcome.ALREADY and task.document is not None:
        return _declared_outputs(task)
    if raw is None:
        if task.outcome is Outcome.CONVERTED:
            task.outcome, task.reason = Outcome.NOT_CONVERTED, "it has no `product`"
        return Products(None)
    base = task.file.parent if task.file and spec.meta.get("product_relative_to_source") else spec.root
    is_notebook = task.document is not None

    def absolute(path: str) -> str:
        # a literal brace is doubled: nbflow reads {name} in a path as a placeholder
        full = os.path.normpath(os.path.join(base, os.path.expanduser(path))).replace("{", "{{").replace("}", "}}")
        return _grid_path(full, task.grid) if task.grid else full

    if isinstance(raw, str):
        # a notebook task's one product is its executed notebook
        return Products(None, absolute(raw)) if is_notebook else Products(absolute(raw))
    if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        data = {str(k): absolute(v) for k, v in raw.items() if k != "nb"}
        return Products(data, absolute(raw["nb"]) if "nb" in raw else None)
    if task.outcome is Outcome.CONVERTED:
        task.outcome, task.reason = Outcome.NOT_CONVERTED, f"its product {raw!r} is not a file path nor a dict of them"
    return Products(None)


def _grid_path(path: str, grid: dict[str, list[Any]]) -> str:
    """A grid product's path with {name} placeholders: Ploomber's [[name]] kept as {name}, and each grid name the
    path does not use added to the file name (where Ploomber adds the instance's number)."""
    folder, name = os.path.split(path)
    folder = _GRID_PLACEHOLDER.sub(r"{\1}", folder)
    name = _GRID_PLACEHOLDER.sub(r"{\1}", name)
    used = set(re.findall(r"(?<!\{)\{(\w+)\}", folder + "/" + name))
    missing = "".join(f"-{{{key}}}" for key in grid if key not in used)
    stem, dot, suffixes = name.partition(".")
    return os.path.join(folder, f"{stem}{missing}{dot}{suffixes}")


def _extracted(task: TaskImport, name: str) -> Any:
    """A literal the task's parameters cell assigns to `name` (Ploomber's extract_upstream/extract_product)."""
    assert task.document is not None
    index = tagged_cell(task.document.notebook, PARAMETERS_TAG)
    if index is None:
        return None
    try:
        stmt = assigned_names(task.document.notebook.cells[index].source).get(name)
        return assigned_value(stmt) if stmt is not None else None
    except (SyntaxError, ValueError):
        return None


def _declared_outputs(task: TaskImport) -> Products:
    """An imported task's products, read back from its `outputs` declaration (relative to its folder)."""
    outputs = _extracted(task, "outputs")
    assert task.file is not None
    if isinstance(outputs, dict):
        return Products({k: os.path.normpath(task.file.parent / v) for k, v in outputs.items()})
    return Products(None)


def _name_for_nbflow(spec: Spec, tasks: list[TaskImport]) -> None:
    """nbflow names a task by its file name without the extension, or by its path where two share one."""
    kept = [t for t in tasks if t.file and t.outcome is not Outcome.NOT_CONVERTED]
    stems = Counter(t.file.stem for t in kept if t.file)
    for task in kept:
        assert task.file is not None
        relative = task.file.relative_to(spec.root).with_suffix("").as_posix()
        task.nbflow_name = task.file.stem if stems[task.file.stem] == 1 else relative
