"""The `nbflow` command: parses arguments, calls the public API, prints results; exit codes per SPEC section 3.

Only argparse is imported at start-up; each command imports what it needs, so `nbflow --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from nbflow.errors import EXIT_INVALID, NbflowError

Command = Callable[[argparse.Namespace], int]


def _add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None,
                        help="a folder inside the project (default: the current folder); the root is the nearest "
                             "folder upward holding nbflow.toml or a pyproject.toml with [tool.nbflow]")


def cmd_graph(args: argparse.Namespace) -> int:
    from nbflow import render
    from nbflow.graph import load

    pipeline = load(args.path)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbflow",
        description="Run a folder of Jupyter notebooks as a pipeline. A notebook is a task when its `parameters` "
                    "cell assigns `inputs`, `outputs` or `upstream`; nbflow links tasks by those paths.",
        epilog="Exit codes: 0 success, 1 a task failed, 2 invalid pipeline or command, 3 project locked by another "
               "run, 130 interrupted. `nbflow COMMAND --help` describes each command.",
    )
    from nbflow import __version__

    parser.add_argument("--version", action="version", version=f"nbflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    graph = commands.add_parser("graph", help="show the pipeline's tasks and how they depend on each other",
                                description="Resolve the pipeline and print its graph. Every problem (cycles, "
                                            "duplicate outputs, unknown upstream names, unreadable notebooks, "
                                            "non-literal declarations) is reported at once, with exit code 2.")
    _add_path(graph)
    graph.add_argument("--format", "-f", choices=["text", "json", "dot", "svg"], default="text",
                       help="text: levels for a terminal (default); json: tasks and edges; dot: Graphviz source; "
                            "svg: drawn with Graphviz's `dot` program")
    graph.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    graph.set_defaults(handler=cmd_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_INVALID
    try:
        return args.handler(args)
    except NbflowError as exc:
        print(f"nbflow {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"nbflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"nbflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # a bug in nbflow: say so plainly; the traceback is one variable away
        if os.environ.get("NBFLOW_DEBUG"):
            raise
        print(f"nbflow {args.command}: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in nbflow; run again with NBFLOW_DEBUG=1 for the traceback and report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
