"""TaskSpecs -> the Pipeline: task instances with their paths filled in, the dependency DiGraph, and every problem.

A task with a `grid`, or using a name of the run's grid, becomes one instance per value (the product, for several
names), each a node of its own: `daily_report[region=north]`. A task without either is one node named as the task.
Edge A -> B when a path B reads is a path A writes (after normalising both to absolute paths), lies under a folder
A writes, or is a folder holding what A writes; or when B's `upstream` names A. A task's report counts as one of
the paths it writes. All problems are collected before anything fails, so a user fixes them in one pass.
"""

from __future__ import annotations

import difflib
import gc
import itertools
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
from nbflow.grids import Selector, format_value, instance_name, parse_selector
from nbflow.params import PlaceholderError, fill, placeholders
from nbflow.project import Project, discover, load_project


@dataclass
class Task:
    """One task instance with the parameter values in force and its paths filled in and made absolute; for a task
    without a grid, the task itself."""

    name: str  # the instance's name: `base`, or `base[name=value,...]`
    spec: TaskSpec
    notebook: str  # relative to the project root
    params: dict[str, Any]  # values in force for the parameters the notebook assigns (expressions left out)
    inputs: PathsDeclared  # absolute, normalised; a folder keeps its trailing "/"
    outputs: PathsDeclared
    base: str = ""  # the task's name (its notebook's); the same as `name` without a grid
    grid: dict[str, Any] = field(default_factory=dict)  # this instance's grid values, in the grid's order
    report: str | None = None  # absolute, normalised: the HTML nbflow writes from the executed notebook
    # the instances that `upstream` names (set while linking): their last successes join the fingerprint
    upstream_tasks: list[Task] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.base = self.base or self.name

    @property
    def input_paths(self) -> list[str]:
        return paths_of(self.inputs)

    @property
    def output_paths(self) -> list[str]:
        """Every path the task writes: its outputs, then its report (which nbflow writes after a success)."""
        return paths_of(self.outputs) + ([self.report] if self.report else [])


@dataclass
class Pipeline:
    """The resolved pipeline: `tasks` in a stable topological order and `graph`, a networkx.DiGraph of names."""

    project: Project
    specs: dict[str, TaskSpec]
    tasks: dict[str, Task]
    graph: nx.DiGraph
    params: dict[str, Any] = field(default_factory=dict)
    run_grid: dict[str, list[Any]] = field(default_factory=dict)  # the run's own grid (`-g`), name -> values
    # tasks that assign a name of the run's grid but write a path that does not use it: run once, not per value
    grid_conflicts: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> {name: the problem, in words}

    @property
    def instances(self) -> dict[str, list[str]]:
        """Each task's instance names (one, named as the task, for a task that has no grid), in task order."""
        return instances_by_task(self.tasks)

    def matching(self, target: str) -> list[str]:
        """The instances a target names: a task (all of its instances), an instance, or some instances by some of
        their grid values (`daily_report[region=north]`); empty when it names none."""
        if target in self.tasks:
            return [target]
        selector = parse_selector(target)
        return [name for name, task in self.tasks.items() if selector.matches(task.base, task.grid)]

    def unknown_target(self, target: str) -> str:
        """Why `target` selects nothing, in words, with the closest names."""
        selector = parse_selector(target)
        if selector.task in self.specs and selector.values:
            return _no_instance(self, selector, target)
        return f"target `{target}` names no task{did_you_mean(selector.task, self.specs)}."

    def select(
        self, targets: Iterable[str] | None = None, upstream: bool = True, downstream: bool = False
    ) -> list[str]:
        """The targets and everything upstream of them, in dependency order (all tasks when no target); with
        `upstream=False` the targets alone, their upstream assumed done; with `downstream` everything downstream of
        the targets too (and, unless `upstream=False`, its upstream)."""
        if not targets:
            return list(self.tasks)
        targets = list(targets)
        chosen = {t: self.matching(t) for t in targets}
        unknown = [t for t, names in chosen.items() if not names]
        if unknown:
            raise PipelineError([Problem("unknown-target", self.unknown_target(t)) for t in unknown])
        wanted = {name for names in chosen.values() for name in names}
        for name in list(wanted) if downstream else []:
            wanted |= nx.descendants(self.graph, name)
        for name in list(wanted) if upstream else []:
            wanted |= nx.ancestors(self.graph, name)
        return [name for name in self.tasks if name in wanted]

    def with_params(
        self,
        params: Mapping[str, Any] | None = None,
        task_params: Mapping[str, Mapping[str, Any]] | None = None,
        run_grid: Mapping[str, list[Any]] | None = None,
    ) -> Pipeline:
        """The same tasks resolved again with other parameter values or a run grid (placeholders may move edges)."""
        # `replace` keeps the caller's class (the public API's Pipeline adds `run` to this one)
        return replace(self, **vars(resolve(self.project, self.specs, params, task_params, run_grid=run_grid)))


def instances_by_task(tasks: Mapping[str, Task]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, task in tasks.items():
        grouped.setdefault(task.base, []).append(name)
    return grouped


def _no_instance(pipeline: Pipeline, selector: Selector, target: str) -> str:
    names = pipeline.instances.get(selector.task, [])
    tasks = [pipeline.tasks[n] for n in names]
    grid_names = list(tasks[0].grid) if tasks else []
    unknown = [n for n in selector.values if n not in grid_names]
    if unknown:
        varies = ", ".join(grid_names) or "nothing: it has no grid"
        return f"target `{target}`: {selector.task} has no grid over {unknown[0]!r} (its instances vary {varies})."
    for name, shown in selector.values.items():
        values = list(dict.fromkeys(format_value(t.grid[name]) for t in tasks))
        if shown not in values:
            return (
                f"target `{target}`: {selector.task} has no instance with {name}={shown}"
                f"{did_you_mean(shown, values)}; its values of {name}: {', '.join(values[:10])}"
                f"{', ...' if len(values) > 10 else ''}."
            )
    return f"target `{target}`: no instance of {selector.task} has all of these values."


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
    *,
    run_grid: Mapping[str, list[Any]] | None = None,
) -> Pipeline:
    """Fill placeholders with the values in force, make each task's instances, link them by their paths and
    `upstream`, check the graph."""
    with _no_cyclic_gc():
        return _resolve(project, specs, params, task_params, problems, dict(run_grid or {}))


def _resolve(
    project: Project,
    specs: Mapping[str, TaskSpec],
    params: Mapping[str, Any] | None,
    task_params: Mapping[str, Mapping[str, Any]] | None,
    problems: list[Problem] | None,
    run_grid: dict[str, list[Any]],
) -> Pipeline:
    problems = list(problems or [])
    pipeline_params = {**project.params, **(params or {})}
    task_params = task_params or {}
    tasks: dict[str, Task] = {}
    used_params: set[str] = set()
    conflicts: dict[str, dict[str, str]] = {}
    unfilled: set[str] = set()

    for base, spec in specs.items():
        values = {p.name: p.value for p in spec.params.values() if p.literal}
        set_outside = {k: v for k, v in pipeline_params.items() if k in spec.params}
        set_outside.update(task_params.get(base, {}))
        values.update(set_outside)
        used_params.update(k for k in pipeline_params if k in spec.params)
        folder = spec.notebook.parent
        display = project.relative(spec.notebook)
        grid = _instance_grid(base, spec, display, set_outside, run_grid, problems, conflicts)

        for combination in itertools.product(*grid.values()):
            chosen = dict(zip(grid, combination))
            instance_values = {**values, **chosen}
            # Placeholders see the instance's own values first, then any pipeline parameter.
            lookup = {**pipeline_params, **instance_values}
            name = instance_name(base, chosen)

            def fill_path(
                template: str, _lookup: dict[str, Any] = lookup, _folder: Path = folder, _display: str = display
            ) -> str:
                try:
                    used_params.update(n for n in placeholders(template) if n in pipeline_params)
                    return _absolute(_folder, fill(template, _lookup))
                except PlaceholderError as exc:  # the same for every instance: reported once, below
                    problems.append(Problem("placeholder", f"{_display}: parameters cell: {exc}."))
                    unfilled.add(_absolute(_folder, template).rstrip("/"))
                    return _absolute(_folder, template)

            tasks[name] = Task(
                name,
                spec,
                display,
                instance_values,
                map_paths(spec.inputs, fill_path),
                map_paths(spec.outputs, fill_path),
                base=base,
                grid=chosen,
                report=fill_path(spec.report) if spec.report else None,
            )

    unused = sorted(set(project.params) - used_params)
    for key in unused:
        where = project.settings_file
        table = "[secrets]" if key in project.secrets else "[params]"
        problems.append(
            Problem(
                "config",
                f"{where}: {table} sets `{key}`, but no task notebook assigns it in its "
                "parameters cell and no path uses {" + key + "}; remove it or fix its name.",
            )
        )

    if not project.outputs_outside_root:
        root = str(project.root).rstrip("/") + "/"
        for task in tasks.values():
            for path in task.output_paths:
                what = "report" if path == task.report else "output"
                if not (path.rstrip("/") + "/").startswith(root):
                    problems.append(
                        Problem(
                            "output-outside-root",
                            (
                                f"{task.notebook}: parameters cell: the {what} {path} lies outside the project root "
                                f"{project.root}; write it inside the project, or allow it with "
                                "`outputs_outside_root = true` in nbflow.toml."
                            ),
                        )
                    )
    graph = _link(project, tasks, problems, unfilled)
    if problems:
        raise PipelineError(list(dict.fromkeys(problems)))  # each instance of a task finds its task's mistakes
    # ties broken by task name, then by the instance's place in its grid (n=2 before n=10)
    rank = {name: (task.base, i) for i, (name, task) in enumerate(tasks.items())}
    order = list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))
    return Pipeline(
        project, dict(specs), {n: tasks[n] for n in order}, graph, dict(pipeline_params), run_grid, conflicts
    )


def _instance_grid(
    base: str,
    spec: TaskSpec,
    display: str,
    set_outside: Mapping[str, Any],
    run_grid: Mapping[str, list[Any]],
    problems: list[Problem],
    conflicts: dict[str, dict[str, str]],
) -> dict[str, list[Any]]:
    """The names and values this task's instances vary: the names of the run's grid it uses (assigns, or puts in a
    path), then the rest of its own grid, where a value set from outside narrows a name to that value."""
    grid: dict[str, list[Any]] = {}
    if run_grid:
        templates = paths_of(spec.inputs) + spec.written
        used = set(spec.params).union(*(_names_in(t) for t in templates))
        for name, values in run_grid.items():
            if name not in used:
                continue
            fixed = [path for path in spec.written if name not in _names_in(path)]
            if fixed:
                what = "report" if fixed[0] == spec.report else "output"
                conflicts.setdefault(base, {})[name] = (
                    f"{display} uses `{name}`, but its {what} {fixed[0]!r} does not use {{{name}}}, so one instance "
                    f"per value would write that one file; put {{{name}}} in the path, or leave {base} out of the run"
                )
                continue
            grid[name] = list(values)
    for name, own in spec.grid.items():
        if name in grid:
            continue  # the run's values replace the task's own
        if name not in set_outside:
            grid[name] = list(own)
        elif set_outside[name] in own:
            grid[name] = [set_outside[name]]
        else:
            shown = ", ".join(format_value(v) for v in own)
            problems.append(
                Problem(
                    "grid-value",
                    f"{display}: {name}={format_value(set_outside[name])} is set for this run, but the task's grid "
                    f"runs {name} over {shown} only; pick one of those, or add the value to the grid.",
                )
            )
            grid[name] = list(own)
    return grid


def _names_in(template: str) -> set[str]:
    try:
        return set(placeholders(template))
    except ValueError:
        return set()  # an invalid template: reported when it is filled


def _link(project: Project, tasks: dict[str, Task], problems: list[Problem], unfilled: set[str]) -> nx.DiGraph:
    """The edges, and the problems of outputs; `unfilled` are the paths whose template could not be filled (already
    reported: every instance of their task shares them, which is no second writer)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    instances = instances_by_task(tasks)
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
        if len(names) > 1 and path not in unfilled:
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

    # sorted, so the outputs a glob or a folder may name are found by bisection: linking stays near linear in the
    # number of instances even where every instance of a grid is read through a glob
    output_keys = sorted(writers)
    for name, task in tasks.items():
        for path in task.input_paths:
            if paths.is_glob(path):  # every task whose outputs it matches, or whose folder may hold matches
                for out in paths.starting_with(paths.literal_prefix(path), output_keys):
                    if out not in folder_writers and paths.matches(path, out):
                        for writer in writers[out]:
                            add_edge(writer, name, path)
                for out, writer in folder_writers.items():
                    if paths.may_hold_matches(out, path):
                        add_edge(writer, name, path, through_folder=True)
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
                for out in paths.starting_with(path, output_keys):
                    for writer in writers[out]:
                        add_edge(writer, name, path)
        for upstream in task.spec.upstream:
            if upstream not in instances:
                problems.append(
                    Problem(
                        "unknown-upstream",
                        f"{task.notebook}: parameters cell: `upstream` names "
                        f"{upstream!r}, which is no task"
                        f"{did_you_mean(upstream, instances)}.",
                    )
                )
                continue
            for other in instances[upstream]:  # an instance follows the instances with the same grid values
                source = tasks[other]
                if all(source.grid.get(k, v) == v for k, v in task.grid.items()):
                    add_edge(other, name, None)
                    task.upstream_tasks.append(source)

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
    ordered = sorted(writers)
    for folder, owner in folder_writers.items():
        for out in paths.starting_with(folder.rstrip("/") + "/", ordered):
            for other in writers[out]:
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
