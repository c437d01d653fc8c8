"""The drawing without Graphviz: the scene's boxes and lines placed by `nbflow.layout` (grandalf), written as SVG,
styled as Graphviz's drawing is."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from nbflow import palette
from nbflow.graph import Pipeline
from nbflow.render.scene import LABEL_LIMIT, Link, Node, edge_label, scene

if TYPE_CHECKING:  # nbflow.layout imports grandalf (and numpy): only when a drawing is made, not with nbflow.render
    from nbflow.layout import Box, Point

_NAME_SIZE, _NOTE_SIZE, _LABEL_SIZE, _LABEL_LINE = 13.0, 10.0, 9.0, 11.0
_NARROW, _WIDE = set("ijlt.,:;|!'()[]/ -_f"), set("mwMW@%")
_OUTLINE = 3.0  # how far the second outline of a grid task's box lies outside the first


def _text_width(text: str, size: float) -> float:
    """An estimate of the rendered width of `text` in a sans-serif font of `size` px (no font metrics at hand)."""
    units = sum(0.3 if c in _NARROW else 0.86 if c in _WIDE else 0.66 if c.isupper() else 0.56 for c in text)
    return units * size


def _size(node: Node) -> tuple[float, float]:
    width = max([_text_width(node.lines[0], _NAME_SIZE), *(_text_width(line, _NOTE_SIZE) for line in node.lines[1:])])
    return max(width + 26, 64.0), 28.0 + 10.0 * (len(node.lines) - 1)


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
    links: list[Link], gaps: Mapping[tuple[str, str], list[tuple[Point, Point]]], boxes: Iterable[Box]
) -> dict[tuple[str, str], tuple[Box, list[str]]]:
    """Where each edge's label goes: on the middle of its line in a gap between two layers, clear of the boxes and
    of the other labels. Shorter edges choose first; a label with no room is left to the edge's tooltip."""
    from nbflow.layout import Box

    taken = list(boxes)
    placed = {}
    for link in sorted((e for e in links if e.via), key=lambda e: len(gaps[(e.source, e.target)])):
        key = (link.source, link.target)
        lines = edge_label(link.via).split("\n")
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
    states: Mapping[str, str | None] | None = None,
    notes: Mapping[str, str] | None = None,
    labels: bool | None = True,
    only: Iterable[str] | None = None,
) -> str:
    """The graph drawn as SVG in pure Python (grandalf lays it out), styled as `to_svg` styles it; `labels` None:
    edge labels only where there are at most LABEL_LIMIT edges."""
    from nbflow.layout import layered

    drawn = scene(pipeline, states, notes, only)
    if labels is None:
        labels = len(drawn.links) <= LABEL_LIMIT
    esc = html.escape
    sizes = {name: _size(node) for name, node in drawn.nodes.items()}
    label_lines = [line for e in drawn.links if labels and e.via for line in edge_label(e.via).split("\n")]
    label_width = max((_text_width(line, _LABEL_SIZE) for line in label_lines), default=0.0)
    layout = layered(drawn.graph, sizes, list(drawn.nodes), min(max(label_width + 24, 56.0), 180.0))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" height="{layout.height:.0f}" '
        f'viewBox="0 0 {layout.width:.1f} {layout.height:.1f}" font-family="{palette.FONT}">',
        '<defs><marker id="nbflow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="{palette.EDGE_COLOR}"/></marker></defs>',
        '<g class="graph"><title>nbflow</title>',
    ]
    placed = _label_boxes(drawn.links, layout.gaps, layout.boxes.values()) if labels else {}
    for link in drawn.links:
        key = (link.source, link.target)
        d = _path(layout.routes[key])
        out.append(
            f'<g class="edge"><title>{esc(link.tooltip)}</title>'
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
    for name, node in drawn.nodes.items():
        box = layout.boxes[name]
        look = palette.style(node.state)
        dash = ' stroke-dasharray="4,3"' if look.dashed else ""
        out.append(
            f'<g class="node"><title>{esc(node.tooltip)}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="7" '
            f'fill="{look.fill}" stroke="{look.border}" stroke-width="{2.6 if look.strong else 1.3}"{dash}/>'
        )
        if node.several:  # a task's instances drawn as one: a second outline, as Graphviz's `peripheries=2`
            out.append(
                f'<rect x="{box.x - _OUTLINE:.1f}" y="{box.y - _OUTLINE:.1f}" width="{box.w + 2 * _OUTLINE:.1f}" '
                f'height="{box.h + 2 * _OUTLINE:.1f}" rx="{7 + _OUTLINE:g}" fill="none" stroke="{look.border}" '
                f'stroke-width="1"{dash}/>'
            )
        # the name's baseline, then one line under it per note, the block centred in the box
        x, y = box.x + box.w / 2, box.cy + 4.5 - 6.5 * (len(node.lines) - 1)
        out.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="{_NAME_SIZE:g}" '
            f'fill="{palette.TEXT_COLOR}">{esc(node.lines[0])}</text>'
        )
        for i, line in enumerate(node.lines[1:]):
            out.append(
                f'<text x="{x:.1f}" y="{y + 13 + 12 * i:.1f}" text-anchor="middle" font-size="{_NOTE_SIZE:g}" '
                f'fill="{palette.LABEL_COLOR}">{esc(line)}</text>'
            )
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"
