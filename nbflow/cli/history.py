"""`nbflow status`, `nbflow runs` and `nbflow show`: what is up to date, the runs so far, and one run in detail."""

from __future__ import annotations

import argparse

from nbflow.cli.common import add_path, local_time, note_root, print_json, seconds


def cmd_status(args: argparse.Namespace) -> int:
    from nbflow import history, preflight
    from nbflow.graph import load
    from nbflow.store import open_store

    note_root(args.path)
    pipeline = load(args.path)
    preflight.check(pipeline)
    store = open_store(pipeline.project.store_dir)
    judged = history.status(pipeline, store)
    if args.json:
        print_json({"tasks": list(judged.values())})
        return 0
    width = max((len(n) for n in judged), default=4)
    for name, entry in judged.items():
        last = f"last {entry['last_state']} {seconds(entry['duration_s'])}" if entry["last_run"] else ""
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
            f"{run['id']}  {run['trigger']:<12}  {run['state']:<11}  {local_time(run['started_at'])}  "
            f"{seconds(run['duration_s']):>7}  {counts}"
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
    width = max((len(t["name"]) for t in detail["tasks"]), default=4)
    for task in detail["tasks"]:
        print(
            f"  {task['name']:<{width}}  {task['state']:<15}  {seconds(task['duration_s']):>7}  "
            f"{task['output_notebook'] or ''}".rstrip()
        )
        if task["error"]:
            print(f"  {'':<{width}}  {TaskError.from_json(task['error'])}")
    return 0


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
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, a unique prefix of one, or `latest`")
    add_path(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)
