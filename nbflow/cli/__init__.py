"""The `nbflow` command: parses arguments, calls the public API, prints results, exits with the codes of
`nbflow.errors`.

Each command group is a module here with its handlers and an `add_commands(subparsers)`; `common` holds what they
share. Only argparse is imported at start-up: each handler imports what it needs, so `nbflow --help` stays fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence

from nbflow.cli import adopt, diff, export, graph, history, reports, run, schedule
from nbflow.errors import EXIT_INTERRUPTED, EXIT_INVALID, NbflowError
from nbflow.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbflow",
        description="Run a folder of Jupyter notebooks as a pipeline. A notebook is a task when its `parameters` "
        "cell assigns `inputs`, `outputs` or `upstream`; nbflow links tasks by those paths.",
        epilog="Exit codes: 0 success, 1 a task failed, 2 invalid pipeline or command, 3 project locked by another "
        "run, 130 interrupted. `nbflow COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"nbflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (graph, run, history, diff, reports, schedule, adopt, export):
        group.add_commands(commands)
    return parser


def _skip_uri_grammars() -> None:
    """jsonschema imports two optional packages when installed (jupyter_events brings them): `rfc3987_syntax`,
    which builds an Earley parser when imported, and `rfc3986_validator`, which compiles a large regular expression;
    every process that imports nbformat pays for both. They only check the `iri` and `uri` string formats, which no
    notebook schema uses, and jsonschema treats both as optional, so in this command's own process nbflow does
    without them. (Not done when nbflow is used as a library.)"""
    for name in ("rfc3987_syntax", "rfc3986_validator"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


# 128 + SIGPIPE, what a shell reports for a command whose reader closed the pipe
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    _skip_uri_grammars()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_INVALID
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except NbflowError as exc:
        print(f"nbflow {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"nbflow {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`nbflow runs | head`): stop quietly, and keep Python's exit from complaining when
        # it flushes stdout again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except sqlite3.Error as exc:  # the store on a full or read-only disk, or damaged: not nbflow's bug
        print(
            f"nbflow {args.command}: the run store (.nbflow/nbflow.db) cannot be used: {exc}. Free disk space or "
            "fix the folder's permissions; if the file is damaged, move it aside (executed notebooks are kept).",
            file=sys.stderr,
        )
        return EXIT_INVALID
    except OSError as exc:
        print(f"nbflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # a bug in nbflow: say so plainly; the traceback is one variable away
        if os.environ.get("NBFLOW_DEBUG"):
            raise
        print(
            f"nbflow {args.command}: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in nbflow; run again with NBFLOW_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
    finally:
        # The command is over and the process about to exit: spare the interpreter's final garbage collections a
        # walk over every object the imports made (papermill and jsonschema make many).
        gc.freeze()


__all__ = ["build_parser", "main"]
