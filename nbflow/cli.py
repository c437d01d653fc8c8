"""The `nbflow` command: parses arguments, calls the public API, prints results; exit codes per SPEC section 3.

Only argparse is imported at start-up; each command imports what it needs, so `nbflow --help` stays fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

from nbflow.errors import EXIT_INVALID, NbflowError

Command = Callable[[argparse.Namespace], int]


def add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=None,
        help="a folder inside the project (default: the current folder); the root is the nearest "
        "folder upward holding nbflow.toml or a pyproject.toml with [tool.nbflow]",
    )


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


def _local_time(stamp: str | None) -> str:
    from datetime import datetime

    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def _seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def print_json(value) -> None:
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))


def parse_params(pairs: list[list[str]] | None) -> dict:
    from nbflow.params import parse_value

    return {name: parse_value(value) for name, value in pairs or []}


def cmd_run(args: argparse.Namespace) -> int:
    from nbflow.api import load
    from nbflow.models import TaskState
    from nbflow.progress import describe_error, progress_for

    if not args.dry_run and args.executor == "local" and not args.no_prewarm:
        from nbflow.run.forkserver import start_spare

        start_spare()  # its imports run while this process reads the pipeline
    pipeline = load(args.path)
    params = parse_params(args.param)
    if args.dry_run:
        for step in pipeline.plan(args.target, params, force=args.force):
            print(f"{step.task:<24} {step.action:<24} {'; '.join(step.reasons)}".rstrip())
        return 0
    with progress_for(sys.stdout) as progress:
        run = pipeline.run(
            targets=args.target,
            params=params,
            workers=args.workers,
            force=args.force,
            fail_fast=args.fail_fast,
            timeout=args.timeout,
            retries=args.retries,
            executor=args.executor,
            dask_address=args.dask_address,
            prewarm=not args.no_prewarm,
            trigger="cli",
            on_event=progress,
        )
    counts: dict[str, int] = {}
    for result in run.tasks.values():
        counts[result.state] = counts.get(result.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    print(f"run {run.id} {run.state}: {summary or 'no tasks'} ({_seconds(run.duration_s)})")
    root = pipeline.project.root
    for result in run.tasks.values():
        if result.state is TaskState.FAILED:
            notebook = (
                f"; executed notebook: {result.output_notebook.relative_to(root)}" if result.output_notebook else ""
            )
            print(f"  {result.name}: {describe_error(result)}{notebook}", file=sys.stderr)
    return run.exit_code


def cmd_status(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.graph import load
    from nbflow.store import open_store

    pipeline = load(args.path)
    store = open_store(pipeline.project.store_dir)
    judged = history.status(pipeline, store)
    if args.json:
        print_json({"tasks": list(judged.values())})
        return 0
    width = max((len(n) for n in judged), default=4)
    for name, entry in judged.items():
        last = f"last {entry['last_state']} {_seconds(entry['duration_s'])}" if entry["last_run"] else ""
        print(f"{name:<{width}}  {entry['status']:<10}  {last:<22}  {'; '.join(entry['reasons'])}".rstrip())
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.project import load_project
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
        print(
            f"{run['id']}  {run['trigger']:<12}  {run['state']:<11}  {_local_time(run['started_at'])}  "
            f"{_seconds(run['duration_s']):>7}  {counts}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nbflow import history
    from nbflow.errors import UsageError
    from nbflow.models import TaskError
    from nbflow.project import load_project
    from nbflow.store import open_store

    store = open_store(load_project(args.path).store_dir)
    run_id = history.find_run(store, args.run_id)
    if run_id is None:
        raise UsageError(
            f"no run {args.run_id!r} in this project (or the prefix is ambiguous); `nbflow runs` lists them."
        )
    detail = history.run_detail(store, run_id)
    if args.json:
        print_json(detail)
        return 0
    print(
        f"run {detail['id']} ({detail['trigger']}) {detail['state']}, started {_local_time(detail['started_at'])}, "
        f"{_seconds(detail['duration_s'])}"
    )
    message = store.run(run_id).message
    if message:
        print(message)
    if detail["params"]:
        print("params: " + ", ".join(f"{k}={v!r}" for k, v in detail["params"].items()))
    width = max((len(t["name"]) for t in detail["tasks"]), default=4)
    for task in detail["tasks"]:
        print(
            f"  {task['name']:<{width}}  {task['state']:<15}  {_seconds(task['duration_s']):>7}  "
            f"{task['output_notebook'] or ''}".rstrip()
        )
        if task["error"]:
            print(f"  {'':<{width}}  {TaskError.from_json(task['error'])}")
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

    run = commands.add_parser(
        "run",
        help="run the pipeline (or targets and their upstream), skipping what is up to date",
        description="Run the targets (default: every task) and their upstream in dependency order, independent "
        "tasks at the same time. Each task runs with papermill in a fresh kernel started in the "
        "notebook's folder; executed notebooks are kept under .nbflow/runs/RUN_ID/. A task is skipped "
        "when its code, parameters and inputs are unchanged since its last success and its outputs are "
        "still there.",
    )
    add_path(run)
    run.add_argument(
        "-t", "--target", action="append", metavar="TASK", help="run this task and its upstream (repeatable)"
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        nargs=2,
        metavar=("NAME", "VALUE"),
        help="set a parameter for every task that assigns NAME, or TASK.NAME for one task; VALUE is "
        "read as papermill reads it (int, float, True/False, None, else text)",
    )
    run.add_argument("-j", "--workers", type=int, metavar="N", help="tasks at the same time (default: CPU count)")
    run.add_argument("--force", action="store_true", help="rerun every selected task, up to date or not")
    run.add_argument("--dry-run", action="store_true", help="say what would run and why, run nothing")
    run.add_argument("--fail-fast", action="store_true", help="stop everything at the first failure")
    run.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit per task, in seconds")
    run.add_argument("--retries", type=int, metavar="N", help="rerun a failed task up to N times")
    run.add_argument(
        "--no-prewarm",
        action="store_true",
        help="start each task's kernel only when the task starts (by default kernels for the next "
        "tasks start while others run; each kernel still serves one task only)",
    )
    run.add_argument("--executor", choices=["local", "dask"], default="local", help="where tasks run")
    run.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="the Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS); data paths "
        "must be on a filesystem the workers share",
    )
    run.set_defaults(handler=cmd_run)

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
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, a unique prefix of one, or `latest`")
    add_path(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)

    from nbflow.cli_schedule import add_commands

    add_commands(commands)
    return parser


def _skip_uri_grammars() -> None:
    """jsonschema imports two optional packages when installed (jupyter_events brings them): `rfc3987_syntax`,
    which builds an Earley parser at import (over a second of CPU), and `rfc3986_validator`, which compiles a large
    regular expression (a few hundredths of a second): paid by every process that imports nbformat. They only check
    the `iri` and `uri` string formats, which no notebook schema uses; jsonschema treats both as optional, so in this
    command's own process nbflow does without them. (Not done when nbflow is used as a library.)"""
    for name in ("rfc3987_syntax", "rfc3986_validator"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    _skip_uri_grammars()
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
        print(
            f"nbflow {args.command}: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in nbflow; run again with NBFLOW_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
    finally:
        # The command is over and the process about to exit: spare the interpreter's final garbage collections a
        # walk over every object the imports made (0.05-0.2 s with papermill and jsonschema loaded).
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
