"""`nbflow import TOOL`: bring a project made with another pipeline tool into nbflow (`nbflow import ploomber`)."""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path

from nbflow.errors import EXIT_INVALID


def cmd_import_ploomber(args: argparse.Namespace) -> int:
    from nbflow.adopt import writing
    from nbflow.adopt.ploomber import plan_import
    from nbflow.adopt.ploomber_tasks import Outcome

    plan = plan_import(args.path)
    spec = plan.spec
    settings = writing.settings_for(spec.root, plan.task_files, "ploomber")
    root = settings.root

    def shown(path: Path) -> str:
        return os.path.relpath(path, root)

    print(f"{shown(spec.path)}: {len(plan.tasks)} task(s)")
    width = max(len(t.name) for t in plan.tasks) + 2
    for task in plan.tasks:
        where = shown(task.file) if task.file else task.entry.source
        if task.outcome is Outcome.NOT_CONVERTED:
            print(f"  {task.outcome.value:<17}{task.name:<{width}}{where}: {task.reason}")
            continue
        print(f"  {task.outcome.value:<17}{task.name:<{width}}{where}" + (f": {task.summary}" if task.summary else ""))
        for note in task.notes:
            print(f"  {'':<17}{'':<{width}}- {note}")
    for left_out in settings.uncovered:
        print(
            f"note: {shown(settings.path)}'s `notebooks` does not cover {left_out}; add it, or nbflow will not see it"
        )
    for note in plan.notes:
        print(f"note: {note}")

    converted = [t for t in plan.tasks if t.outcome is not Outcome.NOT_CONVERTED]
    if not converted:
        print(f"nothing imported: no task of {spec.path.name} is a notebook or script nbflow can run")
        return EXIT_INVALID
    changes = {t.file: t.new_text for t in plan.changed if t.file and t.new_text is not None}
    if args.dry_run:
        for path, text in changes.items():
            before = path.read_text(encoding="utf-8").splitlines(keepends=True)
            label = shown(path)
            print("".join(difflib.unified_diff(before, text.splitlines(keepends=True), label, label)), end="")
        if settings.text is not None:
            print(f"--- /dev/null\n+++ {shown(settings.path)}")
            print("".join(f"+{line}\n" for line in settings.text.splitlines()), end="")
        print("dry run: nothing written")
        return 0
    if changes:
        backup = writing.backup_folder(root, "ploomber")
        writing.write_files(root, changes, backup)
        print(f"wrote {len(changes)} task file(s); the originals are in {shown(backup)}/")
    if settings.text is not None:
        settings.path.write_text(settings.text, encoding="utf-8")
        print(f"wrote {shown(settings.path)} (the task files as `notebooks`)")
    if not changes and settings.text is None:
        print("nothing to change: every task was imported before")
    problems = writing.check_pipeline(root)
    if problems:
        print("nbflow cannot resolve the imported pipeline yet:")
        for problem in problems:
            print(f"  - {problem}")
        return EXIT_INVALID
    print("next: `nbflow graph` shows the pipeline, `nbflow run` runs it")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "import",
        help="bring a project made with another pipeline tool into nbflow",
        description="Write nbflow's declarations into the task notebooks of a project made with another tool.",
    )
    tools = parser.add_subparsers(dest="tool", metavar="TOOL")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_INVALID

    parser.set_defaults(handler=usage)
    ploomber = tools.add_parser(
        "ploomber",
        help="a Ploomber project (pipeline.yaml)",
        description="Read a Ploomber pipeline.yaml and write nbflow's declarations into its notebook and script "
        "tasks: `inputs`, `outputs`, `upstream`, params and grid in the parameters cell, and a cell after it "
        "that rebuilds Ploomber's `upstream` and `product` dicts, so the task code runs unchanged. Function, SQL "
        "and shell tasks are listed as not converted. The originals are copied to .nbflow/backup/ first; a task "
        "imported before is left alone.",
    )
    ploomber.add_argument(
        "path",
        nargs="?",
        default=None,
        help="the Ploomber project's folder or its pipeline.yaml (default: the current folder)",
    )
    ploomber.add_argument("--dry-run", action="store_true", help="print what would change (as diffs) and write nothing")
    ploomber.set_defaults(handler=cmd_import_ploomber)
