"""Where each task's box and each edge's line go in a drawing made without Graphviz: grandalf's layered layout.

Left to right, as Graphviz draws the pipeline (`rankdir=LR`): grandalf lays layers out top to bottom, so it is
given every box turned a quarter (width and height swapped) and its positions are turned back. Each connected part
is laid out on its own and the parts are stacked top to bottom in task order, the tasks linked to nothing last, in a
grid. An edge runs from its source's right side to its target's left side; where it spans several layers it passes
each one straight through the gap grandalf kept for it, so it curves only between layers, where no box is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

Point = tuple[float, float]

MARGIN = 12.0  # around the drawing
NODE_GAP = 14.0  # between two boxes of one layer, and between stacked parts
EDGE_GAP = 8.0  # the room an edge passing through a layer takes in it


@dataclass(frozen=True)
class Box:
    """A task's box: the top-left corner and the size."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: Box) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom


@dataclass
class Layout:
    """Boxes by task name; for each edge (source, target) the points its line goes through, left to right: the
    first on the source's right side, the last on the target's left side; straight lines between the points of a
    layer, curves in the gaps between layers (`gaps`: the pairs of points where it crosses one)."""

    boxes: dict[str, Box] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    gaps: dict[tuple[str, str], list[tuple[Point, Point]]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0


class _View:
    """What grandalf reads (`w`, `h`) and writes (`xy`, the centre) for each vertex."""

    def __init__(self, w: float, h: float):
        self.w, self.h = w, h
        self.xy: Point = (0.0, 0.0)


def _part(
    graph: nx.DiGraph, names: Sequence[str], sizes: Mapping[str, tuple[float, float]], layer_gap: float
) -> Layout:
    """One connected part laid out left to right, its top-left corner at (0, 0)."""
    vertices = {name: Vertex(name) for name in names}
    for name, vertex in vertices.items():
        w, h = sizes[name]
        vertex.view = _View(h, w)  # turned a quarter: grandalf's layers run top to bottom
    edges = {(a, b): Edge(vertices[a], vertices[b]) for a, b in graph.subgraph(names).edges}
    core = Graph(list(vertices.values()), list(edges.values())).C[0]
    sugiyama = SugiyamaLayout(core)
    sugiyama.xspace, sugiyama.yspace = NODE_GAP, layer_gap
    sugiyama.dw, sugiyama.dh = EDGE_GAP, EDGE_GAP  # the stand-ins of edges passing through a layer
    roots = [vertices[n] for n in names if graph.in_degree(n) == 0]
    sugiyama.init_all(roots=roots, optimize=True)  # optimize: a source sits next to its first consumer
    sugiyama.draw()

    # Turned back: grandalf's y (the layer's centre) is our x, its x (the place within the layer) our y.
    def centre(vertex: Vertex) -> Point:
        return vertex.view.xy[1], vertex.view.xy[0]

    columns = [
        (centre(layer[0])[0], max(v.view.h for v in layer) / 2) for layer in sugiyama.layers
    ]  # per layer: the centre x and half the widest box
    left = min(x - half for x, half in columns)
    top = min(centre(v)[1] - v.view.w / 2 for layer in sugiyama.layers for v in layer)
    part = Layout()
    for name, vertex in vertices.items():
        (cx, cy), (w, h) = centre(vertex), sizes[name]
        part.boxes[name] = Box(cx - w / 2 - left, cy - h / 2 - top, w, h)

    def through(a: str, b: str) -> list[Point]:
        """The centres of the stand-ins of the edge a -> b, one in each layer it passes."""
        ctrl = sugiyama.ctrls.get(edges[(a, b)], {})
        return [(x - left, y - top) for x, y in (centre(ctrl[r]) for r in sorted(ctrl)[1:-1])]

    middles = {edge: through(*edge) for edge in edges}

    def other_end(edge: tuple[str, str], side: str) -> float:
        """How high the line of `edge` goes on from the box it leaves (`out`) or enters (`in`)."""
        if middles[edge]:
            return middles[edge][0 if side == "out" else -1][1]
        return part.boxes[edge[1] if side == "out" else edge[0]].cy

    # Where edges leave and enter a box: spread over its side in the order of their other ends.
    ports: dict[tuple[str, tuple[str, str]], float] = {}
    for name, box in part.boxes.items():
        for side, ends in (
            ("out", [(other_end(e, "out"), e) for e in edges if e[0] == name]),
            ("in", [(other_end(e, "in"), e) for e in edges if e[1] == name]),
        ):
            ends.sort()
            step = min(7.0, (box.h - 12) / max(len(ends) - 1, 1))
            for i, (_, edge) in enumerate(ends):
                ports[(side, edge)] = box.cy + (i - (len(ends) - 1) / 2) * step

    rank = {v.data: sugiyama.grx[v].rank for v in vertices.values()}
    for (a, b), stand_ins in middles.items():
        source, target = part.boxes[a], part.boxes[b]
        column_right = columns[rank[a]][0] + columns[rank[a]][1] - left
        column_left = columns[rank[b]][0] - columns[rank[b]][1] - left
        points = [(source.right, ports[("out", (a, b))]), (column_right, ports[("out", (a, b))])]
        for r, (_, y) in zip(range(rank[a] + 1, rank[b]), stand_ins):
            x, half = columns[r][0] - left, columns[r][1]
            points += [(x - half, y), (x + half, y)]
        points += [(column_left, ports[("in", (a, b))]), (target.x, ports[("in", (a, b))])]
        part.routes[(a, b)] = points
        part.gaps[(a, b)] = list(zip(points[1::2], points[2::2]))
    part.width = max(b.right for b in part.boxes.values())
    lowest_line = max((y for points in part.routes.values() for _, y in points), default=0.0) + EDGE_GAP / 2
    part.height = max(lowest_line, *(b.bottom for b in part.boxes.values()))
    return part


def layered(
    graph: nx.DiGraph, sizes: Mapping[str, tuple[float, float]], order: Sequence[str], layer_gap: float = 56.0
) -> Layout:
    """The drawing's layout: `sizes` gives each task's box (width, height), `order` the tasks' order (which part
    comes first), `layer_gap` the room between two layers (wide enough for the edge labels drawn there)."""
    position = {name: i for i, name in enumerate(order)}
    parts = sorted(
        (sorted(part, key=position.__getitem__) for part in nx.weakly_connected_components(graph)),
        key=lambda part: position[part[0]],
    )
    drawing = Layout()
    top = MARGIN
    for names in (p for p in parts if len(p) > 1):
        part = _part(graph, names, sizes, layer_gap)

        def moved(point: Point, top: float = top) -> Point:
            return point[0] + MARGIN, point[1] + top

        drawing.boxes.update({n: Box(b.x + MARGIN, b.y + top, b.w, b.h) for n, b in part.boxes.items()})
        drawing.routes.update({e: [moved(p) for p in points] for e, points in part.routes.items()})
        drawing.gaps.update({e: [(moved(p), moved(q)) for p, q in pairs] for e, pairs in part.gaps.items()})
        top += part.height + 1.5 * NODE_GAP
    alone = [p[0] for p in parts if len(p) == 1]
    if alone:
        per_column = max(8, int((len(alone) * 3) ** 0.5))
        cell_w = max(sizes[n][0] for n in alone) + 2 * NODE_GAP
        cell_h = max(sizes[n][1] for n in alone) + NODE_GAP
        for i, name in enumerate(alone):
            column, row = divmod(i, per_column)
            w, h = sizes[name]
            drawing.boxes[name] = Box(MARGIN + column * cell_w, top + row * cell_h, w, h)
    drawing.width = max((b.right for b in drawing.boxes.values()), default=0.0) + MARGIN
    drawing.height = max((b.bottom for b in drawing.boxes.values()), default=0.0) + MARGIN
    return drawing
