"""The pipeline graph as text (levels), JSON, DOT and SVG: drawn by Graphviz, or without it from `nbflow.layout`.

Every drawing styles a task by its state from `nbflow.palette` and lays the graph out left to right.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from nbflow import palette
from nbflow.graph import Pipeline
from nbflow.layout import Box, Point, layered

if TYPE_CHECKING:
    import graphviz


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
    """The `graph --format json` object: tasks and edges, paths relative to the project root."""
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
    """Levels: every task of level n depends only on tasks of earlier levels, and lists them after `<-`."""
    graph = pipeline.graph
    order = {name: i for i, name in enumerate(pipeline.tasks)}
    levels = [sorted(level, key=order.__getitem__) for level in nx.topological_generations(graph)]
    width = max((len(n) for n in pipeline.tasks), default=0)
    nb_width = max((len(t.notebook) for t in pipeline.tasks.values()), default=0)
    lines = [f"{pipeline.project.root}: {len(pipeline.tasks)} task(s), {graph.number_of_edges()} edge(s)"]
    if not pipeline.tasks:
        lines.append(
            "no task notebooks found: a notebook is a task when its `parameters` cell assigns "
            "`inputs`, `outputs` or `upstream`."
        )
    for number, level in enumerate(levels, start=1):
        lines.append(f"level {number}")
        for name in level:
            task = pipeline.tasks[name]
            upstream = sorted(graph.predecessors(name), key=order.__getitem__)
            after = f"  <- {', '.join(upstream)}" if upstream else ""
            lines.append(f"  {name:<{width}}  {task.notebook:<{nb_width}}{after}".rstrip())
    return "\n".join(lines) + "\n"


# -- drawing ------------------------------------------------------------------------------------------------------

LABEL_LIMIT = 40  # more edges than this: files only on hover, or the drawing drowns in labels


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] + ("/" if path.endswith("/") else "")


def edge_label(via: list[str]) -> str:
    """The short label of an edge: the file names that link the two tasks (all of them are in its tooltip)."""
    names = [_file_name(v) for v in via]
    return "\n".join(names) if len(names) <= 2 else f"{names[0]}\n+{len(names) - 1} more"


def _edge_tooltip(edge: Mapping[str, Any]) -> str:
    return f"{edge['from']} -> {edge['to']}: " + (", ".join(edge["via"]) or "upstream (no file)")


def _second_line(state: str | None, note: str | None, states_shown: bool) -> str:
    """What a box says under the task's name: the note, else its state; nothing when no state is drawn at all."""
    return note or palette.label(state) or ("not in this run" if states_shown else "")


def _tooltip(name: str, notebook: str, state: str | None, note: str | None) -> str:
    shown = note or palette.label(state)
    return f"{name}\n{shown}\n{notebook}" if shown else f"{name}\n{notebook}"


def _drawn(pipeline: Pipeline, only: Iterable[str] | None) -> tuple[dict[str, Any], nx.DiGraph]:
    """The graph's JSON and DiGraph, restricted to the tasks in `only` (when given)."""
    data = to_dict(pipeline)
    if only is None:
        return data, pipeline.graph
    keep = set(only)
    data = {
        "tasks": [t for t in data["tasks"] if t["name"] in keep],
        "edges": [e for e in data["edges"] if e["from"] in keep and e["to"] in keep],
    }
    return data, pipeline.graph.subgraph(keep)


def neighbourhood(pipeline: Pipeline, names: Iterable[str]) -> set[str]:
    """The tasks and everything upstream and downstream of them: what a focused drawing shows."""
    keep = set()
    for name in names:
        if name in pipeline.graph:
            keep |= {name} | nx.ancestors(pipeline.graph, name) | nx.descendants(pipeline.graph, name)
    return keep


def to_dot(
    pipeline: Pipeline,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
) -> graphviz.Digraph:
    """A `graphviz.Digraph`; edges are labelled with the file(s) that link the two tasks.

    `states` (name -> state) styles the tasks from the palette and writes the state (or `notes[name]`, e.g.
    "succeeded · 3.2s") under the name. `labels=False` leaves the files to the edge tooltips; `only` draws just
    those tasks (and the edges between them).
    """
    import graphviz

    data, _ = _drawn(pipeline, only)
    dot = graphviz.Digraph(
        "nbflow",
        graph_attr={
            "rankdir": "LR",
            "fontname": "Helvetica",
            "bgcolor": "transparent",
            "nodesep": "0.22",
            "ranksep": "0.55",
        },
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fontname": "Helvetica",
            "fontsize": "13",
            "fontcolor": palette.TEXT_COLOR,
            "fillcolor": palette.UNKNOWN.fill,
            "color": palette.UNKNOWN.border,
            "penwidth": "1.3",
            "height": "0.4",
            "margin": "0.14,0.06",
        },
        edge_attr={
            "fontname": "Helvetica",
            "fontsize": "9.5",
            "fontcolor": palette.LABEL_COLOR,
            "color": palette.EDGE_COLOR,
            "arrowsize": "0.6",
            "penwidth": "1.1",
        },
    )
    for task in data["tasks"]:
        name = task["name"]
        state = states.get(name) if states else None
        note = notes.get(name) if notes else None
        look = palette.style(state)
        attrs = {"tooltip": _tooltip(name, task["notebook"], state, note), "fillcolor": look.fill, "color": look.border}
        if look.strong:
            attrs["penwidth"] = "2.6"
        if look.dashed:
            attrs["style"] = "rounded,filled,dashed"
        label = name
        if states is not None:
            second = html.escape(_second_line(state, note, True))
            label = f'<{html.escape(name)}<BR/><FONT POINT-SIZE="10" COLOR="{palette.LABEL_COLOR}">{second}</FONT>>'
        dot.node(name, label, **attrs)
    for edge in data["edges"]:
        label = edge_label(edge["via"]) if labels else ""
        dot.edge(edge["from"], edge["to"], label=label, tooltip=_edge_tooltip(edge))
    return dot


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is not installed."""


def to_svg(
    pipeline: Pipeline,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
) -> str:
    """The drawing by Graphviz's `dot` (GraphvizMissing when it is not installed)."""
    import graphviz

    try:
        svg: str = to_dot(pipeline, states, notes, labels, only).pipe(format="svg", encoding="utf-8")
        return svg
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing(
            "SVG needs Graphviz's `dot` program, which is not installed (Debian/Ubuntu: "
            "`apt-get install graphviz`; conda: `conda install graphviz`). `--format dot` writes "
            "the DOT source without it."
        ) from exc


def has_graphviz() -> bool:
    return shutil.which("dot") is not None


def draw_svg(
    pipeline: Pipeline,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    engine: str = "auto",
    only: Iterable[str] | None = None,
) -> str:
    """The graph as SVG with each task styled by its state: by Graphviz where `dot` is installed (and works), else
    from `nbflow.layout` (`engine` "graphviz" or "grandalf" forces one). Edge labels give way to tooltips on big
    graphs; `only` draws just those tasks."""
    only = None if only is None else set(only)
    labels = (
        pipeline.graph.number_of_edges() if only is None else pipeline.graph.subgraph(only).number_of_edges()
    ) <= LABEL_LIMIT
    if engine == "graphviz" or (engine == "auto" and has_graphviz()):
        try:
            return to_svg(pipeline, states=states or {}, notes=notes, labels=labels, only=only)
        except Exception:
            if engine == "graphviz":
                raise
    return svg_without_graphviz(pipeline, states or {}, notes, labels, only)


# -- the drawing without Graphviz: nbflow.layout's boxes and lines as SVG -------------------------------------------

_NAME_SIZE, _NOTE_SIZE, _LABEL_SIZE, _LABEL_LINE = 13.0, 10.0, 9.0, 11.0
_NARROW, _WIDE = set("ijlt.,:;|!'()[]/ -_f"), set("mwMW@%")


def _text_width(text: str, size: float) -> float:
    """An estimate of the rendered width of `text` in a sans-serif font of `size` px (no font metrics at hand)."""
    units = sum(0.3 if c in _NARROW else 0.86 if c in _WIDE else 0.66 if c.isupper() else 0.56 for c in text)
    return units * size


def _path(points: list[Point]) -> str:
    """A line through the points: straight where level or upright, else an S-curve with level ends."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        if abs(y1 - y0) < 0.5 or abs(x1 - x0) < 0.5:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            d.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(d)


def _label_boxes(
    edges: list[dict[str, Any]], gaps: Mapping[tuple[str, str], list[tuple[Point, Point]]], boxes: Iterable[Box]
) -> dict[tuple[str, str], tuple[Box, list[str]]]:
    """Where each edge's label goes: on the middle of its line in a gap between two layers, clear of the boxes and
    of the other labels. Shorter edges choose first; a label with no room is left to the edge's tooltip."""
    taken = list(boxes)
    placed = {}
    for edge in sorted((e for e in edges if e["via"]), key=lambda e: len(gaps[(e["from"], e["to"])])):
        key = (edge["from"], edge["to"])
        lines = edge_label(edge["via"]).split("\n")
        w, h = max(_text_width(line, _LABEL_SIZE) for line in lines) + 6, _LABEL_LINE * len(lines) + 2
        for (x0, y0), (x1, y1) in gaps[key]:
            box = Box((x0 + x1 - w) / 2, (y0 + y1 - h) / 2, w, h)
            if not any(box.overlaps(other) for other in taken):
                taken.append(box)
                placed[key] = (box, lines)
                break
    return placed


def svg_without_graphviz(
    pipeline: Pipeline,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
) -> str:
    """The graph drawn as SVG in pure Python (grandalf lays it out), styled as `to_svg` styles it."""
    data, graph = _drawn(pipeline, only)
    states, notes = states or {}, notes or {}
    esc = html.escape
    sizes, second = {}, {}
    for task in data["tasks"]:
        name = task["name"]
        second[name] = _second_line(states.get(name), notes.get(name), bool(states))
        width = max(_text_width(name, _NAME_SIZE), _text_width(second[name], _NOTE_SIZE)) + 26
        sizes[name] = (max(width, 64.0), 38.0 if second[name] else 28.0)
    label_width = max(
        (
            _text_width(line, _LABEL_SIZE)
            for e in data["edges"]
            if labels and e["via"]
            for line in edge_label(e["via"]).split("\n")
        ),
        default=0.0,
    )
    layout = layered(graph, sizes, [t["name"] for t in data["tasks"]], min(max(label_width + 24, 56.0), 180.0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" height="{layout.height:.0f}" '
        f'viewBox="0 0 {layout.width:.1f} {layout.height:.1f}" font-family="{palette.FONT}">',
        '<defs><marker id="nbflow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="{palette.EDGE_COLOR}"/></marker></defs>',
        '<g class="graph"><title>nbflow</title>',
    ]
    placed = _label_boxes(data["edges"], layout.gaps, layout.boxes.values()) if labels else {}
    for edge in data["edges"]:
        key = (edge["from"], edge["to"])
        d = _path(layout.routes[key])
        out.append(
            f'<g class="edge"><title>{esc(_edge_tooltip(edge))}</title>'
            f'<path d="{d}" fill="none" stroke="transparent" stroke-width="10"/>'
            f'<path d="{d}" fill="none" stroke="{palette.EDGE_COLOR}" stroke-width="1.2" '
            f'marker-end="url(#nbflow-arrow)"/>'
        )
        if key in placed:
            box, lines = placed[key]
            out.append(
                f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="3" '
                f'fill="#ffffff" fill-opacity="0.85"/>'
            )
            for i, line in enumerate(lines):
                out.append(
                    f'<text x="{box.x + box.w / 2:.1f}" y="{box.y + 10 + _LABEL_LINE * i:.1f}" text-anchor="middle" '
                    f'font-size="{_LABEL_SIZE:g}" fill="{palette.LABEL_COLOR}">{esc(line)}</text>'
                )
        out.append("</g>")
    for task in data["tasks"]:
        name = task["name"]
        box, state = layout.boxes[name], states.get(name)
        look = palette.style(state)
        dash = ' stroke-dasharray="4,3"' if look.dashed else ""
        tip = _tooltip(name, task["notebook"], state, notes.get(name))
        cx = box.x + box.w / 2
        out.append(
            f'<g class="node"><title>{esc(tip)}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="7" '
            f'fill="{look.fill}" stroke="{look.border}" stroke-width="{2.6 if look.strong else 1.3}"{dash}/>'
        )
        if second[name]:
            out.append(
                f'<text x="{cx:.1f}" y="{box.cy - 2:.1f}" text-anchor="middle" font-size="{_NAME_SIZE:g}" '
                f'fill="{palette.TEXT_COLOR}">{esc(name)}</text>'
                f'<text x="{cx:.1f}" y="{box.cy + 11:.1f}" text-anchor="middle" font-size="{_NOTE_SIZE:g}" '
                f'fill="{palette.LABEL_COLOR}">{esc(second[name])}</text>'
            )
        else:
            out.append(
                f'<text x="{cx:.1f}" y="{box.cy + 4.5:.1f}" text-anchor="middle" font-size="{_NAME_SIZE:g}" '
                f'fill="{palette.TEXT_COLOR}">{esc(name)}</text>'
            )
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"
