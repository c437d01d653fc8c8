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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow.adopt.notebook_files import (
    PARAMETERS_TAG,
    assigned_names,
    assigned_value,
    edit_parameters,
    literal,
    new_code_cell,
    tagged_cell,
)
from nbflow.adopt.ploomber_tasks import COMPAT_TAG, Outcome, TaskImport, read_tasks
from nbflow.adopt.ploomber_yaml import Spec, read_spec
from nbflow.declare import TaskSpec

_GLOB = re.compile(r"[*?\[]")


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
    tasks = read_tasks(spec)
    by_name = {instance: task for task in tasks for instance, _ in task.instances}
    # every task that cannot be converted is known before any other names it in its `upstream`
    for task in tasks:
        problem = _problem(spec, task, by_name) if task.outcome is Outcome.CONVERTED else None
        if problem:
            task.outcome, task.reason = Outcome.NOT_CONVERTED, problem
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


def _relative(path: str, folder: Path) -> str:
    return os.path.relpath(path, folder)


def _glob_of(path: str) -> str:
    """A grid product's path with every {name} made `*`: the files all of its instances write."""
    return re.sub(r"(?<!\{)\{\w+\}(?!\})", "*", path).replace("{{", "{").replace("}}", "}")


def _parameters_cell(task: TaskImport) -> tuple[int, str]:
    assert task.document is not None
    index = tagged_cell(task.document.notebook, PARAMETERS_TAG)
    assert index is not None
    return index, task.document.notebook.cells[index].source


def _problem(spec: Spec, task: TaskImport, by_name: dict[str, TaskImport]) -> str | None:
    """Why the task cannot be converted after all: its parameters cell, or an upstream name naming no task."""
    try:
        assigned = assigned_names(_parameters_cell(task)[1])
    except SyntaxError as exc:
        return f"its parameters cell is not Python (line {exc.lineno}: {exc.msg})"
    refs = _upstream_refs(spec, task, assigned)
    if isinstance(refs, str):
        return refs
    for ref in refs:
        if _GLOB.search(ref) and not any(fnmatch.fnmatchcase(name, ref) for name in by_name):
            return f"its upstream {ref!r} matches no task"
        if not _GLOB.search(ref) and ref not in by_name:
            return f"its upstream {ref!r} is no task of {spec.path.name}"
    return None


def _convert(spec: Spec, task: TaskImport, by_name: dict[str, TaskImport]) -> None:
    """Work out the task's new parameters cell and the cell rebuilding Ploomber's dicts (`_problem` found none)."""
    assert task.document is not None and task.file is not None
    notebook = task.document.notebook
    index, source = _parameters_cell(task)
    folder = task.file.parent
    assigned = assigned_names(source)
    upstream_refs = _upstream_refs(spec, task, assigned)
    assert isinstance(upstream_refs, list)
    inputs: dict[str, str] = {}
    after: list[str] = []  # nbflow names of the tasks to run first
    compat: dict[str, str] = {}  # Ploomber's upstream name -> the expression of its product
    helpers = False
    for ref in upstream_refs:
        if _GLOB.search(ref):
            matches = [name for name in by_name if fnmatch.fnmatchcase(name, ref)]
            parts = []
            for matched in dict.fromkeys(by_name[m] for m in matches):
                names = [m for m in matches if by_name[m] is matched]
                expression, uses_helpers = _fan_in(task, matched, ref, names, inputs)
                helpers |= uses_helpers
                parts.append(expression)
                _order_after(task, matched, after)
            compat[ref] = parts[0] if len(parts) == 1 else "{" + ", ".join(f"**{p}" for p in parts) + "}"
            continue
        owner = by_name[ref]
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
    drop = {"upstream", "product", "inputs", "outputs", "grid"}
    notebook.cells[index].source = edit_parameters(source, head, drop, params)
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
    if task.ignored_keys:
        task.notes.append("ignored " + ", ".join(f"`{k}`" for k in task.ignored_keys))
