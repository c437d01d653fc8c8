"""TaskSpecs -> the Pipeline: tasks with their paths filled in, the dependency DiGraph, and every problem.

Edge A -> B when a path B reads is a path A writes (after normalising both to absolute paths), lies under a folder
A writes, or is a folder holding what A writes; or when B's `upstream` names A. All problems are collected before
anything fails, so a user fixes them in one pass.
"""

from __future__ import annotations

import difflib
import gc
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from nbflow import paths
from nbflow.declare import PathsDeclared, TaskSpec, map_paths, paths_of, read_spec
from nbflow.errors import PipelineError, Problem
from nbflow.params import PlaceholderError, fill, placeholders
from nbflow.project import Project, discover, load_project


@dataclass
class Task:
    """One task with the parameter values in force and its paths filled in and made absolute."""

    name: str
    spec: TaskSpec
    notebook: str  # relative to the project root
    params: dict[str, Any]  # values in force for the parameters the notebook assigns (expressions left out)
    inputs: PathsDeclared  # absolute, normalised; a folder keeps its trailing "/"
    outputs: PathsDeclared

    @property
    def input_paths(self) -> list[str]:
        return paths_of(self.inputs)

    @property
    def output_paths(self) -> list[str]:
        return paths_of(self.outputs)


@dataclass
class Pipeline:
    """The resolved pipeline: `tasks` in a stable topological order and `graph`, a networkx.DiGraph of names."""

    project: Project
    specs: dict[str, TaskSpec]
    tasks: dict[str, Task]
    graph: nx.DiGraph
    params: dict[str, Any] = field(default_factory=dict)

    def select(self, targets: Iterable[str] | None = None) -> list[str]:
        """The targets and everything upstream of them, in dependency order (all tasks when no target)."""
        if not targets:
            return list(self.tasks)
        targets = list(targets)
        unknown = [t for t in targets if t not in self.tasks]
        if unknown:
            raise PipelineError(
                [
                    Problem("unknown-target", f"target `{t}` names no task{did_you_mean(t, self.tasks)}.")
                    for t in unknown
                ]
            )
        wanted = set(targets)
        for target in targets:
            wanted |= nx.ancestors(self.graph, target)
        return [name for name in self.tasks if name in wanted]

    def with_params(
        self, params: Mapping[str, Any] | None = None, task_params: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Pipeline:
        """The same tasks resolved again with other parameter values (placeholders may move edges)."""
        # `replace` keeps the caller's class (the public API's Pipeline adds `run` to this one)
        return replace(self, **vars(resolve(self.project, self.specs, params, task_params)))


def did_you_mean(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Reading and linking thousands of notebooks makes millions of small acyclic objects; the cyclic collector
    would scan the growing heap again and again (resolution time grew faster than the notebook count)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def scan(project: Project) -> tuple[dict[str, TaskSpec], list[Problem]]:
    """Read every notebook of the project: the task specs by name, and the problems found while reading."""
    problems: list[Problem] = []
    specs: list[tuple[TaskSpec, str]] = []
    found = discover(project)
    with _no_cyclic_gc():
        for path in found:
            display = project.relative(path)
            result = read_spec(path, display, project.kernel)
            if isinstance(result, Problem):
                problems.append(result)
            elif result is not None:
                specs.append((result, display))
    if project.notebooks is not None and not specs and not problems:
        problems.append(_no_task_found(project, found))
    return _named(specs), problems


def _named(specs: list[tuple[TaskSpec, str]]) -> dict[str, TaskSpec]:
    """Each task by its notebook's file name without the extension; where two share it, by the path relative to
    the root without the extension; where even that is shared (`x.ipynb` beside an unpaired `x.py`), with it."""
    by_stem: dict[str, int] = defaultdict(int)
    by_path: dict[str, int] = defaultdict(int)
    for spec, display in specs:
        by_stem[spec.notebook.stem] += 1
        by_path[display[: -len(spec.notebook.suffix)]] += 1
    named: dict[str, TaskSpec] = {}
    for spec, display in specs:
        without_suffix = display[: -len(spec.notebook.suffix)]
        if by_stem[spec.notebook.stem] == 1:
            named[spec.notebook.stem] = spec
        else:
            named[without_suffix if by_path[without_suffix] == 1 else display] = spec
    return named


def _no_task_found(project: Project, found: list[Path]) -> Problem:
    where = project.relative(project.config_file) if project.config_file else "the settings"
    globs = ", ".join(repr(g) for g in project.notebooks or [])
    if not found:
        return Problem(
            "no-tasks",
            f"{where}: `notebooks` ({globs}) matches no notebook under {project.root}; fix the globs (relative to "
            "that folder, `**` for any depth).",
        )
    shown = ", ".join(project.relative(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
    return Problem(
        "no-tasks",
        f"{where}: `notebooks` ({globs}) matches {len(found)} notebook(s) ({shown}) but none is a task: a notebook "
        "is a task when its cell tagged `parameters` assigns `inputs`, `outputs` or `upstream` (in a percent-format "
        'text notebook, mark that cell `# %% tags=["parameters"]`).',
    )


def load(path: str | Path | None = None, params: Mapping[str, Any] | None = None) -> Pipeline:
    """Find the project for `path`, read its notebooks and resolve the pipeline; PipelineError lists all problems."""
    project = load_project(path)
    specs, problems = scan(project)
    return resolve(project, specs, params, None, problems)


def _absolute(folder: Path, path: str) -> str:
    joined = os.path.normpath(os.path.join(folder, os.path.expanduser(path)))
    return joined + "/" if path.endswith("/") and joined != "/" else joined


def resolve(
    project: Project,
    specs: Mapping[str, TaskSpec],
    params: Mapping[str, Any] | None = None,
    task_params: Mapping[str, Mapping[str, Any]] | None = None,
    problems: list[Problem] | None = None,
) -> Pipeline:
    """Fill placeholders with the values in force, link tasks by their paths and `upstream`, check the graph."""
    with _no_cyclic_gc():
        return _resolve(project, specs, params, task_params, problems)


def _resolve(
    project: Project,
    specs: Mapping[str, TaskSpec],
    params: Mapping[str, Any] | None,
    task_params: Mapping[str, Mapping[str, Any]] | None,
    problems: list[Problem] | None,
) -> Pipeline:
    problems = list(problems or [])
    pipeline_params = {**project.params, **(params or {})}
    task_params = task_params or {}
    tasks: dict[str, Task] = {}
    used_params: set[str] = set()

    for name, spec in specs.items():
        values = {p.name: p.value for p in spec.params.values() if p.literal}
        values.update({k: v for k, v in pipeline_params.items() if k in spec.params})
        values.update(task_params.get(name, {}))
        used_params.update(k for k in pipeline_params if k in spec.params)
        # Placeholders see the task's own values first, then any pipeline parameter.
        lookup = {**pipeline_params, **values}
        folder = spec.notebook.parent
        display = project.relative(spec.notebook)

        def absolute(
            template: str, _folder: Path = folder, _lookup: dict[str, Any] = lookup, _display: str = display
        ) -> str:
            used_params.update(n for n in placeholders(template) if n in pipeline_params)
            try:
                return _absolute(_folder, fill(template, _lookup))
            except PlaceholderError as exc:
                problems.append(Problem("placeholder", f"{_display}: parameters cell: {exc}."))
                return _absolute(_folder, template)

        tasks[name] = Task(
            name, spec, display, values, map_paths(spec.inputs, absolute), map_paths(spec.outputs, absolute)
        )

    unused = sorted(set(project.params) - used_params)
    for key in unused:
        where = project.relative(project.config_file) if project.config_file else "nbflow.toml"
        problems.append(
            Problem(
                "config",
                f"{where}: [params] sets `{key}`, but no task notebook assigns it in its "
                "parameters cell and no path uses {" + key + "}; remove it or fix its name.",
            )
        )

    if not project.outputs_outside_root:
        root = str(project.root).rstrip("/") + "/"
        for task in tasks.values():
            for path in task.output_paths:
                if not (path.rstrip("/") + "/").startswith(root):
                    problems.append(
                        Problem(
                            "output-outside-root",
                            (
                                f"{task.notebook}: parameters cell: the output {path} lies outside the project root "
                                f"{project.root}; write it inside the project, or allow it with "
                                "`outputs_outside_root = true` in nbflow.toml."
                            ),
                        )
                    )
    graph = _link(project, tasks, problems)
    if problems:
        raise PipelineError(problems)
    order = list(nx.lexicographical_topological_sort(graph))
    return Pipeline(project, dict(specs), {n: tasks[n] for n in order}, graph, dict(pipeline_params))


def _link(project: Project, tasks: dict[str, Task], problems: list[Problem]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    writers: dict[str, list[str]] = defaultdict(list)  # path (folders without the "/") -> writing tasks
    folder_writers: dict[str, str] = {}
    for name, task in tasks.items():
        for path in task.output_paths:
            if paths.is_glob(path):
                problems.append(
                    Problem(
                        "glob-output",
                        f"{task.notebook}: parameters cell: the output {project.relative(path)} is a glob; outputs "
                        "are the paths a task writes. Declare the folder (ending in '/') when the files it writes "
                        "are only known at run time.",
                    )
                )
                continue
            key = path.rstrip("/") or "/"
            writers[key].append(name)
            if path.endswith("/"):
                folder_writers[key] = name
    _check_folder_ownership(project, tasks, writers, folder_writers, problems)
    for path, names in writers.items():
        if len(names) > 1:
            listed = " and ".join(f"{n} ({tasks[n].notebook})" for n in names)
            problems.append(
                Problem(
                    "duplicate-output",
                    f"{project.relative(path)} is declared as an output by {listed}; a "
                    "file must have one writer. Give each task its own path.",
                )
            )

    def add_edge(source: str, target: str, via: str | None, through_folder: bool = False) -> None:
        if source == target and through_folder:  # a task may read under the folder it writes
            return
        if not graph.has_edge(source, target):
            graph.add_edge(source, target, via=[])
        if via is not None and via not in graph.edges[source, target]["via"]:
            graph.edges[source, target]["via"].append(via)

    output_keys = sorted(writers)
    for name, task in tasks.items():
        for path in task.input_paths:
            if paths.is_glob(path):  # every task whose outputs it matches, or whose folder may hold matches
                for out in output_keys:
                    is_folder = out in folder_writers
                    if paths.may_hold_matches(out, path) if is_folder else paths.matches(path, out):
                        for writer in writers[out]:
                            add_edge(writer, name, path, through_folder=is_folder)
                continue
            key = path.rstrip("/") or "/"
            for writer in writers.get(key, ()):
                add_edge(writer, name, path, through_folder=key in folder_writers)
            parent = os.path.dirname(key)
            while parent and parent != key:  # an input under a folder some task writes
                if parent in folder_writers:
                    add_edge(folder_writers[parent], name, path, through_folder=True)
                key, parent = parent, os.path.dirname(parent)
            if path.endswith("/"):  # an input folder depends on whoever writes inside it
                prefix = path
                for out in output_keys:
                    if out.startswith(prefix):
                        for writer in writers[out]:
                            add_edge(writer, name, path)
        for upstream in task.spec.upstream:
            if upstream in tasks:
                add_edge(upstream, name, None)
            else:
                problems.append(
                    Problem(
                        "unknown-upstream",
                        f"{task.notebook}: parameters cell: `upstream` names "
                        f"{upstream!r}, which is no task"
                        f"{did_you_mean(upstream, tasks)}.",
                    )
                )

    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        cycle = [edge[0] for edge in nx.find_cycle(graph.subgraph(component))]
        start = cycle.index(min(cycle))
        cycle = cycle[start:] + cycle[:start]
        shown = " -> ".join(f"{n} ({tasks[n].notebook})" for n in cycle + [cycle[0]])
        links = "; ".join(_why_linked(project, graph, a, b) for a, b in zip(cycle, cycle[1:] + cycle[:1]))
        problems.append(
            Problem(
                "cycle",
                f"cycle: {shown}: {links}. Each task must run before the next, which cannot be; break the loop by "
                "removing one of these inputs or `upstream` names.",
            )
        )
    return graph


def _check_folder_ownership(
    project: Project,
    tasks: dict[str, Task],
    writers: Mapping[str, list[str]],
    folder_writers: Mapping[str, str],
    problems: list[Problem],
) -> None:
    """A folder output belongs to its task: another task declaring an output inside it is an error."""
    for folder, owner in folder_writers.items():
        for out, names in writers.items():
            if not paths.under(out, folder):
                continue
            for other in names:
                if other != owner:
                    problems.append(
                        Problem(
                            "overlapping-output",
                            f"{project.relative(out)} ({tasks[other].notebook}) lies inside the folder "
                            f"{project.relative(folder)}/, which {owner} ({tasks[owner].notebook}) declares as its "
                            "output: a folder output belongs to one task, whose fingerprint covers all it holds. "
                            "Give the other task a path outside it, or declare files instead of the folder.",
                        )
                    )


def _why_linked(project: Project, graph: nx.DiGraph, source: str, target: str) -> str:
    """Why `target` runs after `source`, in words: the files it reads that the other writes, or `upstream`."""
    via = graph.edges[source, target]["via"]
    if not via:
        return f"{target} names {source} in `upstream`"
    files = ", ".join(project.relative(p) for p in via)
    return f"{target} reads {files}, which {'it writes itself' if source == target else source + ' writes'}"
