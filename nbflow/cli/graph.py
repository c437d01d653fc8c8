"""`nbflow graph`: the pipeline's tasks and how they depend on each other, as text, JSON, Graphviz source or SVG."""

from __future__ import annotations

import argparse
import sys

from nbflow.cli.common import add_path, note_root
from nbflow.errors import EXIT_INVALID


def cmd_graph(args: argparse.Namespace) -> int:
    from nbflow import preflight, render
    from nbflow.graph import load

    note_root(args.path)
    pipeline = load(args.path)
    preflight.check(pipeline)  # what would stop a run is reported here too, before anyone runs it
    if args.format == "json":
        out = render.to_json(pipeline)
    elif args.format == "dot":
        out = render.to_dot(pipeline).source
    elif args.format == "svg":
        try:
            out = render.to_svg(pipeline)
        except render.GraphvizMissing as exc:
            print(f"nbflow graph: {exc}", file=sys.stderr)
            return EXIT_INVALID
    else:
        out = render.to_text(pipeline)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(out)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    graph = commands.add_parser(
        "graph",
        help="show the pipeline's tasks and how they depend on each other",
        description="Resolve the pipeline and print its graph. Every problem (cycles, "
        "duplicate outputs, unknown upstream names, unreadable notebooks, "
        "non-literal declarations) is reported at once, with exit code 2.",
    )
    add_path(graph)
    graph.add_argument(
        "--format",
        "-f",
        choices=["text", "json", "dot", "svg"],
        default="text",
        help="text: levels for a terminal (default); json: tasks and edges; dot: Graphviz source; "
        "svg: drawn with Graphviz's `dot` program",
    )
    graph.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    graph.set_defaults(handler=cmd_graph)
