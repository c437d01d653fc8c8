"""`nbflow status`, `nbflow runs` and `nbflow show`: what is up to date, the runs so far, and one run in detail.

A grid task's instances are listed under a line of their own counting them by state; a run over a run grid shows
a table of states, a row per value and a column per task. Past a few instances, only the ones that need a look are
listed (`--json` always lists every instance).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nbflow.cli.common import add_path, local_time, note_root, print_json, seconds

if TYPE_CHECKING:
    from nbflow.render.summary import PartitionTable

LISTED = 12  # a grid task with more instances than this lists in `status` only those not up to date, this many
SHOWN = 40  # a run with more instances than this (or with a run grid) lists in `show` only those that did not
# succeed or skip

# A line of a listing: what it names, then its entry (a row of values) or, for a task's line, its counts.
Line = tuple[str, "dict[str, Any] | str"]


def _print_lines(lines: list[Line], row: Any) -> None:
    """The lines, their names in one column; `row(entry)` is what follows an entry's name, and a line with nothing
    after its name is a note, left out of the column's width."""
    width = max((len(name) for name, entry in lines if entry != ""), default=4)
    for name, entry in lines:
        print(f"{name:<{width}}  {entry}".rstrip() if isinstance(entry, str) else f"{name:<{width}}  {row(entry)}")


def cmd_status(args: argparse.Namespace) -> int:
    from nbflow import history, preflight
    from nbflow.graph import load
    from nbflow.models import TaskStatus
    from nbflow.render.scene import in_grid_order
    from nbflow.render.summary import counts_text
    from nbflow.store import open_store

    note_root(args.path)
    pipeline = load(args.path)
    preflight.check(pipeline)
    store = open_store(pipeline.project.store_dir)
    judged = history.status(pipeline, store)
    if args.json:
        print_json({"tasks": list(judged.values())})
        return 0
    lines: list[Line] = []
    notes: list[str] = []
    for task, names in pipeline.instances.items():
        entries = [judged[n] for n in in_grid_order(pipeline, names)]
        if len(entries) == 1:
            lines.append((names[0], entries[0]))
            continue
        lines.append((task, f"{len(entries)} instances: {counts_text((e['status'] for e in entries), str)}"))
        listed = entries if len(entries) <= LISTED else [e for e in entries if e["status"] != TaskStatus.UP_TO_DATE]
        lines += [(f"  {e['name']}", e) for e in listed[:LISTED]]
        if len(listed) > LISTED:
            lines.append((f"  ... and {len(listed) - LISTED} more not up to date", ""))
        if len(listed) < len(entries):
            notes.append(task)

    def row(entry: dict[str, Any]) -> str:
        last = f"last {entry['last_state']} {seconds(entry['duration_s'])}" if entry["last_run"] else ""
        return f"{entry['status']:<10}  {last:<22}  {'; '.join(entry['reasons'])}".rstrip()

    _print_lines(lines, row)
    if notes:
        print(f"({', '.join(notes)}: the instances up to date are not listed; `nbflow status --json` lists each.)")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.project import load_project
    from nbflow.render.summary import grid_text
    from nbflow.store import open_store

    store = open_store(load_project(args.path).store_dir)
    runs = [history.run_summary(row) for row in store.runs(limit=args.limit)]
    if args.json:
        print_json(runs)
        return 0
    if not runs:
        print("no runs yet: `nbflow run` starts one")
    for run in runs:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(run["counts"].items()))
        grid = f"  grid: {grid_text(run['grid'])}" if run["grid"] else ""
        print(
            f"{run['id']}  {run['trigger']:<12}  {run['state']:<11}  {local_time(run['started_at'])}  "
            f"{seconds(run['duration_s']):>7}  {counts}{grid}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.errors import UsageError
    from nbflow.models import TaskError, TaskState
    from nbflow.project import load_project
    from nbflow.render.summary import counts_text, grid_text, partition_table
    from nbflow.store import open_store

    store = open_store(load_project(args.path).store_dir)
    run_id = history.find_run(store, args.run_id)
    detail = history.run_detail(store, run_id) if run_id is not None else None
    if run_id is None or detail is None:
        raise UsageError(
            f"no run {args.run_id!r} in this project (or the prefix is ambiguous); `nbflow runs` lists them."
        )
    if args.json:
        print_json(detail)
        return 0
    print(
        f"run {detail['id']} ({detail['trigger']}) {detail['state']}, started {local_time(detail['started_at'])}, "
        f"{seconds(detail['duration_s'])}"
    )
    record = store.run(run_id)
    if record is not None and record.message:
        print(record.message)
    if detail["params"]:
        print("params: " + ", ".join(f"{k}={v!r}" for k, v in detail["params"].items()))
    if detail["grid"]:
        print(f"grid: {grid_text(detail['grid'])}")
        print(_partition_lines(partition_table(detail["grid"], store.task_runs(run_id))) + "\n")
    tasks = detail["tasks"]
    # the table of a run grid, or a long run: only the instances that need a look are listed
    every = len(tasks) <= SHOWN and not detail["grid"]
    listed = tasks if every else [t for t in tasks if not TaskState(t["state"]).ok]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for entry in tasks:
        by_task.setdefault(entry["task"], []).append(entry)
    chosen = {id(e) for e in listed}
    lines: list[Line] = []
    for task, entries in by_task.items():
        shown = [e for e in entries if id(e) in chosen]
        if len(entries) > 1 and shown:
            lines.append((f"  {task}", f"{len(entries)} instances: {counts_text((e['state'] for e in entries), str)}"))
            lines += [(f"    {e['name']}", e) for e in shown]
        elif shown:
            lines.append((f"  {shown[0]['name']}", shown[0]))

    def row(entry: dict[str, Any]) -> str:
        line = f"{entry['state']:<15}  {seconds(entry['duration_s']):>7}  {entry['output_notebook'] or ''}".rstrip()
        return line + (f"\n      {TaskError.from_json(entry['error'])}" if entry["error"] else "")

    _print_lines(lines, row)
    if len(listed) < len(tasks):
        print(
            f"{len(tasks) - len(listed)} of {len(tasks)} instances succeeded or were up to date and are not listed; "
            f"`nbflow show {detail['id']} --json` lists each with its executed notebook."
        )
    return 0


def _partition_lines(table: PartitionTable | None) -> str:
    """The partition x task table as text: a row per value of the run grid, a column per task it varies."""
    if table is None:
        return ""
    header = [", ".join(table.names), *table.tasks]
    rows = [[table.row_label(i), *(table.cell_text(i, t) for t in table.tasks)] for i in range(len(table.rows))]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    if table.once:
        lines.append("  once for the whole run: " + ", ".join(f"{t.name} {t.state}" for t in table.once))
    return "\n".join(lines)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="which tasks are up to date, stale (and why), never run or failed",
        description="Judge every task with the default parameter values.",
    )
    add_path(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)

    runs = commands.add_parser("runs", help="list runs, newest first")
    add_path(runs)
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.add_argument("-n", "--limit", type=int, default=None, metavar="N", help="only the newest N runs")
    runs.set_defaults(handler=cmd_runs)

    show = commands.add_parser("show", help="one run: each task's state, duration, error and executed notebook")
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, a unique prefix of one, `latest` or `previous`")
    add_path(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)
