"""`nbflow diff RUN_A RUN_B`: what changed for each task instance from one run to another (`nbflow.diff`).

The text is a header per instance that differs, then its parameters (`region: 'north' -> 'south'`), input files,
and code cells with their changed lines as `- ` / `+ ` and their changed outputs. Exits 0 whether or not anything
differs, as `git diff` does; `--exit-code` exits 1 when something does.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nbflow.cli.common import add_path, local_time, print_json

if TYPE_CHECKING:
    from nbflow.shapes import CellDiff, OutputChange, RunDiff, TaskDiff


def cmd_diff(args: argparse.Namespace) -> int:
    from nbflow.diff import diff_runs
    from nbflow.project import load_project
    from nbflow.store import open_store

    project = load_project(args.path)
    store = open_store(project.store_dir)
    found = diff_runs(store, args.run_a, args.run_b, args.task, project.secret_values)
    if args.json:
        print_json(found.to_json())
    else:
        print("\n".join(_text(found)))
    return 1 if args.exit_code and (found.tasks or found.tasks_more) else 0


def _text(found: RunDiff) -> list[str]:
    lines = [
        f"run {found.a.id} ({local_time(found.a.started_at)}, {found.a.state}) -> "
        f"run {found.b.id} ({local_time(found.b.started_at)}, {found.b.state})"
    ]
    for task in found.tasks:
        lines += _task_lines(task)
    if found.tasks_more:
        lines.append(f"... {found.tasks_more} more instances not compared; narrow with -t TASK.")
    differ = "1 instance differs" if len(found.tasks) == 1 else f"{len(found.tasks)} instances differ"
    lines.append(
        f"{differ}, {found.unchanged} unchanged." if found.tasks else f"no differences ({found.unchanged} unchanged)."
    )
    return lines


def _task_lines(task: TaskDiff) -> list[str]:
    states = f"{task.state_a or 'absent'} -> {task.state_b or 'absent'}"
    if task.change.value != "changed":
        states += f" ({'only in B' if task.change.value == 'added' else 'only in A'})"
    lines = [f"== {task.name}: {states}"]
    for p in task.params:
        before, after = _value(p.before, p.change.value != "added"), _value(p.after, p.change.value != "removed")
        lines.append(f"  param {p.name}: {before} -> {after}")
    lines += [f"  input {i.change.value}: {i.path}" for i in task.inputs]
    if task.code_changed and not any(c.source_changed for c in task.cells):
        lines.append("  code changed")
    for cell in task.cells:
        lines += _cell_lines(cell)
    if task.cells_more:
        lines.append(f"  ... {task.cells_more} more cells differ (`--json` lists the first ones too)")
    lines += [f"  ({note})" for note in task.notes]
    return lines


def _value(value: object, present: bool) -> str:
    from nbflow.grids import format_value

    return format_value(value) if present else "(none)"


def _cell_lines(cell: CellDiff) -> list[str]:
    index = cell.cell_b if cell.cell_b is not None else cell.cell_a
    lines = [f"  cell {index} {cell.change.value}: {cell.first_line}"]
    if cell.source_changed:
        lines += [f"    - {cell.before[i]}" for i in cell.removed]
        lines += [f"    + {cell.after[i]}" for i in cell.added]
        if cell.lines_more:
            lines.append(f"    ... {cell.lines_more} more lines")
    for output in cell.outputs:
        lines += _output_lines(output)
    return lines


def _output_lines(output: OutputChange) -> list[str]:
    if output.note:
        return [f"    output {output.kind}: {output.note}"]
    lines = [f"    output {output.kind} {output.change.value}:"]
    for mark, text in (("-", output.before), ("+", output.after)):
        if text is not None:
            lines += [f"      {mark} {line}" for line in (text.splitlines() or [""])]
    return lines


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    diff = commands.add_parser(
        "diff",
        help="what changed for each task between two runs: parameters, code, input files, outputs",
        description="Compare two runs task instance by task instance: the parameters, code cells, input file "
        "hashes and cell outputs that differ (the executed notebooks compared with nbdime). An instance up to date "
        "(skipped) in a run has no executed notebook there to compare, and says so. Exits 0 whether or not "
        "anything differs (see --exit-code).",
    )
    diff.add_argument("run_a", metavar="RUN_A", help="the earlier run: an id, a unique prefix, `latest` or `previous`")
    diff.add_argument("run_b", metavar="RUN_B", help="the later run, named the same ways")
    add_path(diff)
    diff.add_argument(
        "-t", "--task", metavar="TASK", default=None, help="only this task, or some instances of it (TASK[NAME=VALUE])"
    )
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when the runs differ, 0 when they do not")
    diff.set_defaults(handler=cmd_diff)
