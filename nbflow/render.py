"""The pipeline graph as text (levels), JSON (SPEC section 4), DOT and SVG (Graphviz)."""

from __future__ import annotations

import json
from typing import Any, Mapping

import networkx as nx

from nbflow.graph import Pipeline


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
    return {p: _jsonable(task.params[p]) if p in task.params else param.source
            for p, param in task.spec.params.items()}


def to_dict(pipeline: Pipeline, status: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The `graph --format json` object: tasks and edges, paths relative to the project root."""
    rel = pipeline.project.relative

    def paths(values: list[str]) -> list[str]:
        return [rel(p) + ("/" if p.endswith("/") else "") for p in values]

    tasks = []
    for name, task in pipeline.tasks.items():
        entry = {
            "name": name,
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
    edges = [{"from": a, "to": b, "via": paths(data["via"])}
             for a, b, data in sorted(pipeline.graph.edges(data=True), key=lambda e: (order[e[1]], order[e[0]]))]
    return {"tasks": tasks, "edges": edges}


def to_json(pipeline: Pipeline) -> str:
    return json.dumps(to_dict(pipeline), indent=2, ensure_ascii=False) + "\n"


def to_text(pipeline: Pipeline) -> str:
    """Levels: every task of level n depends only on tasks of earlier levels, and lists them after `<-`."""
    graph = pipeline.graph
    order = {name: i for i, name in enumerate(pipeline.tasks)}
    levels = [sorted(level, key=order.get) for level in nx.topological_generations(graph)]
    width = max((len(n) for n in pipeline.tasks), default=0)
    nb_width = max((len(t.notebook) for t in pipeline.tasks.values()), default=0)
    lines = [f"{pipeline.project.root}: {len(pipeline.tasks)} task(s), {graph.number_of_edges()} edge(s)"]
    if not pipeline.tasks:
        lines.append("no task notebooks found: a notebook is a task when its `parameters` cell assigns "
                     "`inputs`, `outputs` or `upstream`.")
    for number, level in enumerate(levels, start=1):
        lines.append(f"level {number}")
        for name in level:
            task = pipeline.tasks[name]
            upstream = sorted(graph.predecessors(name), key=order.get)
            after = f"  <- {', '.join(upstream)}" if upstream else ""
            lines.append(f"  {name:<{width}}  {task.notebook:<{nb_width}}{after}".rstrip())
    return "\n".join(lines) + "\n"


def to_dot(pipeline: Pipeline, colors: Mapping[str, str] | None = None):
    """A `graphviz.Digraph`; edges are labelled with the file(s) that link the two tasks."""
    import graphviz

    data = to_dict(pipeline)
    dot = graphviz.Digraph("nbflow", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                      "fillcolor": "#f5f5f5", "color": "#888888"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#888888"})
    for task in data["tasks"]:
        attrs = {"tooltip": task["notebook"]}
        if colors and task["name"] in colors:
            attrs["fillcolor"] = colors[task["name"]]
        dot.node(task["name"], task["name"], **attrs)
    for edge in data["edges"]:
        label = "\n".join(v.rsplit("/", 1)[-1] or v for v in edge["via"])
        dot.edge(edge["from"], edge["to"], label=label, tooltip=", ".join(edge["via"]) or "upstream")
    return dot


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is not installed."""


def to_svg(pipeline: Pipeline, colors: Mapping[str, str] | None = None) -> str:
    import graphviz

    try:
        return to_dot(pipeline, colors).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing("SVG needs Graphviz's `dot` program, which is not installed (Debian/Ubuntu: "
                              "`apt-get install graphviz`; conda: `conda install graphviz`). `--format dot` writes "
                              "the DOT source without it.") from exc
