"""`nbflow reports`: the HTML reports runs wrote, the latest of each task or instance, or every version kept.

A task's declared path holds its latest report; each run keeps its own copy beside its executed notebooks, which
`--all` lists, so an earlier day's report can still be opened after the path was written again.
"""

from __future__ import annotations

import argparse
from typing import Any

from nbflow.cli.common import add_path, local_time, print_json


def cmd_reports(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.errors import UsageError
    from nbflow.grids import parse_selector
    from nbflow.project import load_project
    from nbflow.store import open_store

    store = open_store(load_project(args.path).store_dir)
    selectors = [parse_selector(target) for target in args.task or []]
    listed = [entry.to_json() for entry in history.reports(store, selectors, every=args.all).root]
    if selectors:
        found = history.reports(store).root
        unknown = [t for t, s in zip(args.task, selectors) if not any(s.matches(r.task, r.grid) for r in found)]
        if unknown:
            tasks = ", ".join(dict.fromkeys(r.task for r in found)) or "none yet"
            raise UsageError(
                f"-t {unknown[0]}: no run has written a report of it (tasks with reports: {tasks}); a task writes "
                "one when its parameters cell declares `report` and it succeeds."
            )
    if args.json:
        print_json(listed)
        return 0
    if not listed:
        print("no reports yet: a task writes one when its parameters cell declares `report` and it succeeds")
        return 0
    width = max(len(entry["name"]) for entry in listed)
    for entry in listed:
        print(f"{entry['name']:<{width}}  {_line(entry, args.all)}".rstrip())
    return 0


def _line(entry: dict[str, Any], every: bool) -> str:
    """Run, time, file (the run's copy when every version is listed), and the parameters not in the name."""
    path, there = (entry["run_copy"], entry["run_copy_exists"]) if every else (entry["path"], entry["exists"])
    shown = path + ("" if there else " (missing)") + ("  (latest)" if every and entry["latest"] else "")
    params = ", ".join(f"{k}={v!r}" for k, v in entry["params"].items() if k not in entry["grid"])
    return f"{entry['run_id']}  {local_time(entry['written_at'])}  {shown}  {params}"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reports = commands.add_parser(
        "reports",
        help="the HTML reports tasks wrote: the latest of each task or instance, or every version kept",
        description="List the reports tasks declaring `report` wrote: for each task or grid instance the latest, "
        "with its run, time, path (relative to the project root) and parameter values. Each run keeps its own copy "
        "under .nbflow/runs/RUN_ID/; --all lists those too, newest first.",
    )
    add_path(reports)
    reports.add_argument(
        "-t",
        "--task",
        action="append",
        metavar="TASK",
        help="only this task's reports, or some instances' (TASK[NAME=VALUE]); may be repeated",
    )
    reports.add_argument("--all", action="store_true", help="every version kept, each run's copy, newest first")
    reports.add_argument("--json", action="store_true", help="print JSON")
    reports.set_defaults(handler=cmd_reports)
