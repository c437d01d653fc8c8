"""The pipeline graph as text (levels), JSON (SPEC section 4), DOT and SVG (Graphviz)."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

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
    return {p: _jsonable(task.params[p]) if p in task.params else param.source for p, param in task.spec.params.items()}


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
    levels = [sorted(level, key=order.get) for level in nx.topological_generations(graph)]
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
            upstream = sorted(graph.predecessors(name), key=order.get)
            after = f"  <- {', '.join(upstream)}" if upstream else ""
            lines.append(f"  {name:<{width}}  {task.notebook:<{nb_width}}{after}".rstrip())
    return "\n".join(lines) + "\n"


# -- states and their colours ----------------------------------------------------------------------------------

# Every state a task can be shown in: its status when no run is in view (SPEC section 4: never_run, up_to_date,
# stale, failed), else its state in a run (SPEC section 3). Light fills keep the dark text legible; the border
# carries the hue, and the state is also written under the name, so nothing depends on colour alone.
STATE_STYLE: dict[str, tuple[str, str, str]] = {  # state: (fill, border, label)
    "never_run": ("#ffffff", "#94a3b8", "never run"),
    "up_to_date": ("#dcfce7", "#4ade80", "up to date"),
    "stale": ("#fef3c7", "#d97706", "stale"),
    "pending": ("#f1f5f9", "#64748b", "pending"),
    "running": ("#bfdbfe", "#1d4ed8", "running"),
    "succeeded": ("#86efac", "#15803d", "succeeded"),
    "failed": ("#fca5a5", "#b91c1c", "failed"),
    "upstream_failed": ("#fed7aa", "#c2410c", "upstream failed"),
    "skipped": ("#ccfbf1", "#0d9488", "skipped (up to date)"),
    "cancelled": ("#d4d4d8", "#52525b", "cancelled"),
}
STATES = tuple(STATE_STYLE)
STATE_COLORS = {state: style[0] for state, style in STATE_STYLE.items()}
DEFAULT_FILL, DEFAULT_BORDER = "#f8fafc", "#94a3b8"  # a task with no state to show
EDGE_COLOR, LABEL_COLOR, TEXT_COLOR = "#94a3b8", "#475569", "#0f172a"
FONT = "Helvetica, Arial, sans-serif"
LABEL_LIMIT = 40  # more edges than this: files only on hover, or the drawing drowns in labels


def state_colors(states: Mapping[str, str]) -> dict[str, str]:
    """Task name -> the fill colour of its state."""
    return {name: STATE_STYLE[state][0] for name, state in states.items() if state in STATE_STYLE}


def state_label(state: str | None) -> str:
    return STATE_STYLE[state][2] if state in STATE_STYLE else (state or "").replace("_", " ")


def legend_html(states: Iterable[str] = STATES) -> str:
    """The colour key as a row of swatches (HTML), for the panel and any page showing a drawing."""
    items = []
    for state in states:
        fill, border, label = STATE_STYLE[state]
        items.append(
            f'<span style="display:inline-flex;align-items:center;margin:0 12px 4px 0;white-space:nowrap">'
            f'<span style="display:inline-block;width:14px;height:14px;border-radius:4px;background:{fill};'
            f'border:1.5px {"dashed" if state == "never_run" else "solid"} {border};margin-right:5px">'
            f"</span>{html.escape(label)}</span>"
        )
    return (
        f'<div style="font-family:{FONT};font-size:12px;color:{LABEL_COLOR};display:flex;flex-wrap:wrap">'
        + "".join(items)
        + "</div>"
    )


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] + ("/" if path.endswith("/") else "")


def edge_label(via: list[str]) -> str:
    """The short label of an edge: the file names that link the two tasks (all of them are in its tooltip)."""
    names = [_file_name(v) for v in via]
    return "\n".join(names) if len(names) <= 2 else f"{names[0]}\n+{len(names) - 1} more"


def _tooltip(name: str, notebook: str, state: str | None, note: str | None) -> str:
    shown = note or state_label(state)
    return f"{name}\n{shown}\n{notebook}" if shown else f"{name}\n{notebook}"


def to_dot(
    pipeline: Pipeline,
    colors: Mapping[str, str] | None = None,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
):
    """A `graphviz.Digraph`; edges are labelled with the file(s) that link the two tasks.

    `colors` fills nodes by name; `states` (name -> state) styles them from STATE_STYLE and writes the state (or
    `notes[name]`, e.g. "succeeded · 3.2s") under the name. `labels=False` leaves the files to the edge tooltips;
    `only` draws just those tasks (and the edges between them).
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
            "fontcolor": TEXT_COLOR,
            "fillcolor": DEFAULT_FILL,
            "color": DEFAULT_BORDER,
            "penwidth": "1.3",
            "height": "0.4",
            "margin": "0.14,0.06",
        },
        edge_attr={
            "fontname": "Helvetica",
            "fontsize": "9.5",
            "fontcolor": LABEL_COLOR,
            "color": EDGE_COLOR,
            "arrowsize": "0.6",
            "penwidth": "1.1",
        },
    )
    for task in data["tasks"]:
        name = task["name"]
        state = states.get(name) if states else None
        note = notes.get(name) if notes else None
        attrs = {"tooltip": _tooltip(name, task["notebook"], state, note)}
        label = name
        if state in STATE_STYLE:
            fill, border, _ = STATE_STYLE[state]
            attrs.update(fillcolor=fill, color=border)
            if state == "running":
                attrs["penwidth"] = "2.6"
            elif state == "never_run":
                attrs["style"] = "rounded,filled,dashed"
        if states is not None:
            second = html.escape(note or state_label(state) or "not in this run")
            label = f'<{html.escape(name)}<BR/><FONT POINT-SIZE="10" COLOR="{LABEL_COLOR}">{second}</FONT>>'
        if colors and name in colors:
            attrs["fillcolor"] = colors[name]
        dot.node(name, label, **attrs)
    for edge in data["edges"]:
        label = edge_label(edge["via"]) if labels else ""
        tooltip = f"{edge['from']} -> {edge['to']}: " + (", ".join(edge["via"]) or "upstream (no file)")
        dot.edge(edge["from"], edge["to"], label=label, tooltip=tooltip)
    return dot


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is not installed."""


def to_svg(
    pipeline: Pipeline,
    colors: Mapping[str, str] | None = None,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
) -> str:
    """The drawing by Graphviz's `dot` (GraphvizMissing when it is not installed)."""
    import graphviz

    try:
        return to_dot(pipeline, colors, states, notes, labels, only).pipe(format="svg", encoding="utf-8")
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
    """The graph as SVG with each task styled by its state: Graphviz where `dot` is installed, else the layered
    layout below (`engine` "graphviz" or "layered" forces one). Edge labels give way to tooltips on big graphs;
    `only` draws just those tasks."""
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
    return layered_svg(pipeline, states or {}, notes, labels, only)


# -- the pure-Python drawing: a layered (Sugiyama-style) layout, left to right -----------------------------------
#
# Layers are networkx's topological generations (a source sits just before its first consumer); an edge spanning
# several layers goes through a virtual node in each, so it is routed between the nodes rather than across them.
# Nodes are ordered within layers by barycentre sweeps, keeping the order with the fewest crossings; positions in a
# layer are then pulled towards their neighbours' (isotonic regression keeps the order and the spacing).

_NODE_H, _DUMMY_H, _V_GAP, _MARGIN = 38.0, 6.0, 14.0, 12.0
_NARROW, _WIDE = set("ijlt.,:;|!'()[]/ -_f"), set("mwMW@%")


def _text_width(text: str, size: float) -> float:
    """An estimate of the rendered width of `text` in a sans-serif font of `size` px (no font metrics at hand)."""
    units = sum(0.3 if c in _NARROW else 0.86 if c in _WIDE else 0.66 if c.isupper() else 0.56 for c in text)
    return units * size


def _crossings(upper: list, lower: list, edges: list[tuple]) -> int:
    """Edge crossings between two adjacent layers: inversions of the lower ends once sorted by the upper ends."""
    pos_u = {n: i for i, n in enumerate(upper)}
    pos_l = {n: i for i, n in enumerate(lower)}
    ends = [lower_end for _, lower_end in sorted((pos_u[a], pos_l[b]) for a, b in edges)]
    tree = [0] * (len(lower) + 1)
    count = 0
    for seen, end in enumerate(ends):
        i, below = end + 1, 0  # how many already seen ends are <= end
        while i > 0:
            below += tree[i]
            i -= i & -i
        count += seen - below
        i = end + 1
        while i <= len(lower):
            tree[i] += 1
            i += i & -i
    return count


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence closest to `targets` (weighted least squares): pool adjacent violators."""
    blocks: list[list[float]] = []  # [mean, weight, size]
    for t, w in zip(targets, weights):
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    out: list[float] = []
    for mean, _, size in blocks:
        out.extend([mean] * int(size))
    return out


def layered_layout(
    graph: nx.DiGraph,
    sizes: Mapping[str, tuple[float, float]],
    order: list[str],
    label_widths: Mapping[tuple[str, str], float] | None = None,
):
    """Positions for a left-to-right drawing without Graphviz.

    Returns (centres, layers, routes): the centre (x, y) of every node and virtual node, the layers as lists of
    nodes (virtual ones are tuples), and for each edge the list of points its line passes through.
    """
    rank: dict[Any, int] = {}
    for number, generation in enumerate(nx.topological_generations(graph)):
        for node in generation:
            rank[node] = number
    for node in reversed(list(nx.topological_sort(graph))):  # sources move next to their first consumer
        if graph.in_degree(node) == 0 and graph.out_degree(node) > 0:
            rank[node] = min(rank[s] for s in graph.successors(node)) - 1

    position = {name: i for i, name in enumerate(order)}
    layers: list[list[Any]] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for name in sorted(graph, key=lambda n: position.get(n, 0)):
        layers[rank[name]].append(name)
    preds: dict[Any, list] = {n: [] for n in graph}
    succs: dict[Any, list] = {n: [] for n in graph}
    chains: dict[tuple, list] = {}
    for a, b in graph.edges:
        chain = [a] + [("virtual", a, b, r) for r in range(rank[a] + 1, rank[b])] + [b]
        for node in chain[1:-1]:
            layers[node[3]].append(node)
            preds[node], succs[node] = [], []
        for u, v in zip(chain, chain[1:]):
            succs[u].append(v)
            preds[v].append(u)
        chains[(a, b)] = chain

    def height(node) -> float:
        return _DUMMY_H if isinstance(node, tuple) else sizes[node][1]

    def width(node) -> float:
        return 0.0 if isinstance(node, tuple) else sizes[node][0]

    # Ordering: barycentre sweeps down and up; keep the best.
    def total_crossings(layout: list[list]) -> int:
        return sum(
            _crossings(layout[i], layout[i + 1], [(u, v) for u in layout[i] for v in succs[u]])
            for i in range(len(layout) - 1)
        )

    def sweep(layout: list[list], downward: bool) -> None:
        indices = range(1, len(layout)) if downward else range(len(layout) - 2, -1, -1)
        for i in indices:
            ref = {n: p for p, n in enumerate(layout[i - 1 if downward else i + 1])}

            def key(item, ref=ref):
                p, node = item
                near = [ref[m] for m in (preds[node] if downward else succs[node]) if m in ref]
                return (sum(near) / len(near)) if near else p

            layout[i] = [n for _, n in sorted(enumerate(layout[i]), key=key)]

    best, best_count = [list(layer) for layer in layers], total_crossings(layers)
    rounds = 12 if len(rank) + sum(len(c) - 2 for c in chains.values()) < 600 else 3
    current = [list(layer) for layer in layers]
    for round_ in range(rounds):
        if best_count == 0:
            break
        sweep(current, downward=round_ % 2 == 0)
        count = total_crossings(current)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
    layers = best

    # Vertical positions: stacked, then pulled towards the neighbours' positions, order and spacing kept.
    y: dict[Any, float] = {}
    for layer in layers:
        offset = 0.0
        for node in layer:
            y[node] = offset + height(node) / 2
            offset += height(node) + _V_GAP
        for node in layer:
            y[node] -= offset / 2
    for round_ in range(8):
        downward = round_ % 2 == 0
        for layer in layers if downward else reversed(layers):
            if not layer:
                continue
            wanted, weights = [], []
            for node in layer:
                near = (preds[node] if downward else succs[node]) or (succs[node] if downward else preds[node])
                wanted.append(sum(y[m] for m in near) / len(near) if near else y[node])
                weights.append(0.5 if isinstance(node, tuple) else 1.0)
            gaps = [0.0]
            for u, v in zip(layer, layer[1:]):
                gaps.append(
                    gaps[-1]
                    + (height(u) + height(v)) / 2
                    + (_V_GAP if not (isinstance(u, tuple) and isinstance(v, tuple)) else 4.0)
                )
            fitted = _isotonic([w - g for w, g in zip(wanted, gaps)], weights)
            for node, f, g in zip(layer, fitted, gaps):
                y[node] = f + g

    # Horizontal positions: one column per layer, wide enough for its widest node; each gap wide enough for the
    # widest label of an edge crossing it (`label_widths`).
    gap_needed = [0.0] * len(layers)
    for a, b in chains:
        for r in range(rank[a], rank[b]):
            gap_needed[r] = max(gap_needed[r], (label_widths or {}).get((a, b), 0.0))
    columns, x = [], _MARGIN
    for number, layer in enumerate(layers):
        column_width = max((width(n) for n in layer), default=0.0)
        columns.append((x, column_width))
        x += column_width + min(max(gap_needed[number] + 24, 56.0), 180.0)
    top = min((y[n] - height(n) / 2 for n in y), default=0.0)

    def column(node) -> tuple[float, float]:
        return columns[node[3] if isinstance(node, tuple) else rank[node]]

    centres = {n: (column(n)[0] + column(n)[1] / 2, y[n] - top + _MARGIN) for n in y}

    # Where edges leave and enter a node: spread over its right/left side in the order of the other ends.
    ports: dict[tuple, float] = {}
    for node in graph:
        for side, ends in (
            ("out", [(chains[(node, s)][1], (node, s)) for s in graph.successors(node)]),
            ("in", [(chains[(p, node)][-2], (p, node)) for p in graph.predecessors(node)]),
        ):
            ends.sort(key=lambda item: centres[item[0]][1])
            step = min(7.0, (height(node) - 12) / max(len(ends) - 1, 1))
            for i, (_, edge) in enumerate(ends):
                ports[(side, edge)] = centres[node][1] + (i - (len(ends) - 1) / 2) * step
    routes = {}
    for (a, b), chain in chains.items():
        points = [(centres[a][0] + width(a) / 2, ports[("out", (a, b))])]
        for node in chain[1:-1]:
            left, column_width = column(node)
            points += [(left, centres[node][1]), (left + column_width, centres[node][1])]
        points.append((centres[b][0] - width(b) / 2, ports[("in", (a, b))]))
        routes[(a, b)] = points
    return centres, layers, routes


def _path(points: list[tuple[float, float]]) -> str:
    """A smooth line through the points: horizontal tangents at each, S-curves between columns."""
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


def _stacked_layout(
    graph: nx.DiGraph,
    sizes: Mapping[str, tuple[float, float]],
    order: list[str],
    label_widths: Mapping[tuple[str, str], float],
):
    """Each connected part of the graph laid out on its own, stacked top to bottom in task order; the tasks linked
    to nothing go last, in a grid."""
    position = {name: i for i, name in enumerate(order)}
    parts = sorted(
        (sorted(part, key=position.get) for part in nx.weakly_connected_components(graph)),
        key=lambda part: position[part[0]],
    )
    centres: dict[Any, tuple[float, float]] = {}
    routes: dict[tuple, list] = {}
    top = 0.0
    for part in (p for p in parts if len(p) > 1):
        placed, _, part_routes = layered_layout(graph.subgraph(part), sizes, part, label_widths)
        placed = {n: xy for n, xy in placed.items() if not isinstance(n, tuple)}
        bottom = max(y + sizes[n][1] / 2 for n, (_, y) in placed.items())
        centres.update({n: (x, y + top) for n, (x, y) in placed.items()})
        routes.update({edge: [(x, y + top) for x, y in points] for edge, points in part_routes.items()})
        top += bottom - _MARGIN + 1.5 * _V_GAP
    alone = [p[0] for p in parts if len(p) == 1]
    if alone:
        per_column = max(8, int((len(alone) * 3) ** 0.5))
        cell_w = max(sizes[n][0] for n in alone) + 2 * _V_GAP
        cell_h = max(sizes[n][1] for n in alone) + _V_GAP
        for i, name in enumerate(alone):
            column, row = divmod(i, per_column)
            centres[name] = (
                _MARGIN + column * cell_w + sizes[name][0] / 2,
                top + _MARGIN + row * cell_h + sizes[name][1] / 2,
            )
    return centres, routes


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


def _place_labels(edges: list[dict], routes: Mapping[tuple, list]) -> dict[tuple, tuple]:
    """Where each edge's label goes: just above or below the middle of one of its segments between two columns,
    where it overlaps no other label. Direct edges choose first; a label with no room is left to the tooltip."""
    taken: list[tuple[float, float, float, float]] = []
    placed = {}
    for edge in sorted((e for e in edges if e["via"]), key=lambda e: len(routes[(e["from"], e["to"])])):
        key = (edge["from"], edge["to"])
        points = routes[key]
        lines = edge_label(edge["via"]).split("\n")
        w, h = max(_text_width(line, 9) for line in lines) + 6, 11.0 * len(lines) + 2
        for (x0, y0), (x1, y1) in zip(points[::2], points[1::2]):  # the segments between columns
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            for top in (cy - h - 1.5, cy + 1.5):
                box = (cx - w / 2, top, cx + w / 2, top + h)
                if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
                    taken.append(box)
                    placed[key] = (box, lines)
                    break
            if key in placed:
                break
    return placed


def layered_svg(
    pipeline: Pipeline,
    states: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool = True,
    only: Iterable[str] | None = None,
) -> str:
    """The graph drawn as SVG in pure Python (no Graphviz), styled as `to_svg` styles it."""
    data, graph = _drawn(pipeline, only)
    states, notes = states or {}, notes or {}
    esc = html.escape
    sizes, second = {}, {}
    for task in data["tasks"]:
        name = task["name"]
        second[name] = notes.get(name) or state_label(states.get(name)) or ("not in this run" if states else "")
        width = max(_text_width(name, 13), _text_width(second[name], 10)) + 26
        sizes[name] = (max(width, 64.0), _NODE_H if second[name] else 28.0)
    order = [t["name"] for t in data["tasks"]]
    label_widths = {
        (e["from"], e["to"]): max(_text_width(line, 9) for line in edge_label(e["via"]).split("\n"))
        for e in data["edges"]
        if labels and e["via"]
    }
    centres, routes = _stacked_layout(graph, sizes, order, label_widths)
    total_w = max((centres[n][0] + sizes[n][0] / 2 for n in sizes), default=0.0) + _MARGIN
    total_h = max((centres[n][1] + sizes[n][1] / 2 for n in sizes), default=0.0) + _MARGIN

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
        f'viewBox="0 0 {total_w:.1f} {total_h:.1f}" font-family="{FONT}">',
        '<defs><marker id="nbflow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="{EDGE_COLOR}"/></marker>'
        "</defs>",
        '<g class="graph"><title>nbflow</title>',
    ]
    placed = _place_labels(data["edges"], routes) if labels else {}
    for edge in data["edges"]:
        points = routes[(edge["from"], edge["to"])]
        d = _path(points)
        via = ", ".join(edge["via"]) or "upstream (no file)"
        out.append(
            f'<g class="edge"><title>{esc(edge["from"])} -&gt; {esc(edge["to"])}: {esc(via)}</title>'
            f'<path d="{d}" fill="none" stroke="transparent" stroke-width="10"/>'
            f'<path d="{d}" fill="none" stroke="{EDGE_COLOR}" stroke-width="1.2" '
            f'marker-end="url(#nbflow-arrow)"/>'
        )
        if (edge["from"], edge["to"]) in placed:
            (left, top, right, bottom), lines = placed[(edge["from"], edge["to"])]
            out.append(
                f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
                f'rx="3" fill="#ffffff" fill-opacity="0.85"/>'
            )
            for i, line in enumerate(lines):
                out.append(
                    f'<text x="{(left + right) / 2:.1f}" y="{top + 10 + 11 * i:.1f}" text-anchor="middle" '
                    f'font-size="9" fill="{LABEL_COLOR}">{esc(line)}</text>'
                )
        out.append("</g>")
    for task in data["tasks"]:
        name = task["name"]
        (cx, cy), (w, h) = centres[name], sizes[name]
        state = states.get(name)
        fill, border, _ = STATE_STYLE.get(state, (DEFAULT_FILL, DEFAULT_BORDER, ""))
        stroke = ' stroke-dasharray="4,3"' if state == "never_run" else ""
        pen = 2.6 if state == "running" else 1.3
        tip = _tooltip(name, task["notebook"], state, notes.get(name))
        out.append(
            f'<g class="node"><title>{esc(tip)}</title>'
            f'<rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}" rx="7" '
            f'fill="{fill}" stroke="{border}" stroke-width="{pen}"{stroke}/>'
        )
        if second[name]:
            out.append(
                f'<text x="{cx:.1f}" y="{cy - 2:.1f}" text-anchor="middle" font-size="13" '
                f'fill="{TEXT_COLOR}">{esc(name)}</text>'
                f'<text x="{cx:.1f}" y="{cy + 11:.1f}" text-anchor="middle" font-size="10" '
                f'fill="{LABEL_COLOR}">{esc(second[name])}</text>'
            )
        else:
            out.append(
                f'<text x="{cx:.1f}" y="{cy + 4.5:.1f}" text-anchor="middle" font-size="13" '
                f'fill="{TEXT_COLOR}">{esc(name)}</text>'
            )
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"
