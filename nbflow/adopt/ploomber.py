"""`nbflow import ploomber`: a Ploomber project's notebook and script tasks turned into nbflow tasks.

Each task's parameters cell gets the nbflow declarations made from pipeline.yaml: `outputs` from its `product`
(without `nb`, the executed notebook, which nbflow keeps itself), `inputs` from the products of its upstream tasks,
`upstream` with their names, its `params` as the cell's values and its `grid` as a `grid` literal. The task code
is left as it is: a new cell after the parameters cell (tagged `ploomber-compat`) rebuilds Ploomber's `product`
and `upstream` dicts from the `inputs` and `outputs` nbflow injects, so `upstream["load"]["data"]` and
`product["data"]` still name the right files, both under nbflow and by hand ("Run All"). nbflow reads only the
parameters cell, so the `upstream` dict that cell makes is never taken for the declaration.

A file that already has that cell was imported before and is left alone, so importing twice changes nothing.
Function tasks (`source: module.function`), SQL and shell tasks are listed as not converted, with the reason.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
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
    edit_parameters,
    literal,
    new_code_cell,
    read_document,
    tagged_cell,
)
from nbflow.adopt.ploomber_yaml import Entry, Spec, read_spec
from nbflow.declare import TaskSpec

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
_GLOB = re.compile(r"[*?\[]")
_GRID_PLACEHOLDER = re.compile(r"\[\[\s*(\w+)\s*\]\]")


class Outcome(str, Enum):
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


@dataclass
class Plan:
    """The import of one spec: every task's outcome and the notes that concern the whole project."""

    spec: Spec
    tasks: list[TaskImport]
    notes: list[str]

    @property
    def changed(self) -> list[TaskImport]:
        return [t for t in self.tasks if t.outcome is Outcome.CONVERTED and t.new_text is not None]

    @property
    def task_files(self) -> list[Path]:
        return [t.file for t in self.tasks if t.file and t.outcome is not Outcome.NOT_CONVERTED]


def grids_supported() -> bool:
    """Whether this nbflow reads `grid` from a parameters cell (one instance per value) yet."""
    return "grid" in {f.name for f in dataclasses.fields(TaskSpec)}


def plan_import(path: str | Path | None) -> Plan:
    """Read the spec and work out every task's new files; nothing is written."""
    spec = read_spec(path)
    tasks = [_classify(spec, entry) for entry in spec.entries]
    _reject_duplicates(tasks)
    for task in tasks:
        task.products = _products(spec, task)
    _name_for_nbflow(spec, tasks)
    by_name = {instance: task for task in tasks for instance, _ in task.instances}
    for task in tasks:
        if task.outcome is Outcome.CONVERTED:
            _convert(spec, task, by_name)
    notes = [f"ignored {section}" for section in spec.ignored]
    if any(t.products.notebook for t in tasks if t.outcome is not Outcome.NOT_CONVERTED):
        notes.append(
            "Ploomber's `nb` products are not outputs in nbflow: it keeps each executed notebook itself, under "
            ".nbflow/runs/RUN_ID/TASK.ipynb (`nbflow show RUN_ID` lists them)."
        )
    named = [t for t in tasks if t.kernel_named]
    if named:
        kernels = ", ".join(sorted({str(t.kernel_named) for t in named}))
        notes.append(
            f"{len(named)} task file(s) named no kernel; they now name {kernels}, the kernel Ploomber picked for "
            "them at each build (in a jupytext header for a script)."
        )
    if spec.env_file is not None:
        notes.append(
            f"{spec.env_file.name}: its values were written into the paths and parameters (nbflow has no env "
            "file); to change one per run, make it a parameter (`-p NAME VALUE`)."
        )
    return Plan(spec, tasks, notes)


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


def _relative(path: str, folder: Path) -> str:
    return os.path.relpath(path, folder)


def _glob_of(path: str) -> str:
    """A grid product's path with every {name} made `*`: the files all of its instances write."""
    return re.sub(r"(?<!\{)\{\w+\}(?!\})", "*", path).replace("{{", "{").replace("}}", "}")


def _convert(spec: Spec, task: TaskImport, by_name: dict[str, TaskImport]) -> None:
    """Work out the task's new parameters cell and the cell rebuilding Ploomber's dicts."""
    assert task.document is not None and task.file is not None
    notebook = task.document.notebook
    index = tagged_cell(notebook, PARAMETERS_TAG)
    assert index is not None
    folder = task.file.parent
    source = notebook.cells[index].source
    try:
        assigned = assigned_names(source)
    except SyntaxError as exc:
        task.outcome = Outcome.NOT_CONVERTED
        task.reason = f"its parameters cell is not Python (line {exc.lineno}: {exc.msg})"
        return

    upstream_refs = _upstream_refs(spec, task, assigned)
    if isinstance(upstream_refs, str):
        task.outcome, task.reason = Outcome.NOT_CONVERTED, upstream_refs
        return
    inputs: dict[str, str] = {}
    after: list[str] = []  # nbflow names of the tasks to run first
    compat: dict[str, str] = {}  # Ploomber's upstream name -> the expression of its product
    helpers = False
    for ref in upstream_refs:
        if _GLOB.search(ref):
            matches = [name for name in by_name if fnmatch.fnmatchcase(name, ref)]
            if not matches:
                task.outcome, task.reason = Outcome.NOT_CONVERTED, f"its upstream {ref!r} matches no task"
                return
            parts = []
            for matched in dict.fromkeys(by_name[m] for m in matches):
                names = [m for m in matches if by_name[m] is matched]
                expression, uses_helpers = _fan_in(task, matched, ref, names, inputs)
                helpers |= uses_helpers
                parts.append(expression)
                _order_after(task, matched, after)
            compat[ref] = parts[0] if len(parts) == 1 else "{" + ", ".join(f"**{p}" for p in parts) + "}"
            continue
        owner = by_name.get(ref)
        if owner is None:
            task.outcome, task.reason = Outcome.NOT_CONVERTED, f"its upstream {ref!r} is no task of {spec.path.name}"
            return
        values = dict(owner.instances)[ref]
        compat[ref] = _upstream_inputs(task, owner, ref, values, inputs)
        _order_after(task, owner, after)

    outputs = {}
    if isinstance(task.products.data, dict):
        outputs = {k: _relative(v, folder) for k, v in task.products.data.items()}
    params = dict(task.entry.data.get("params") or {})
    head: dict[str, Any] = {}
    if inputs:
        head["inputs"] = inputs
    head["outputs"] = outputs
    if after:
        head["upstream"] = after
    changed_defaults = {k: v for k, v in params.items() if k in assigned and _literal_or_none(assigned[k]) != v}
    if task.grid:
        head["grid"] = task.grid
        for key, choices in task.grid.items():
            if key not in assigned and key not in params:
                params[key] = choices[0]
    try:
        new_source = edit_parameters(source, head, {"upstream", "product", "inputs", "outputs", "grid"}, params)
    except SyntaxError as exc:  # checked above; kept for the type checker's sake
        task.outcome, task.reason = Outcome.NOT_CONVERTED, f"its parameters cell is not Python ({exc.msg})"
        return
    notebook.cells[index].source = new_source
    notebook.cells.insert(index + 1, new_code_cell(_compat_source(task, compat, helpers), COMPAT_TAG))
    kernel = str(task.entry.data.get("kernelspec_name") or "python3")
    if task.document.name_kernel(kernel):
        task.kernel_named = kernel
    task.new_text = task.document.render()
    task.summary = _summary(inputs, outputs, after, params)
    _notes(spec, task, changed_defaults)


def _literal_or_none(stmt: ast.stmt) -> Any:
    try:
        return assigned_value(stmt)
    except ValueError:
        return None


def _upstream_refs(spec: Spec, task: TaskImport, assigned: dict[str, ast.stmt]) -> list[str] | str:
    """Ploomber's upstream names for the task: the spec's `upstream:`, else the parameters cell's `upstream`."""
    declared = task.entry.data.get("upstream")
    if declared is None and spec.meta.get("extract_upstream", True) and "upstream" in assigned:
        try:
            declared = assigned_value(assigned["upstream"])
        except ValueError:
            return "its parameters cell assigns `upstream` something other than a literal list of task names"
    if declared is None:
        return []
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, (list, tuple, set, dict)) or not all(isinstance(n, str) for n in declared):
        return "its `upstream` must be a list of task names"
    return list(dict.fromkeys(declared))


def _order_after(task: TaskImport, owner: TaskImport, after: list[str]) -> None:
    if owner.outcome is Outcome.NOT_CONVERTED:
        what = f"{owner.reason}" if owner.reason else "not converted"
        task.notes.append(
            f"reads the products of {owner.name!r}, which is not converted ({what}); nbflow does not run it, so "
            "its files must be there before the run"
        )
    elif owner.nbflow_name not in after and owner is not task:
        after.append(owner.nbflow_name)


def _upstream_inputs(
    task: TaskImport, owner: TaskImport, ref: str, values: dict[str, Any], inputs: dict[str, str]
) -> str:
    """Declare the inputs `task` reads from `ref` (one task, or one instance of a grid); the expression of its
    Ploomber product built from them."""
    assert task.file is not None
    folder = task.file.parent
    data = owner.products.data
    if isinstance(data, str):
        inputs[ref] = _relative(_instance_path(data, values), folder)
        return f"inputs[{literal(ref)}]"
    if not data:
        return "{}"
    keys = {}
    for key, path in data.items():
        inputs[f"{ref}.{key}"] = _relative(_instance_path(path, values), folder)
        keys[key] = f"inputs[{literal(f'{ref}.{key}')}]"
    return "{" + ", ".join(f"{literal(k)}: {v}" for k, v in keys.items()) + "}"


def _instance_path(path: str, values: dict[str, Any]) -> str:
    """A grid product's path for one instance (its literal braces still doubled); other paths as they are."""
    return path.format(**values).replace("{", "{{").replace("}", "}}") if values else path


def _fan_in(
    task: TaskImport, owner: TaskImport, ref: str, matched: list[str], inputs: dict[str, str]
) -> tuple[str, bool]:
    """Declare what `task` reads from the tasks `ref` matches; the expression of Ploomber's dict of them (name ->
    product), and whether it needs the `_files` helper (a grid's products read through a glob)."""
    if not owner.grid:
        (name,) = matched
        return "{" + f"{literal(name)}: {_upstream_inputs(task, owner, name, {}, inputs)}" + "}", False
    assert task.file is not None
    folder = task.file.parent
    data = owner.products.data
    prefix = owner.name.split("[[")[0]
    if isinstance(data, str):
        inputs[ref] = _relative(_glob_of(data), folder)
        listed = f"_files(inputs[{literal(ref)}])"
        return "{" + f'f"{prefix}{{i}}": path for i, path in enumerate({listed})' + "}", True
    if not data:
        return "{}", False
    keys = list(data)
    for key in keys:
        inputs[f"{ref}.{key}"] = _relative(_glob_of(data[key]), folder)
    lists = ", ".join(f"_files(inputs[{literal(f'{ref}.{k}')}])" for k in keys)
    product = "dict(zip(" + literal(keys) + ", paths))"
    return "{" + f'f"{prefix}{{i}}": {product} for i, paths in enumerate(zip({lists}))' + "}", True


def _compat_source(task: TaskImport, compat: dict[str, str], helpers: bool) -> str:
    lines = [
        "# Ploomber's `upstream` and `product`, made from the `inputs` and `outputs` nbflow injects",
        "# (written by `nbflow import ploomber`; nbflow reads only the parameters cell above)",
    ]
    if helpers:
        lines += [
            "import glob as _glob",
            "",
            "",
            "def _files(paths):",
            "    # nbflow injects the files a glob input matches; run by hand, the cell above holds the pattern",
            "    return sorted(_glob.glob(paths)) if isinstance(paths, str) else list(paths)",
            "",
            "",
        ]
    if compat:
        entries = [f"    {literal(name)}: {expression}," for name, expression in compat.items()]
        lines += ["upstream = {", *entries, "}"]
    if isinstance(task.products.data, dict):
        lines.append("product = dict(outputs)")
    return "\n".join(lines)


def _summary(inputs: dict[str, str], outputs: dict[str, str], after: list[str], params: dict[str, Any]) -> str:
    parts = []
    if inputs:
        parts.append(f"inputs {', '.join(inputs)}")
    if outputs:
        parts.append(f"outputs {', '.join(outputs)}")
    if after:
        parts.append(f"after {', '.join(after)}")
    if params:
        parts.append(f"params {', '.join(f'{k}={literal(v)}' for k, v in params.items())}")
    return "; ".join(parts) or "no inputs or outputs"


def _notes(spec: Spec, task: TaskImport, changed: dict[str, Any]) -> None:
    assert task.document is not None and task.file is not None
    if task.name != task.nbflow_name:
        task.notes.append(
            f"nbflow names it {task.nbflow_name!r} (after its file); its readers' `upstream` dicts keep {task.name!r}"
        )
    if task.document.text_format not in (None, "percent"):
        task.notes.append(
            f"rewritten from jupytext's {task.document.text_format} format to the percent format nbflow reads"
        )
    for key, value in changed.items():
        task.notes.append(f"`{key}` now defaults to {literal(value)}, the value pipeline.yaml gave it")
    if task.file.parent != spec.path.parent and not task.entry.data.get("local_execution"):
        where = os.path.relpath(task.file.parent, spec.root)
        task.notes.append(
            f"runs in its own folder ({where}/) under nbflow, where Ploomber ran it in the project folder: paths the "
            "code opens itself (not through `upstream` or `product`) are now relative to that folder"
        )
    code = "\n".join(c.source for c in task.document.notebook.cells if c.cell_type == "code")
    if re.search(r"""\[\s*['"]nb['"]\s*\]""", code):
        task.notes.append(
            "its code reads an `nb` product (an executed notebook): nbflow keeps those under .nbflow/runs/, not at "
            "the product's path"
        )
    notebook_path = task.products.notebook
    if notebook_path and not notebook_path.endswith(".ipynb"):
        task.notes.append(
            f"Ploomber also wrote it as {os.path.relpath(notebook_path, spec.root)}; nbflow keeps the executed "
            "notebook only (export it with `jupyter nbconvert`)"
        )
    if task.grid:
        first = ", ".join(f"{k}={literal(v[0])}" for k, v in task.grid.items())
        if grids_supported():
            task.notes.append(f"a grid: nbflow runs one instance per value, named {task.nbflow_name}[{first}], ...")
        else:
            task.notes.append(
                f"a grid: this nbflow does not run grids yet and reads `grid` as an ordinary parameter, so the task "
                f"runs once, with {first}; it runs every instance once nbflow supports grids"
            )
    ignored = sorted(set(task.entry.data) - _READ_KEYS)
    if ignored:
        task.notes.append("ignored " + ", ".join(f"`{k}`" for k in ignored))
