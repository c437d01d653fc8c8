"""The pipeline as JSON (every instance: the contract) and as text for a terminal (levels of tasks, a grid task's
instances under it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import networkx as nx

from nbflow.graph import Pipeline
from nbflow.grids import format_value
from nbflow.render.scene import Group, groups, linked
from nbflow.render.summary import values_text

LISTED = 10  # a grid task with more instances than this shows its values instead of every instance's name


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=repr)
    return repr(value)


def task_params(pipeline: Pipeline, name: str) -> dict[str, Any]:
    """Each parameter of a task with its value in force; an expression default shows as its source text."""
    task = pipeline.tasks[name]
    return {p: _jsonable(task.params[p]) if p in task.params else param.source for p, param in task.spec.params.items()}


def to_dict(pipeline: Pipeline, status: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The `graph --format json` object: every instance and every edge between instances, paths relative to the
    project root."""
    rel = pipeline.project.relative

    def paths(values: list[str]) -> list[str]:
        return [rel(p) for p in values]

    tasks = []
    for name, task in pipeline.tasks.items():
        entry = {
            "name": name,
            "task": task.base,
            "grid": _jsonable(task.grid),
            "notebook": task.notebook,
            "inputs": paths(task.input_paths),
            "outputs": paths(task.output_paths),
            "upstream": sorted(pipeline.graph.predecessors(name)),
            "params": task_params(pipeline, name),
        }
        if status is not None and name in status:
            entry["status"] = dict(status[name])
        tasks.append(entry)
    order = {name: i for i, name in enumerate(pipeline.tasks)}
    edges = [
        {"from": a, "to": b, "via": paths(data["via"])}
        for a, b, data in sorted(pipeline.graph.edges(data=True), key=lambda e: (order[e[1]], order[e[0]]))
    ]
    return {"tasks": tasks, "edges": edges}


def to_json(pipeline: Pipeline) -> str:
    return json.dumps(to_dict(pipeline), indent=2, ensure_ascii=False) + "\n"


def to_text(pipeline: Pipeline) -> str:
    """Levels: every task of level n depends only on tasks of earlier levels, and lists them after `<-`. A grid
    task is one line, its instances listed under it (up to LISTED; past that, the values of each grid name)."""
    found = groups(pipeline)
    graph = linked(pipeline, found)
    order = {name: i for i, name in enumerate(found)}
    width = max((len(n) for n in found), default=0)
    nb_width = max((len(g.notebook) for g in found.values()), default=0)
    counted = f"{len(found)} task(s), "
    if len(found) != len(pipeline.tasks):
        counted += f"{len(pipeline.tasks)} instance(s), "
    lines = [f"{pipeline.project.root}: {counted}{pipeline.graph.number_of_edges()} edge(s)"]
    if not pipeline.tasks:
        lines.append(
            "no task notebooks found: a notebook is a task when its `parameters` cell assigns "
            "`inputs`, `outputs` or `upstream`."
        )
    # a condensation, should linking the instances' tasks make a loop that the instances themselves do not
    condensed = nx.condensation(graph)
    for number, generation in enumerate(nx.topological_generations(condensed), start=1):
        lines.append(f"level {number}")
        level = sorted((n for part in generation for n in condensed.nodes[part]["members"]), key=order.__getitem__)
        for name in level:
            group = found[name]
            upstream = sorted(graph.predecessors(name), key=order.__getitem__)
            after = f"  <- {', '.join(upstream)}" if upstream else ""
            lines.append(f"  {name:<{width}}  {group.notebook:<{nb_width}}{after}".rstrip())
            if group.several:
                lines += _instance_lines(pipeline, group)
    return "\n".join(lines) + "\n"


def _instance_lines(pipeline: Pipeline, group: Group) -> list[str]:
    if len(group.instances) <= LISTED:
        return [f"    {instance}" for instance in group.instances]
    lines = [f"    {group.count_text}:"]
    spec = pipeline.specs[group.task]
    for key in group.varies:
        present = list(dict.fromkeys(format_value(pipeline.tasks[i].grid[key]) for i in group.instances))
        declared = pipeline.run_grid.get(key) or spec.grid.get(key) or []
        values = [v for v in declared if format_value(v) in set(present)] or present
        lines.append(f"      {key}: {values_text(values)} ({len(values)})")
    return lines
