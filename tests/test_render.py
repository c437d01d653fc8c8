"""The drawing made where Graphviz's `dot` is missing (hidden from PATH here), read back from its SVG: what a user
sees in it, whatever the layout library decides in detail."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import write_notebook

import nbflow
from nbflow import palette, render
from nbflow.layout import Box

SVG = "{http://www.w3.org/2000/svg}"
NUMBER = r"-?\d+(?:\.\d+)?"


@pytest.fixture(autouse=True)
def no_dot(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not render.has_graphviz()


def make_pipeline(root: Path, tasks: dict[str, tuple[list[str], list[str]]]):
    """Notebooks `name.ipynb` reading and writing the given files (paths relative to the project)."""
    for name, (inputs, outputs) in tasks.items():
        write_notebook(root / f"{name}.ipynb", f"inputs = {inputs!r}\noutputs = {outputs!r}")
    return nbflow.load(root)


@dataclass
class Edge:
    title: str
    points: list[tuple[float, float]]  # along its line, start to end, curves sampled
    labels: list[str] = field(default_factory=list)
    label_box: Box | None = None


@dataclass
class Node:
    box: Box
    fill: str
    stroke: str
    texts: list[str]


def _line(d: str) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L and C commands: the ends of each piece, and 16 points on each curve."""
    points: list[tuple[float, float]] = []
    for command, numbers in re.findall(r"([MLC])([^MLC]*)", d):
        values = [float(v) for v in re.findall(NUMBER, numbers)]
        pairs = list(zip(values[::2], values[1::2]))
        if command in "ML":
            points.extend(pairs)
        else:
            (x0, y0), ((x1, y1), (x2, y2), (x3, y3)) = points[-1], pairs
            for i in range(1, 17):
                t = i / 16
                a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
                points.append((a * x0 + b * x1 + c * x2 + e * x3, a * y0 + b * y1 + c * y2 + e * y3))
    return points


def read(svg: str) -> tuple[dict[str, Node], dict[tuple[str, str], Edge]]:
    """The task boxes by name and the edges by (source, target), as drawn."""
    root = ET.fromstring(svg)
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str], Edge] = {}
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title").text
        if group.get("class") == "node":
            name = title.split("\n")[0]
            assert name not in nodes, f"{name} drawn twice"
            rect = group.find(f"{SVG}rect")
            box = Box(*(float(rect.get(k)) for k in ("x", "y", "width", "height")))
            nodes[name] = Node(box, rect.get("fill"), rect.get("stroke"), [t.text for t in group.iter(f"{SVG}text")])
        elif group.get("class") == "edge":
            source, target = title.split(":")[0].split(" -> ")
            line = next(p for p in group.iter(f"{SVG}path") if p.get("stroke") != "transparent")
            edge = Edge(title, _line(line.get("d")), [t.text for t in group.iter(f"{SVG}text")])
            rect = group.find(f"{SVG}rect")
            if rect is not None:
                edge.label_box = Box(*(float(rect.get(k)) for k in ("x", "y", "width", "height")))
            edges[(source, target)] = edge
    return nodes, edges


def assert_readable(nodes: dict[str, Node], edges: dict[tuple[str, str], Edge]) -> None:
    """No two boxes overlap; every line leaves its source's right side, goes rightwards only, enters its target's
    left side and runs behind no box; no label covers a box or another label."""
    names = list(nodes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not nodes[a].box.overlaps(nodes[b].box), f"the boxes of {a} and {b} overlap"
    for (a, b), edge in edges.items():
        source, target = nodes[a].box, nodes[b].box
        (x0, y0), (x1, y1) = edge.points[0], edge.points[-1]
        assert x0 == pytest.approx(source.right, abs=0.1) and source.y < y0 < source.bottom, (a, b, "start")
        assert x1 == pytest.approx(target.x, abs=0.1) and target.y < y1 < target.bottom, (a, b, "end")
        xs = [x for x, _ in edge.points]
        assert all(later >= earlier - 0.1 for earlier, later in zip(xs, xs[1:])), f"{a} -> {b} turns back"
        for name, node in nodes.items():
            inside = [
                (x, y)
                for x, y in edge.points
                if node.box.x + 1 < x < node.box.right - 1 and node.box.y + 1 < y < node.box.bottom - 1
            ]
            assert not inside, f"the line {a} -> {b} runs behind the box of {name}"
    labels = [e.label_box for e in edges.values() if e.label_box]
    for i, label in enumerate(labels):
        assert not any(label.overlaps(n.box) for n in nodes.values()), "a label covers a box"
        assert not any(label.overlaps(other) for other in labels[i + 1 :]), "two labels overlap"


def test_every_task_is_drawn_once_with_its_state_written_under_its_name(project):
    pipeline = make_pipeline(
        project,
        {
            "extract": ([], ["raw.csv"]),
            "clean": (["raw.csv"], ["clean.csv"]),
            "report": (["clean.csv", "raw.csv"], ["report.md"]),
            "lonely": ([], ["lonely.txt"]),
        },
    )
    states = {"extract": "succeeded", "clean": "running", "report": "stale"}
    svg = render.draw_svg(pipeline, states, notes={"extract": "succeeded · 1.2s"})
    assert "graphviz" not in svg.lower()
    nodes, edges = read(svg)
    assert set(nodes) == {"extract", "clean", "report", "lonely"}
    for name, state in states.items():
        assert (nodes[name].fill, nodes[name].stroke) == (palette.STYLES[state].fill, palette.STYLES[state].border)
    assert nodes["extract"].texts == ["extract", "succeeded · 1.2s"]
    assert nodes["clean"].texts == ["clean", "running"] and nodes["report"].texts == ["report", "stale"]
    assert nodes["lonely"].texts == ["lonely", "not in this run"]
    assert nodes["lonely"].fill == palette.UNKNOWN.fill
    assert set(edges) == {("extract", "clean"), ("clean", "report"), ("extract", "report")}
    assert_readable(nodes, edges)


def test_edges_go_left_to_right_and_are_labelled_with_the_files_that_link_the_tasks(project):
    # a diamond whose sides differ in length, so one edge passes a layer on its way
    pipeline = make_pipeline(
        project,
        {
            "source": ([], ["a.csv", "b.csv", "c.csv"]),
            "left": (["a.csv"], ["left.csv"]),
            "middle": (["left.csv"], ["middle.csv"]),
            "right": (["b.csv", "c.csv"], ["right.csv"]),
            "join": (["middle.csv", "right.csv", "a.csv"], ["out.txt"]),
        },
    )
    nodes, edges = read(render.draw_svg(pipeline, {name: "up_to_date" for name in pipeline.tasks}))
    assert len(edges) == pipeline.graph.number_of_edges() == 6
    assert edges[("source", "right")].labels == ["b.csv", "c.csv"]
    assert edges[("source", "left")].labels == ["a.csv"]
    assert edges[("middle", "join")].labels == ["middle.csv"]
    assert all(edge.labels and edge.label_box for edge in edges.values())
    for a, b in edges:
        assert nodes[a].box.right < nodes[b].box.x, f"{b} is not right of {a}"
    assert_readable(nodes, edges)


def test_an_edge_that_skips_layers_goes_around_the_boxes_between(project):
    pipeline = make_pipeline(
        project,
        {
            "first": ([], ["one.csv", "config.json"]),
            "second": (["one.csv"], ["two.csv"]),
            "third": (["two.csv"], ["three.csv"]),
            "fourth": (["three.csv", "config.json"], ["four.csv"]),
        },
    )
    nodes, edges = read(render.draw_svg(pipeline))
    assert edges[("first", "fourth")].labels == ["config.json"]
    assert_readable(nodes, edges)


def test_parts_that_share_no_edge_are_stacked_top_to_bottom_in_task_order(project):
    pipeline = make_pipeline(
        project,
        {
            "a1": ([], ["a.txt"]),
            "a2": (["a.txt"], ["a2.txt"]),
            "b1": ([], ["b.txt"]),
            "b2": (["b.txt"], ["b2.txt"]),
            "c": ([], ["c.txt"]),
        },
    )
    nodes, edges = read(render.draw_svg(pipeline))
    first, second = (max(nodes[n].box.bottom for n in part) for part in (["a1", "a2"], ["b1", "b2"]))
    assert first <= min(nodes[n].box.y for n in ("b1", "b2"))
    assert second <= nodes["c"].box.y
    assert_readable(nodes, edges)


def test_a_large_graph_stays_readable_and_keeps_its_files_on_hover(project):
    # 120 tasks in six layers, each reading one to three files of the layer before: past LABEL_LIMIT edges the
    # files are in each edge's tooltip only, or the drawing would drown in labels.
    rng = random.Random(7)
    previous: list[str] = []
    tasks = {}
    for layer in range(6):
        current = [f"t{layer}_{i:02d}" for i in range(20)]
        for name in current:
            reads = sorted(rng.sample(previous, rng.randint(1, 3))) if previous else []
            tasks[name] = ([f"data/{r}.csv" for r in reads], [f"data/{name}.csv"])
        previous = current
    pipeline = make_pipeline(project, tasks)
    assert len(pipeline.tasks) == 120 and pipeline.graph.number_of_edges() > render.LABEL_LIMIT
    nodes, edges = read(render.draw_svg(pipeline, {name: "succeeded" for name in pipeline.tasks}))
    assert len(nodes) == 120 and len(edges) == pipeline.graph.number_of_edges()
    assert all(not edge.labels and ".csv" in edge.title for edge in edges.values())
    assert_readable(nodes, edges)


def test_the_panel_draws_without_dot(project):
    make_pipeline(project, {"first": ([], ["x.txt"]), "second": (["x.txt"], ["y.txt"])})
    panel = nbflow.panel(project, follow=False)
    try:
        assert "the built-in layout" in panel.header.value
        nodes, edges = read(panel.svg[panel.svg.index("<svg") :])
        assert set(nodes) == {"first", "second"} and edges[("first", "second")].labels == ["x.txt"]
        assert {n.fill for n in nodes.values()} == {palette.STYLES["never_run"].fill}
    finally:
        panel.close()
