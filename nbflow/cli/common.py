"""What the `nbflow` commands share: the project path argument, `-p NAME VALUE` pairs, and how times, durations
and JSON are printed."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        help="a folder inside the project (default: the current folder); the root is the nearest "
        "folder upward holding nbflow.toml or a pyproject.toml with [tool.nbflow]",
    )


def add_params(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("-p", "--param", action="append", nargs=2, metavar=("NAME", "VALUE"), help=text)


GRID_HELP = (
    "run every selected task that uses NAME once per value: a comma list (north,south), or a range of dates "
    "(2026-11-01..2026-11-30, step /7d) or numbers (1..10)"
)


def add_grid(parser: argparse.ArgumentParser, text: str = GRID_HELP) -> None:
    parser.add_argument("-g", "--grid", action="append", nargs=2, metavar=("NAME", "VALUES"), help=text)


def parse_params(pairs: list[list[str]] | None) -> dict[str, Any]:
    """`-p NAME VALUE` pairs -> values, each read as papermill's `-p` reads it."""
    from nbflow.params import parse_value

    return {name: parse_value(value) for name, value in pairs or []}


def print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))


def local_time(stamp: str | None) -> str:
    """A stored time in this machine's zone, to the second; `-` for none."""
    from datetime import datetime

    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def note_root(path: str | None) -> None:
    """Say which folder became the project root when no settings file marks one: a command run from a subfolder
    would otherwise silently treat that subfolder as the whole project."""
    from nbflow.project import find_root

    root, config_file = find_root(path)
    if config_file is None:
        print(
            f"nbflow: no nbflow.toml (nor a pyproject.toml with [tool.nbflow]) in {root} or any folder above it, so "
            "that folder is the project root; put an nbflow.toml in the folder you mean as the root.",
            file=sys.stderr,
        )
