"""What a notification says: a `Notice` built once per event (a run that failed or succeeded, a schedule's missed
deadline), then shown by each channel: the JSON payload (webhook body, command's standard input), the plain text,
and the e-mail with the run's reports attached (bounded) or linked.

The payload carries `text`, a one-line summary, so chat webhooks (Slack, Mattermost, Teams) show it as is. The
values of the project's secrets are masked in all of it, wherever an error message or a report may have quoted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from nbflow.masking import mask
from nbflow.models import RunRecord, RunState, TaskError, TaskState
from nbflow.notify_settings import SmtpSettings
from nbflow.project import Project
from nbflow.store import Store
from nbflow.store.reports import Report, reports_of_runs
from nbflow.times import local

MAX_ATTACHED = 10 * 1024 * 1024  # bytes of reports one mail carries; the others are listed
EVENT_OF_STATE = {RunState.FAILED: "failure", RunState.SUCCEEDED: "success"}


@dataclass
class Notice:
    """One event to tell: `payload` as JSON for webhooks and commands, `subject` and `text` for people."""

    event: str  # failure | success | deadline
    run_id: str | None
    schedule: str | None
    subject: str
    text: str
    payload: dict[str, Any]
    reports: list[Report] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # values to mask in what is attached


def run_notice(store: Store, project: Project, run_id: str, event: str, schedule: str | None = None) -> Notice:
    """What a notification says about a run: its state, message, each failed task with its error, its reports."""
    row = store.run(run_id)
    tasks = store.task_runs(run_id)
    failed = []
    for task in tasks:
        if task.state is TaskState.FAILED:
            error = task.error or TaskError("Error", "")
            notebook = task.output_notebook
            failed.append(
                {
                    "name": task.name,
                    "state": task.state.value,
                    "output_notebook": notebook.relative_to(store.root).as_posix() if notebook else None,
                    "error": error.to_json(),
                }
            )
    upstream_failed = [t.name for t in tasks if t.state is TaskState.UPSTREAM_FAILED]
    state = row.state.value if row else "failed"
    trigger = row.trigger if row else (f"schedule:{schedule}" if schedule else "unknown")
    if failed:
        first = failed[0]
        detail = f"{first['name']}: {first['error']['ename']}: {first['error']['evalue']}"
        if len(failed) > 1:
            detail += f" (and {len(failed) - 1} more failed task{'s' if len(failed) > 2 else ''})"
    elif row is not None and row.state is RunState.SUCCEEDED:
        detail = ", ".join(f"{n} {state}" for state, n in sorted(row.counts.items())) or "no tasks"
    else:
        detail = (row.message if row else None) or "no task failed"
    written = sorted(reports_of_runs(store, [run_id]).values(), key=lambda r: (r.task, r.instance))
    body = {
        "event": event,
        "schedule": schedule,
        "run_id": run_id,
        "state": state,
        "trigger": trigger,
        "project": str(project.root),
        "started_at": local(row.started_at) if row else None,
        "finished_at": local(row.finished_at) if row else None,
        "message": row.message if row else None,
        "params": dict(row.params) if row else {},
        "failed_tasks": failed,
        "upstream_failed": upstream_failed,
        "reports": [project.relative(r.path) for r in written],
        "text": (
            f"nbflow: scheduled run {run_id} of {schedule!r} {state}: {detail}"
            if schedule
            else f"nbflow: run {run_id} ({trigger}) {state}: {detail}"
        ),
    }
    subject = f"nbflow: {schedule} — run {run_id} {state}" if schedule else f"nbflow: run {run_id} {state} ({trigger})"
    secrets = project.secret_values
    payload: dict[str, Any] = mask(body, secrets)
    return Notice(event, run_id, schedule, mask(subject, secrets), _run_text(payload), payload, written, secrets)


def deadline_notice(
    project: Project, schedule: str, tz: str, deadline: str, day: date, runs: list[RunRecord]
) -> Notice:
    """A schedule's day without a success by its deadline; `runs` are its runs of that day, oldest first."""
    last = runs[-1] if runs else None
    if last is None:
        how = "no run"
    elif last.state is RunState.RUNNING:
        how = f"last run {last.id} still running"
    else:
        how = f"last run {last.id} {last.state}"
    text = f"nbflow: schedule `{schedule}` has not succeeded by {deadline} {tz} on {day.isoformat()}; {how}"
    payload: dict[str, Any] = {
        "event": "deadline",
        "schedule": schedule,
        "run_id": last.id if last else None,
        "state": last.state.value if last else None,
        "trigger": f"schedule:{schedule}",
        "project": str(project.root),
        "deadline": deadline,
        "tz": tz,
        "day": day.isoformat(),
        "runs": [{"run_id": r.id, "state": r.state.value, "message": r.message} for r in runs],
        "text": text,
    }
    secrets = project.secret_values
    payload = mask(payload, secrets)
    subject = f"nbflow: {schedule} — not succeeded by {deadline} {tz}"
    body = "\n".join([payload["text"], "", *(f"  run {r['run_id']}: {r['state']}" for r in payload["runs"])])
    return Notice("deadline", payload["run_id"], schedule, subject, body + "\n", payload, [], secrets)


def _run_text(payload: dict[str, Any]) -> str:
    lines = [payload["text"], ""]
    for label, key in (
        ("Run", "run_id"),
        ("Schedule", "schedule"),
        ("Trigger", "trigger"),
        ("State", "state"),
        ("Started", "started_at"),
        ("Finished", "finished_at"),
        ("Message", "message"),
        ("Project", "project"),
    ):
        if payload.get(key):
            lines.append(f"{label + ':':<10} {payload[key]}")
    if payload["params"]:
        lines += ["", "Parameters:", *(f"  {name} = {value}" for name, value in sorted(payload["params"].items()))]
    if payload["failed_tasks"]:
        lines += ["", "Failed tasks:"]
        for task in payload["failed_tasks"]:
            lines.append(f"  {task['name']}: {task['error']['ename']}: {task['error']['evalue']}")
            if task["output_notebook"]:
                lines.append(f"    executed notebook: {task['output_notebook']}")
    if payload["upstream_failed"]:
        lines += ["", "Not run (an upstream task failed): " + ", ".join(payload["upstream_failed"])]
    return "\n".join(lines) + "\n"


def email_message(notice: Notice, project: Project, smtp: SmtpSettings, recipients: list[str]) -> EmailMessage:
    """The mail: headers (From, To, Date, Message-ID, Subject, X-Nbflow-Run-Id, X-Nbflow-Event), the text, and the
    run's reports attached as HTML up to MAX_ATTACHED bytes in all (linked instead when `url_base` is set)."""
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("nbflow", domain=smtp.sender.rpartition("@")[2] or None)
    message["Subject"] = notice.subject
    message["X-Nbflow-Event"] = notice.event
    if notice.run_id:
        message["X-Nbflow-Run-Id"] = notice.run_id
    if notice.schedule:
        message["X-Nbflow-Schedule"] = notice.schedule
    lines: list[str] = []
    attached: list[tuple[str, Path]] = []
    used = 0
    url_base = project.notify.url_base
    for report in notice.reports:
        shown = project.relative(report.path)
        if url_base:
            lines.append(f"  {url_base.rstrip('/')}/{shown}" if not shown.startswith("..") else f"  {report.path}")
            continue
        try:
            size = report.copy.stat().st_size
        except OSError:
            lines.append(f"  {shown} (its copy {project.relative(report.copy)} is gone)")
            continue
        if used + size > MAX_ATTACHED:
            lines.append(f"  {shown} (not attached: the reports of one mail are kept under {MAX_ATTACHED >> 20} MiB)")
            continue
        used += size
        name = _attachment_name(report.path, {name for name, _ in attached})
        attached.append((name, report.copy))
        lines.append(f"  {shown} (attached as {name})")
    text = notice.text + ("\nReports:\n" + "\n".join(lines) + "\n" if lines else "")
    message.set_content(text)
    for name, copy in attached:
        html = mask(copy.read_text(encoding="utf-8", errors="replace"), notice.secrets)
        message.add_attachment(html, subtype="html", filename=name)
    return message


def _attachment_name(path: Path, taken: set[str]) -> str:
    """The report's file name, numbered where two reports of a run share one."""
    name, number = path.name, 2
    while name in taken:
        name = f"{path.stem}-{number}{path.suffix}"
        number += 1
    return name
