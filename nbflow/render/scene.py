"""What a drawing of the pipeline shows, before Graphviz or the built-in layout draws it: its nodes (a grid task's
instances drawn as one), what each says and how it looks, and the edges between the nodes.

A task with several instances in the drawing is one node named as the task, saying how many instances it has and,
when states are shown, how many are in which state, in the look of the most urgent one (`nbflow.render.summary`).
The edges between the instances of two such nodes become one, labelled with the paths as the notebook declares
them wherever the instances read different files (`clean/{day}.csv`). A task drawn with one instance is that
instance, under its own name.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from nbflow import palette
from nbflow.declare import paths_of
from nbflow.graph import Pipeline
from nbflow.grids import format_value
from nbflow.params import fill, placeholders
from nbflow.render.summary import counts_text, most_urgent

LABEL_LIMIT = 40  # more edges than this: files only on hover, or the drawing drowns in labels
_TOOLTIP_NAMES = 5  # instances named in a node's tooltip, per state that needs a look


@dataclass
class Group:
    """The instances of one task that a drawing shows, as one node."""

    name: str  # the node's name: the task's, or the instance's own when it is the only one drawn
    task: str
    notebook: str
    instances: list[str]
    varies: list[str]  # the grid names whose values differ among the instances

    @property
    def several(self) -> bool:
        return len(self.instances) > 1

    @property
    def count_text(self) -> str:
        """`5 instances (region)`."""
        return f"{len(self.instances)} instances" + (f" ({' × '.join(self.varies)})" if self.varies else "")


def in_grid_order(pipeline: Pipeline, names: Iterable[str]) -> list[str]:
    """Instances of one task in the order of their grid's values as declared (`n=2` before `n=10`, regions as
    listed), not in the order of their names."""
    names = list(names)
    if len(names) < 2:
        return names
    base = pipeline.tasks[names[0]].base
    declared = {**pipeline.specs[base].grid, **pipeline.run_grid}
    position = {key: {format_value(v): i for i, v in enumerate(values)} for key, values in declared.items()}

    def place(name: str) -> tuple[int, ...]:
        grid = pipeline.tasks[name].grid
        return tuple(position.get(key, {}).get(format_value(value), -1) for key, value in grid.items())

    return sorted(names, key=place)


def groups(pipeline: Pipeline, only: Iterable[str] | None = None) -> dict[str, Group]:
    """The nodes of a drawing of the instances in `only` (all when None) by name, in task order; each node's
    instances in grid order."""
    keep = None if only is None else set(only)
    by_task: dict[str, list[str]] = {}
    for name, task in pipeline.tasks.items():
        if keep is None or name in keep:
            by_task.setdefault(task.base, []).append(name)
    found: dict[str, Group] = {}
    for base, unordered in by_task.items():
        names = in_grid_order(pipeline, unordered)
        first = pipeline.tasks[names[0]]
        varies = [key for key in first.grid if len({format_value(pipeline.tasks[n].grid.get(key)) for n in names}) > 1]
        group = Group(base if len(names) > 1 else names[0], base, first.notebook, names, varies)
        found[group.name] = group
    return found


def linked(pipeline: Pipeline, found: Mapping[str, Group]) -> nx.DiGraph:
    """The graph of the nodes: an edge where an instance of one links to an instance of the other. `via` holds the
    paths that link them (relative to the root), `links` how many edges between instances it stands for."""
    owner = {instance: group.name for group in found.values() for instance in group.instances}
    collected: dict[tuple[str, str], list[tuple[str, list[str]]]] = defaultdict(list)
    for a, b, data in pipeline.graph.edges(data=True):
        source, target = owner.get(a), owner.get(b)
        if source is not None and target is not None and source != target:
            collected[(source, target)].append((b, data["via"]))
    order = {name: i for i, name in enumerate(found)}
    graph = nx.DiGraph()
    graph.add_nodes_from(found)
    for source, target in sorted(collected, key=lambda e: (order[e[1]], order[e[0]])):
        links = collected[(source, target)]
        graph.add_edge(source, target, via=_via(pipeline, links), links=len(links))
    return graph


def _via(pipeline: Pipeline, links: list[tuple[str, list[str]]]) -> list[str]:
    """The paths linking two nodes; where the instances read different files, each path as declared, with the
    placeholders whose values differ left in (`clean/{day}.csv`)."""
    relative = pipeline.project.relative
    filled = list(dict.fromkeys(relative(path) for _, via in links for path in via))
    if len(filled) <= 1:
        return filled
    try:
        return _declared_paths(pipeline, links)
    except (ValueError, KeyError, IndexError, TypeError):  # a template `str.format` cannot refill: the files, then
        return filled


def _declared_paths(pipeline: Pipeline, links: list[tuple[str, list[str]]]) -> list[str]:
    values_by_template: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for reader, via in links:
        task = pipeline.tasks[reader]
        templates = paths_of(task.spec.inputs)
        for path in via:
            template = templates[task.input_paths.index(path)]
            values_by_template[(task.base, template)].append({**pipeline.params, **task.params})
    shown = []
    for (base, template), lookups in values_by_template.items():
        names = placeholders(template)
        lookup = {
            name: "{" + name + "}" if len({repr(values.get(name)) for values in lookups}) > 1 else lookups[0][name]
            for name in names
        }
        folder = pipeline.specs[base].notebook.parent
        path = os.path.normpath(os.path.join(folder, os.path.expanduser(fill(template, lookup))))
        shown.append(pipeline.project.relative(path) + ("/" if template.endswith("/") else ""))
    return list(dict.fromkeys(shown))


def neighbourhood(pipeline: Pipeline, names: Iterable[str]) -> set[str]:
    """The instances named (a task's name names all of its instances), and everything upstream and downstream of
    them: what a focused drawing shows."""
    keep: set[str] = set()
    for name in names:
        for instance in pipeline.matching(name):
            keep |= {instance} | nx.ancestors(pipeline.graph, instance) | nx.descendants(pipeline.graph, instance)
    return keep


# -- the scene ---------------------------------------------------------------------------------------------------


@dataclass
class Node:
    """A box of the drawing: its lines (the name, then smaller ones under it), its tooltip and its state's look."""

    name: str
    lines: list[str]
    tooltip: str
    state: str | None
    several: bool  # a task's instances drawn as one: outlined twice


@dataclass
class Link:
    """An edge of the drawing."""

    source: str
    target: str
    via: list[str]  # the paths that link the two (none for `upstream`)
    links: int  # how many edges between instances it stands for

    @property
    def tooltip(self) -> str:
        between = f" ({self.links} edges between instances)" if self.links > 1 else ""
        return f"{self.source} -> {self.target}: " + (", ".join(self.via) or "upstream (no file)") + between


@dataclass
class Scene:
    nodes: dict[str, Node]  # in task order
    links: list[Link]  # in the order of their targets, then of their sources
    graph: nx.DiGraph  # of the nodes' names


def scene(
    pipeline: Pipeline,
    states: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> Scene:
    """The drawing of the instances in `only` (all when None). `states` (instance -> state) styles the nodes and
    writes the state under each name (or `notes[instance]`, e.g. "succeeded · 3.2s"); a node of several instances
    counts them by state instead."""
    states, notes = states or {}, notes or {}
    shown = bool(states)
    found = groups(pipeline, only)
    graph = linked(pipeline, found)
    nodes = {}
    for group in found.values():
        nodes[group.name] = (
            _grid_node(group, states, shown) if group.several else _instance_node(group, states, notes, shown)
        )
    links = [Link(a, b, data["via"], data["links"]) for a, b, data in graph.edges(data=True)]
    return Scene(nodes, links, graph)


def _instance_node(group: Group, states: Mapping[str, str | None], notes: Mapping[str, str], shown: bool) -> Node:
    name = group.name
    state, note = states.get(name), notes.get(name)
    said = note or palette.label(state)
    second = said or ("not in this run" if shown else "")
    tooltip = "\n".join(line for line in (name, said, group.notebook) if line)
    return Node(name, [name, second] if second else [name], tooltip, state, False)


def _grid_node(group: Group, states: Mapping[str, str | None], shown: bool) -> Node:
    found = [states.get(instance) for instance in group.instances]
    lines = [group.task, group.count_text]
    tooltip = [group.task, group.count_text]
    if shown:
        missing = sum(1 for state in found if not state)
        counts = counts_text(found)
        lines.append(" · ".join(filter(None, [counts, f"{missing} not in this run" if missing else ""])))
        tooltip.append(counts_text(found, palette.label, sep=", "))
        for state in ("running", "failed", "upstream_failed", "waiting"):
            named = [i for i, s in zip(group.instances, found) if s == state]
            if named:
                more = f" and {len(named) - _TOOLTIP_NAMES} more" if len(named) > _TOOLTIP_NAMES else ""
                tooltip.append(f"{palette.label(state)}: {', '.join(named[:_TOOLTIP_NAMES])}{more}")
    tooltip.append(group.notebook)
    return Node(group.name, lines, "\n".join(filter(None, tooltip)), most_urgent(found), True)


# -- edge labels ----------------------------------------------------------------------------------------------------


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] + ("/" if path.endswith("/") else "")


def edge_label(via: list[str]) -> str:
    """The short label of an edge: the file names that link the two tasks (all of them are in its tooltip)."""
    names = [_file_name(v) for v in via]
    return "\n".join(names) if len(names) <= 2 else f"{names[0]}\n+{len(names) - 1} more"
