"""`nbflow export airflow`: write the pipeline (or a schedule's part of it) as a DAG file for another orchestrator."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from nbflow.cli.common import add_path, note_root


def cmd_export_airflow(args: argparse.Namespace) -> int:
    from nbflow.api import load
    from nbflow.errors import UsageError
    from nbflow.export.airflow import export_airflow

    note_root(args.path)
    text = export_airflow(load(args.path), schedule=args.schedule, dag_id=args.dag_id, nbflow_command=args.nbflow)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    target = Path(args.output).expanduser()
    if not target.parent.is_dir():
        raise UsageError(f"-o {args.output}: the folder {target.parent} does not exist; create it or write elsewhere.")
    # written beside its place and renamed: Airflow's DAG processor never reads half a file
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    print(f"wrote {target}", file=sys.stderr)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="write the pipeline as a DAG for another orchestrator (airflow)",
        description="Write the pipeline as a workflow of another orchestrator, each of its tasks running nbflow "
        "itself on this project, so skips, executed notebooks and the run history keep working.",
    )
    targets = export.add_subparsers(dest="export_command", metavar="ORCHESTRATOR", required=True)
    airflow = targets.add_parser(
        "airflow",
        help="one Apache Airflow DAG file",
        description="Write one Airflow DAG file: a BashOperator per task instance running `nbflow run ROOT -t "
        "INSTANCE --no-upstream`, the pipeline's edges, retries and timeouts from the notebooks and nbflow.toml, "
        "[params] (and the schedule's parameters) as the DAG's params, which a run's conf overrides, and, with "
        "--schedule, that schedule's targets and their upstream, its cron or interval and time zone, {date} as "
        "the run's logical date. The machine running Airflow's tasks must see the project at the same path. "
        "Export again after changing the pipeline.",
    )
    add_path(airflow)
    airflow.add_argument(
        "-o", "--output", metavar="FILE", help="write here, e.g. into Airflow's dags/ folder (default: standard output)"
    )
    airflow.add_argument("--schedule", metavar="NAME", help="export this schedule (`nbflow schedule list`)")
    airflow.add_argument("--dag-id", metavar="ID", help="the DAG's id (default: nbflow_FOLDER, and _SCHEDULE)")
    airflow.add_argument(
        "--nbflow",
        metavar="COMMAND",
        help="how Airflow's tasks start nbflow, as shell text (default: this Python with -m nbflow; give "
        "`nbflow` to take it from the PATH of Airflow's workers)",
    )
    airflow.set_defaults(handler=cmd_export_airflow)
