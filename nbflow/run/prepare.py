"""A run before it starts: its parameters and grid split and checked, its task instances selected, its sources
and secrets checked, and what papermill injects into each instance. Nothing runs here, so every mistake is reported
before any kernel starts.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nbflow import paths, preflight
from nbflow.declare import PathsDeclared
from nbflow.errors import PipelineError, Problem, UsageError
from nbflow.graph import Pipeline, Task, did_you_mean
from nbflow.masking import secrets_in
from nbflow.params import oversized
from nbflow.project import Project


@dataclass
class Prepared:
    """A run's pipeline resolved with its parameters, its selected tasks (dependency order) and per-task values."""

    pipeline: Pipeline
    selected: list[str]
    task_params: dict[str, dict[str, Any]]

    @property
    def recorded_params(self) -> dict[str, Any]:
        """The run's parameters as the store keeps them: pipeline values, then `TASK.NAME` ones."""
        per_task = {f"{t}.{k}": v for t, values in self.task_params.items() for k, v in values.items()}
        grid = self.pipeline.run_grid  # a name the run's grid varies has no one value: the run's `grid` has them
        return {**{k: v for k, v in self.pipeline.params.items() if k not in grid}, **per_task}


def new_run_id() -> str:
    """Sorts by start time: UTC timestamp to the millisecond, then a random suffix."""
    stamp = time.time()
    millis = int(stamp * 1000) % 1000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(stamp)) + f"{millis:03d}-" + secrets.token_hex(2)


def split_params(params: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`{"x": 1, "clean.y": 2}` -> pipeline parameters `{"x": 1}` and per-task ones `{"clean": {"y": 2}}`."""
    pipeline_params: dict[str, Any] = {}
    task_params: dict[str, dict[str, Any]] = {}
    for key, value in (params or {}).items():
        if "." in key:
            task, name = key.rsplit(".", 1)
            task_params.setdefault(task, {})[name] = value
        else:
            pipeline_params[key] = value
    return pipeline_params, task_params


def prepare(
    pipeline: Pipeline,
    targets: Iterable[str] | None,
    params: Mapping[str, Any] | None,
    grid: Mapping[str, Iterable[Any]] | None = None,
    upstream: bool = True,
    downstream: bool = False,
) -> Prepared:
    """Resolve with the run's parameters and grid, select the instances (the targets, with `downstream` what lies
    downstream of them, and, unless `upstream` is False, their upstream), and check every name given; nothing
    runs yet."""
    pipeline_params, task_params = split_params(params)
    run_grid = {name: list(values) for name, values in (grid or {}).items()}
    targets = list(targets) if targets else None
    problems = _secrets_given(pipeline.project, pipeline_params, task_params, run_grid)
    problems += oversized((params or {}).items())
    problems += oversized(((name, value) for name, values in run_grid.items() for value in values), "-g")
    problems += [
        f"-g {name}: it is also set with -p {name}; give a name either one value (-p) or several (-g)."
        for name in run_grid
        if name in pipeline_params
    ]
    problems += [f"-g {name}: no values given." for name, values in run_grid.items() if not values]
    for task, names in task_params.items():
        spec = pipeline.specs.get(task)
        if spec is None:
            first = next(iter(names))
            problems.append(f"parameter `{task}.{first}`: `{task}` is no task{did_you_mean(task, pipeline.specs)}.")
            continue
        problems += [
            f"parameter `{task}.{name}`: {spec.notebook.name} does not assign `{name}` in its parameters cell"
            f"{did_you_mean(name, spec.params)}."
            for name in names
            if name not in spec.params
        ]
    if problems:
        raise UsageError.listing(problems)
    resolved = pipeline.with_params(pipeline_params, task_params, run_grid) if params or run_grid else pipeline
    unknown = [resolved.unknown_target(t) for t in targets or [] if not resolved.matching(t)]
    if unknown:
        raise UsageError.listing(unknown)
    selected = resolved.select(targets, upstream, downstream)
    bases = {resolved.tasks[name].base for name in selected}
    known = set(pipeline.project.params).union(*(resolved.specs[t].params for t in bases))
    problems = [
        f"parameter `{name}`: no selected task assigns `{name}` in its parameters cell{did_you_mean(name, known)}; "
        "check the name."
        for name in pipeline_params
        if name not in known
    ]
    varied = {name for t in selected for name in resolved.tasks[t].grid}
    problems += [
        f"-g {name}: no selected task uses `{name}` (assigns it in its parameters cell, or puts {{{name}}} in a "
        f"path){did_you_mean(name, known)}; check the name."
        for name in run_grid
        if name not in varied and not any(name in resolved.grid_conflicts.get(t, {}) for t in bases)
    ]
    problems += [f"-g: {why}." for t in sorted(bases) for why in resolved.grid_conflicts.get(t, {}).values()]
    if problems:
        raise UsageError.listing(problems)
    found = preflight.problems(resolved, selected) + _missing_secrets(resolved, selected)
    if found:
        raise PipelineError(found)
    return Prepared(resolved, selected, task_params)


def _secrets_given(
    project: Project,
    pipeline_params: Mapping[str, Any],
    task_params: Mapping[str, Mapping[str, Any]],
    run_grid: Mapping[str, Any],
) -> list[str]:
    """A value given for a secret (-p, -p TASK.NAME, -g) is refused: a command line ends up in shell histories and
    process lists, and a schedule or a request would keep it."""
    given = [(f"-p {name}", name) for name in pipeline_params]
    given += [(f"-p {task}.{name}", name) for task, names in task_params.items() for name in names]
    given += [(f"-g {name}", name) for name in run_grid]
    return [
        f"{option}: `{name}` is a secret, read from the environment variable {project.secrets[name]} "
        f"({project.settings_file} [secrets]), so it takes no value here; set {project.secrets[name]} in the "
        "environment nbflow runs in instead."
        for option, name in given
        if name in project.secrets
    ]


def _missing_secrets(pipeline: Pipeline, selected: list[str]) -> list[Problem]:
    """Secrets the selected tasks read whose environment variable is not set."""
    where = pipeline.project.settings_file
    missing: dict[tuple[str, str], list[str]] = {}  # (secret, variable) -> the tasks reading it
    for name in selected:
        task = pipeline.tasks[name]
        for param, variable in secrets_in(task.params).items():
            if variable in os.environ:
                continue
            readers = missing.setdefault((param, variable), [])
            if task.base not in readers:
                readers.append(task.base)
    return [
        Problem(
            "missing-secret",
            f"{where}: [secrets] reads `{param}` from the environment variable {variable}, which is not set "
            f"({', '.join(tasks)} {'assigns' if len(tasks) == 1 else 'assign'} `{param}`); set {variable} in the "
            "environment nbflow runs in (export it in the shell, or in the scheduler's service), then run again.",
        )
        for (param, variable), tasks in missing.items()
    ]


def injected_parameters(pipeline: Pipeline, task: Task, task_params: Mapping[str, Any]) -> dict[str, Any]:
    """What papermill injects: inputs/outputs as paths that open from the notebook's folder, relative where the
    declaration was relative (so executed notebooks stay portable), and the parameters set from outside."""
    folder = task.spec.notebook.parent

    def portable_path(declared: str, filled: str) -> str:
        if os.path.isabs(os.path.expanduser(declared)):
            return filled
        relative = os.path.relpath(filled, folder)
        return relative + "/" if filled.endswith("/") else relative

    def portable_value(declared: str, filled: str) -> str | list[str]:
        # a glob becomes the sorted list of the files it matches as the task starts
        if paths.is_glob(filled):
            return [portable_path(declared, match) for match in paths.expand(filled)]
        return portable_path(declared, filled)

    def portable(declared: PathsDeclared, filled: PathsDeclared) -> Any:
        # `filled` has the shape of `declared`: the graph fills each path where it stands
        if isinstance(declared, dict) and isinstance(filled, dict):
            return {key: portable_value(declared[key], filled[key]) for key in declared}
        if isinstance(declared, list) and isinstance(filled, list):
            flat: list[str] = []  # a glob in a list of paths adds its matches in its place
            for d, f in zip(declared, filled):
                value = portable_value(d, f)
                flat.extend(value if isinstance(value, list) else [value])
            return flat
        assert isinstance(declared, str) and isinstance(filled, str)
        return portable_value(declared, filled)

    injected = {k: v for k, v in task.params.items() if k in pipeline.params or k in task_params or k in task.grid}
    parameters_cell = task.spec.parameters_source
    if task.spec.report and task.report:  # where nbflow writes the report, as the notebook may link to it
        injected["report"] = portable_path(task.spec.report, task.report)
    for name in ("inputs", "outputs"):
        declared = getattr(task.spec, name)
        # an explicitly empty declaration is injected too, so the notebook sees what the pipeline sees
        if declared or (declared == [] and name in parameters_cell):
            injected[name] = portable(declared, getattr(task, name))
    return injected
