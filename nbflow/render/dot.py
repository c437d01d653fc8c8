"""The drawing by Graphviz (DOT source, SVG from the `dot` program), and `draw_svg`, which falls back to the
built-in layout where `dot` is missing or fails."""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from nbflow import palette
from nbflow.graph import Pipeline
from nbflow.render.builtin import svg_without_graphviz
from nbflow.render.scene import LABEL_LIMIT, edge_label, scene

if TYPE_CHECKING:
    import graphviz


def to_dot(
    pipeline: Pipeline,
    states: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool | None = True,
    only: Iterable[str] | None = None,
) -> graphviz.Digraph:
    """A `graphviz.Digraph`; edges are labelled with the file(s) that link the two tasks.

    `states` (instance -> state) styles the tasks from the palette and writes the state (or `notes[instance]`, e.g.
    "succeeded · 3.2s") under the name; a grid task is one node counting its instances by state. `labels=False`
    leaves the files to the edge tooltips (None: where there are more than LABEL_LIMIT edges); `only` draws just
    those instances (and the edges between them).
    """
    import graphviz

    drawn = scene(pipeline, states, notes, only)
    if labels is None:
        labels = len(drawn.links) <= LABEL_LIMIT
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
    for node in drawn.nodes.values():
        look = palette.style(node.state)
        attrs = {"tooltip": node.tooltip, "fillcolor": look.fill, "color": look.border}
        if look.strong:
            attrs["penwidth"] = "2.6"
        if look.dashed:
            attrs["style"] = "rounded,filled,dashed"
        if node.several:
            attrs["peripheries"] = "2"
        label = node.lines[0]
        if len(node.lines) > 1:
            under = "".join(
                f'<BR/><FONT POINT-SIZE="10" COLOR="{palette.LABEL_COLOR}">{html.escape(line)}</FONT>'
                for line in node.lines[1:]
            )
            label = f"<{html.escape(node.lines[0])}{under}>"
        dot.node(node.name, label, **attrs)
    for link in drawn.links:
        dot.edge(link.source, link.target, label=edge_label(link.via) if labels else "", tooltip=link.tooltip)
    return dot


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` program is not installed."""


def to_svg(
    pipeline: Pipeline,
    states: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool | None = True,
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
    states: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    engine: str = "auto",
    only: Iterable[str] | None = None,
) -> str:
    """The graph as SVG with each task styled by its state: by Graphviz where `dot` is installed (and works), else
    by the built-in layout (`engine` "graphviz" or "grandalf" forces one). Edge labels give way to tooltips on big
    graphs; `only` draws just those instances."""
    only = None if only is None else set(only)
    if engine == "graphviz" or (engine == "auto" and has_graphviz()):
        try:
            return to_svg(pipeline, states=states, notes=notes, labels=None, only=only)
        except Exception:
            if engine == "graphviz":
                raise
    return svg_without_graphviz(pipeline, states, notes, None, only)
