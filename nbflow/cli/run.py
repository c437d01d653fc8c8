"""`nbflow run`: run the pipeline (or targets and their upstream) with progress on the terminal, or say what a run
would do (`--dry-run`)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from nbflow.cli.common import GRID_HELP, add_grid, add_params, add_path, note_root, parse_params, seconds

if TYPE_CHECKING:
    from nbflow.api import Pipeline
    from nbflow.project import Project


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both cancel the run (its kernels stopped, its tasks `cancelled`): SIGINT even where the
    shell started this process with it ignored (`nbflow run &` in a script), and SIGTERM, which would otherwise
    end the process at once and leave the run for the next command to mark `interrupted`."""

    def cancel(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, cancel)


def cmd_run(args: argparse.Namespace) -> int:
    if not args.dry_run and args.executor == "local" and not args.no_prewarm:
        from nbflow.run.forks import start_spare

        start_spare()  # first: the server's own imports run beside all this process does before a first task
    from nbflow.api import load

    _stop_on_signals()
    if args.verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nbflow: %(message)s"))
        notes = logging.getLogger("nbflow.preload")
        notes.addHandler(handler)
        notes.setLevel(logging.INFO)
    from nbflow.grids import parse_grid_values
    from nbflow.models import TaskState
    from nbflow.progress import describe_error, progress_for

    if not args.dry_run and args.executor == "local" and not args.no_prewarm:
        from nbflow.run.kernels import import_kernel_client_soon

        import_kernel_client_soon()  # this process's own, while it reads the pipeline
    note_root(args.path)
    pipeline = load(args.path)
    params = parse_params(args.param)
    grid = {name: parse_grid_values(name, text) for name, text in args.grid or []}
    if args.rerun_failed:
        args.target, params, grid = _rerun(args, pipeline)
        args.force, args.no_upstream, args.downstream = True, True, True
    if args.dry_run:
        steps = pipeline.plan(
            args.target, params, force=args.force, grid=grid, upstream=not args.no_upstream, downstream=args.downstream
        )
        width = max([24, *(len(step.task) + 1 for step in steps)])
        for step in steps:
            print(f"{step.task:<{width}} {step.action:<24} {'; '.join(step.reasons)}".rstrip())
        return 0
    with progress_for(sys.stdout) as progress:
        run = pipeline.run(
            targets=args.target,
            params=params,
            workers=args.workers,
            force=args.force,
            grid=grid,
            upstream=not args.no_upstream,
            downstream=args.downstream,
            no_wait=args.no_wait,
            fail_fast=args.fail_fast,
            timeout=args.timeout,
            retries=args.retries,
            executor=args.executor,
            dask_address=args.dask_address,
            prewarm=not args.no_prewarm,
            preload=not args.no_preload,
            trigger="cli",
            notify=False,  # notified below, saying here which channel failed
            on_event=progress,
        )
    counts: dict[str, int] = {}
    for result in run.tasks.values():
        counts[result.state] = counts.get(result.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    print(f"run {run.id} {run.state}: {summary or 'no tasks'} ({seconds(run.duration_s)})")
    root = pipeline.project.root
    for result in run.tasks.values():
        if result.state is TaskState.FAILED:
            notebook = (
                f"; executed notebook: {result.output_notebook.relative_to(root)}" if result.output_notebook else ""
            )
            print(f"  {result.name}: {describe_error(result)}{notebook}", file=sys.stderr)
    if pipeline.project.notify.runs == "all":
        _notify(pipeline.project, run.id)
    return run.exit_code


def _rerun(args: argparse.Namespace, pipeline: Pipeline) -> tuple[list[str], dict[str, Any], dict[str, list[Any]]]:
    """`--rerun-failed RUN`: that run's failed and cancelled instances, their downstream, its parameters and grid."""
    from nbflow.errors import UsageError
    from nbflow.history import find_run
    from nbflow.run.rerun import rerun_failed
    from nbflow.store import open_store

    given = [option for option, value in (("-t", args.target), ("-p", args.param), ("-g", args.grid)) if value]
    if given:
        raise UsageError(
            f"--rerun-failed takes the targets, parameters and grid of the run it reruns; leave out {', '.join(given)}."
        )
    store = open_store(pipeline.project.store_dir)
    try:
        found = find_run(store, args.rerun_failed)
        if found is None:
            raise UsageError(
                f"no run {args.rerun_failed!r} in this project (or the prefix is not unique); see `nbflow runs`."
            )
        rerun = rerun_failed(pipeline, store, found)
    finally:
        store.close()
    return rerun.targets, rerun.params, rerun.grid


def _notify(project: Project, run_id: str) -> None:
    """`[notify]` with `runs = "all"`: tell of this run's end, waiting at most 30 s; a channel that failed is said in
    one line (its attempts are logged and recorded in the store); the run's exit code stays the run's."""
    from nbflow.notify import deliver_after_run
    from nbflow.store.notifications import DeliveryState

    for delivery in deliver_after_run(project, run_id, timeout=30.0):
        if delivery.state is not DeliveryState.SENT:
            print(
                f"notification not delivered ({delivery.channel} {delivery.target}, {delivery.attempts} attempt"
                f"{'s' if delivery.attempts != 1 else ''}): {delivery.last_error}",
                file=sys.stderr,
            )


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        "--no-upstream",
        action="store_true",
        help="run only the targets (-t), not their upstream: it is taken as done, and what it writes must be "
        "there already (for an outside orchestrator that runs each task itself, as `nbflow export airflow` does)",
    )
    run.add_argument(
        "--downstream",
        action="store_true",
        help="run what lies downstream of the targets (-t) too: with --force --no-upstream, a task and everything "
        'after it ("run from here")',
    )
    run.add_argument(
        "--rerun-failed",
        metavar="RUN",
        help="run again the failed and cancelled tasks of RUN (an id, a prefix, `latest`) and what lies downstream "
        "of them, with RUN's parameters and grid, forced; their upstream is taken as done",
    )
    add_params(
        run,
        "set a parameter for every task that assigns NAME, or TASK.NAME for one task; VALUE is "
        "read as papermill reads it (int, float, True/False, None, else text)",
    )
    add_grid(run, GRID_HELP + "; each instance is skipped when up to date")
    run.add_argument("-j", "--workers", type=int, metavar="N", help="tasks at the same time (default: CPU count)")
    run.add_argument("--force", action="store_true", help="rerun every selected task, up to date or not")
    run.add_argument("--dry-run", action="store_true", help="say what would run and why, run nothing")
    run.add_argument("--fail-fast", action="store_true", help="stop everything at the first failure")
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="exit 3 without running anything when another run that is still going holds a task instance this "
        "run needs (by default that instance waits for it, and the rest goes on)",
    )
    run.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit per task, in seconds")
    run.add_argument("--retries", type=int, metavar="N", help="rerun a failed task up to N times")
    run.add_argument(
        "--no-prewarm",
        action="store_true",
        help="start each task's kernel only when the task starts (by default kernels for the next "
        "tasks start while others run; each kernel still serves one task only)",
    )
    run.add_argument(
        "--no-preload",
        action="store_true",
        help="have each kernel import what its notebook imports itself (by default the fork server imports "
        "them once, before the kernels fork; `preload = false` in nbflow.toml for every run)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="say more as the run goes: which modules were preloaded, which were not and why",
    )
    run.add_argument(
        "--executor",
        default="local",
        metavar="NAME",
        help="where tasks run: local (default), dask, or an executor another package registers in the "
        "nbflow.executors entry-point group",
    )
    run.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="the Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS); data paths "
        "must be on a filesystem the workers share",
    )
    run.set_defaults(handler=cmd_run)
