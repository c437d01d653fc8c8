"""`nbflow schedule add|list|pause|resume|remove` (the project's schedules) and `nbflow scheduler` (the process
that fires them, in the foreground)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from nbflow.cli.common import add_grid, add_params, add_path, parse_params, print_json

if TYPE_CHECKING:
    from nbflow.project import Project


def _fire_time(stamp: str | None, tz: str) -> str:
    """A schedule's time as its own zone shows it: `2026-11-24 17:00:00 CET`."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(stamp).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z") if stamp else "-"


def _scheduler_line(project: Project) -> str:
    from nbflow.schedule import scheduler_status

    holder = scheduler_status(project)
    if holder:
        return f"scheduler: running (process {holder['pid']} on {holder['host']})"
    return (
        "scheduler: none running; schedules fire only while `nbflow scheduler` runs for this project "
        "(or JupyterLab with c.NbflowApp.scheduler = True)"
    )


def _describe(entry: dict[str, Any]) -> str:
    when = f"cron {entry['cron']}" if entry["cron"] else f"every {entry['every']}"
    grid = "".join(f", -g {name} {text}" for name, text in entry.get("grid", {}).items())
    deadline = f", deadline {entry['deadline']}" if entry.get("deadline") else ""
    return f"{when} ({entry['tz']}){grid}{deadline}"


def _comma_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text is not None else None


def cmd_schedule_add(args: argparse.Namespace) -> int:
    from nbflow.project import load_project
    from nbflow.schedule import add_schedule

    project = load_project(args.path)
    entry = add_schedule(
        project,
        args.name,
        cron=args.cron,
        every=args.every,
        tz=args.tz,
        targets=args.target,
        params=parse_params(args.param),
        grid=dict(args.grid or []),
        on_failure_command=args.on_failure_command,
        on_failure_webhook=args.on_failure_webhook,
        notify_on=_comma_list(args.notify_on),
        deadline=args.deadline,
        notify_email=_comma_list(args.email) or None,
        paused=args.paused,
        replace=args.replace,
    )
    state = "paused" if entry["paused"] else f"next fire {_fire_time(entry['next_fire'], entry['tz'])}"
    print(f"schedule {entry['name']}: {_describe(entry)}, {state}")
    print(_scheduler_line(project))
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from nbflow.project import load_project
    from nbflow.schedule import list_schedules

    project = load_project(args.path)
    entries = list_schedules(project)
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        print("no schedules yet: `nbflow schedule add NAME --cron '0 17 * * *'` (or --every 10m) adds one")
    now = datetime.now(timezone.utc)
    rows = []
    for entry in entries:
        if entry["paused"]:
            upcoming = "paused"
        elif entry["next_fire"] is None:  # its times cannot be computed here (an unknown zone): it never fires
            upcoming = "never (times unknown)"
        else:
            upcoming = _fire_time(entry["next_fire"], entry["tz"])
            if datetime.fromisoformat(entry["next_fire"]) <= now:
                upcoming += " (due)"
        targets = ",".join(entry["targets"]) or "all tasks"
        params = " ".join(f"{k}={v}" for k, v in entry["params"].items())
        last = _fire_time(entry["last_fired"], entry["tz"])
        rows.append((entry["name"], _describe(entry), upcoming, last, f"{targets} {params}".strip()))
    if rows:
        header = ("NAME", "WHEN", "NEXT FIRE", "LAST FIRED", "RUNS")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip())
    print(_scheduler_line(project))
    return 0


def cmd_schedule_change(args: argparse.Namespace) -> int:
    from nbflow import schedule
    from nbflow.project import load_project

    project = load_project(args.path)
    if args.schedule_command == "remove":
        schedule.remove_schedule(project, args.name)
        print(f"schedule {args.name} removed (its past runs stay in `nbflow runs`)")
        return 0
    change = schedule.pause_schedule if args.schedule_command == "pause" else schedule.resume_schedule
    entry = change(project, args.name)
    state = "paused" if entry["paused"] else f"next fire {_fire_time(entry['next_fire'], entry['tz'])}"
    print(f"schedule {entry['name']}: {state}")
    return 0


def _service_options(args: argparse.Namespace) -> list[str]:
    """The options of this `nbflow scheduler` that its systemd unit keeps."""
    options = ["--workers", str(args.workers)] if args.workers else []
    if args.metrics_port is not None:
        options += ["--metrics-port", str(args.metrics_port)]
        if args.metrics_address != "127.0.0.1":
            options += ["--metrics-address", args.metrics_address]
    return options


def _serve_metrics(project: Project, port: int, address: str) -> Any:
    """Serve the project's metrics over HTTP (prometheus_client's server, in a daemon thread); the server."""
    from prometheus_client import start_http_server

    from nbflow.errors import UsageError
    from nbflow.metrics import StoreCollector, project_registry

    if not 0 <= port <= 65535:
        raise UsageError(f"--metrics-port {port}: a port is a number from 1 to 65535 (0: any free port).")
    registry = project_registry(StoreCollector(lambda: project.store_dir))
    try:
        server, _ = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UsageError(
            f"--metrics-port {port}: cannot listen on {address}:{port} ({exc.strerror or exc}); choose a free port "
            "(or another --metrics-address)."
        ) from None
    return server


def cmd_scheduler(args: argparse.Namespace) -> int:
    import logging
    import signal
    from types import FrameType

    from nbflow.errors import EXIT_INTERRUPTED, EXIT_OK
    from nbflow.project import load_project
    from nbflow.schedule import list_schedules
    from nbflow.scheduler import Scheduler

    if args.print_systemd:
        from nbflow.cli.systemd import unit

        print(unit(load_project(args.path).root, _service_options(args)), end="")
        return EXIT_OK

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("nbflow.scheduler")
    for name in ("nbflow.scheduler", "nbflow.notify"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    project = load_project(args.path)
    metrics = None if args.metrics_port is None else _serve_metrics(project, args.metrics_port, args.metrics_address)
    options = {"workers": args.workers} if args.workers else {}
    scheduler = Scheduler(project, **options)
    exit_code = EXIT_OK

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal exit_code
        exit_code = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_OK
        logger.info("%s: stopping (a run in flight is cancelled)", signal.Signals(signum).name)
        scheduler.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    entries = list_schedules(project)
    active = [e for e in entries if not e["paused"]]
    logger.info(
        "nbflow scheduler for %s: %d schedule%s (%d paused); Ctrl-C or SIGTERM stops it",
        project.root,
        len(entries),
        "" if len(entries) == 1 else "s",
        len(entries) - len(active),
    )
    for entry in active:
        logger.info(
            "%s: %s, next fire %s", entry["name"], _describe(entry), _fire_time(entry["next_fire"], entry["tz"])
        )
    if not entries:
        logger.info("no schedules yet: `nbflow schedule add` adds one; this scheduler picks it up")
    if metrics is not None:
        logger.info("metrics at http://%s:%d/metrics", args.metrics_address, metrics.server_port)
    try:
        scheduler.run_forever()
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
    logger.info("scheduler stopped")
    return exit_code


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = commands.add_parser(
        "schedule",
        help="add, list, pause, resume or remove schedules (runs at set times)",
        description="Schedules live in the project's store; `nbflow scheduler` fires them. A firing is a run with "
        "trigger schedule:NAME.",
    )
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add a schedule",
        description="Add a schedule: a cron expression in a time zone, or an interval counted from now. Parameter "
        "values may use {date} and {datetime}: the fire time in the schedule's time zone, ISO format "
        "({date:%Y%m%d} formats it). A schedule never overlaps itself (a firing while its previous "
        "run goes on is recorded as skipped), and after downtime catches up with one run.",
    )
    add.add_argument("name", metavar="NAME", help="the schedule's name (letters, digits, _ - .)")
    add_path(add)
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="a cron expression, e.g. '0 17 * * *' (17:00 every day)")
    when.add_argument("--every", metavar="INTERVAL", help="an interval: 30s, 10m, 2h, 1d (or 1h30m)")
    add.add_argument(
        "--tz",
        metavar="ZONE",
        help="the time zone of --cron and of {date}/{datetime}, e.g. Europe/Paris (default: the machine's)",
    )
    add.add_argument(
        "-t",
        "--target",
        action="append",
        metavar="TASK",
        help="run this task and its upstream (repeatable; default: every task)",
    )
    add_params(add, "a parameter for each run, as for `nbflow run`; VALUE may use {date} and {datetime}")
    add_grid(add, "each run's grid, as `nbflow run -g` takes it; VALUES may use {date} and {datetime}")
    add.add_argument(
        "--on-failure-command",
        metavar="CMD",
        help="a shell command run when a run of this schedule fails (or on each --notify-on event), with "
        "NBFLOW_EVENT, NBFLOW_RUN_ID, NBFLOW_SCHEDULE, NBFLOW_STATE, NBFLOW_PROJECT set and the notice as JSON "
        "on stdin",
    )
    add.add_argument(
        "--on-failure-webhook",
        metavar="URL",
        help="a URL to POST the notice to (JSON) when a run of this schedule fails (or on each --notify-on event)",
    )
    add.add_argument(
        "--notify-on",
        metavar="EVENTS",
        help="the events that notify this schedule's command, webhook and --email (or the project's [notify] "
        "channels when it names none): failure, success, deadline, as a comma list (default: failure)",
    )
    add.add_argument(
        "--deadline",
        metavar="HH:MM",
        help="notify when no run of the day has succeeded by this time in the schedule's zone, e.g. 17:30",
    )
    add.add_argument(
        "--email",
        metavar="ADDRESSES",
        help="e-mail addresses to notify, as a comma list (the mail server is [notify.smtp] in nbflow.toml)",
    )
    add.add_argument("--paused", action="store_true", help="add it paused (`nbflow schedule resume` starts it)")
    add.add_argument("--replace", action="store_true", help="replace a schedule of the same name")
    add.set_defaults(handler=cmd_schedule_add)
    listing = actions.add_parser("list", help="list schedules with their next fire time")
    add_path(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_schedule_list)
    for action, text in (
        ("remove", "remove a schedule (its past runs stay in the history)"),
        ("pause", "stop firing a schedule until it is resumed"),
        ("resume", "fire a paused schedule again, from its next fire time on"),
    ):
        change = actions.add_parser(action, help=text)
        change.add_argument("name", metavar="NAME", help="the schedule's name")
        add_path(change)
        change.set_defaults(handler=cmd_schedule_change)

    scheduler = commands.add_parser(
        "scheduler",
        help="run the scheduler in the foreground: fire the project's schedules on time",
        description="Fire the project's schedules until stopped. One scheduler fires per project: a second one "
        "stands by and takes over when the first stops. Ctrl-C or SIGTERM stops it: the run in flight "
        "is cancelled (its kernels stopped, its tasks marked cancelled); exit code 0 on SIGTERM, "
        "130 on Ctrl-C.",
    )
    add_path(scheduler)
    scheduler.add_argument(
        "-j",
        "--workers",
        type=int,
        metavar="N",
        help="tasks at the same time in each run (default: as for `nbflow run`)",
    )
    scheduler.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics (runs, tasks, durations, last successes, the lease, notifications) at "
        "http://127.0.0.1:N/metrics while it runs (0: any free port, logged)",
    )
    scheduler.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="the address the metrics listen on (default 127.0.0.1; they have no authentication, so open another "
        "only where the network is yours, e.g. 0.0.0.0 inside a container)",
    )
    scheduler.add_argument(
        "--print-systemd",
        action="store_true",
        help="print a systemd unit that runs this scheduler as a service (with these options) and exit",
    )
    scheduler.set_defaults(handler=cmd_scheduler)
