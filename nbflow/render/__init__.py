"""The pipeline shown: as text (levels), JSON, DOT and SVG, drawn by Graphviz or without it from `nbflow.layout`;
and many task instances summed up in few words, for every interface.

- `text`: `graph --format json` (every instance: the contract) and `--format text`.
- `scene`: what a drawing shows: one node per task (a grid task's instances as one), edges between the nodes.
- `dot`: the drawing by Graphviz, and `draw_svg` (Graphviz where it works, else `builtin`).
- `builtin`: the drawing without Graphviz.
- `summary`: instances counted by state, the most urgent state, a run grid's values in short, the partition x task
  table of a run over a run grid.

Every drawing styles a task by its state from `nbflow.palette` and lays the graph out left to right.
"""

from nbflow.render.builtin import svg_without_graphviz
from nbflow.render.dot import GraphvizMissing, draw_svg, has_graphviz, to_dot, to_svg
from nbflow.render.scene import LABEL_LIMIT, edge_label, neighbourhood
from nbflow.render.text import task_params, to_dict, to_json, to_text

__all__ = [
    "LABEL_LIMIT",
    "GraphvizMissing",
    "draw_svg",
    "edge_label",
    "has_graphviz",
    "neighbourhood",
    "svg_without_graphviz",
    "task_params",
    "to_dict",
    "to_dot",
    "to_json",
    "to_svg",
    "to_text",
]
