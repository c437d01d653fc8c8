"""Alerts when a scheduled run fails: a command to run and/or a webhook to POST to.

Delivery never raises: a command that fails or a webhook that does not answer is logged, and the scheduler goes
on. The payload is the same for both (the command gets it as JSON on its standard input, and as environment
variables); it carries `text`, a one-line summary, so chat webhooks (Slack, Mattermost, Teams) show it as is. The
values of the project's secrets are masked in it, wherever an error message may have quoted one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nbflow.errors import NbflowError
from nbflow.masking import mask
from nbflow.models import TaskError, TaskState
from nbflow.project import load_project
from nbflow.store import Store
from nbflow.version import __version__

log = logging.getLogger("nbflow.scheduler")

COMMAND_TIMEOUT = 120.0
WEBHOOK_TIMEOUT = 15.0


def payload(store: Store, schedule: str, run_id: str, project_root: Path) -> dict[str, Any]:
    """What an alert says about a run: its state, message, and each failed task with its error."""
    row = store.run(run_id)
    failed = []
    for task in store.task_runs(run_id):
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
    upstream_failed = [t.name for t in store.task_runs(run_id) if t.state is TaskState.UPSTREAM_FAILED]
    state = row.state.value if row else "failed"
    if failed:
        first = failed[0]
        detail = f"{first['name']}: {first['error']['ename']}: {first['error']['evalue']}"
        if len(failed) > 1:
            detail += f" (and {len(failed) - 1} more failed task{'s' if len(failed) > 2 else ''})"
    else:
        detail = (row.message if row else None) or "no task failed"
    body = {
        "schedule": schedule,
        "run_id": run_id,
        "state": state,
        "trigger": f"schedule:{schedule}",
        "project": str(project_root),
        "started_at": row.started_at if row else None,
        "finished_at": row.finished_at if row else None,
        "message": row.message if row else None,
        "failed_tasks": failed,
        "upstream_failed": upstream_failed,
        "text": f"nbflow: scheduled run {run_id} of {schedule!r} {state}: {detail}",
    }
    masked: dict[str, Any] = mask(body, _secret_values(project_root))
    return masked


def _secret_values(project_root: Path) -> list[str]:
    """The values of the project's secrets in this process's environment (none where its settings do not read)."""
    try:
        return load_project(project_root).secret_values
    except NbflowError:
        return []


def run_command(command: str, body: dict[str, Any], cwd: Path, timeout: float = COMMAND_TIMEOUT) -> bool:
    """Run `command` in a shell in the project root, with NBFLOW_RUN_ID, NBFLOW_SCHEDULE, NBFLOW_STATE and
    NBFLOW_PROJECT set and the payload as JSON on its standard input. True when it exits 0."""
    env = {
        **os.environ,
        "NBFLOW_RUN_ID": body["run_id"],
        "NBFLOW_SCHEDULE": body["schedule"],
        "NBFLOW_STATE": body["state"],
        "NBFLOW_PROJECT": body["project"],
        "NBFLOW_MESSAGE": body["text"],
    }
    try:
        result = subprocess.run(
            command,
            shell=True,
            cwd=cwd,
            env=env,
            input=json.dumps(body),
            text=True,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        log.error("%s: the on-failure command did not finish within %.0f s; it was stopped", body["schedule"], timeout)
        return False
    except OSError as exc:
        log.error("%s: the on-failure command could not start: %s", body["schedule"], exc)
        return False
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        log.error(
            "%s: the on-failure command exited with code %d%s",
            body["schedule"],
            result.returncode,
            f": {output[-1]}" if output else "",
        )
        return False
    return True


def post_webhook(url: str, body: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> bool:
    """POST the payload as JSON to `url`. True on a 2xx answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"nbflow/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status: int = response.status
            return 200 <= status < 300
    except urllib.error.HTTPError as exc:
        log.error("%s: the on-failure webhook %s answered %d %s", body["schedule"], url, exc.code, exc.reason)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        log.error("%s: the on-failure webhook %s could not be reached: %s", body["schedule"], url, reason)
    return False


def send(
    store: Store, schedule: str, run_id: str, project_root: Path, command: str | None, webhook: str | None
) -> dict[str, bool]:
    """Deliver the alerts a schedule asks for; never raises. Returns which succeeded (`{"command": True, ...}`)."""
    delivered: dict[str, bool] = {}
    if not command and not webhook:
        return delivered
    try:
        body = payload(store, schedule, run_id, project_root)
        if command:
            delivered["command"] = run_command(command, body, project_root)
        if webhook:
            delivered["webhook"] = post_webhook(webhook, body)
    except Exception:  # an alert must never take the scheduler down
        log.exception("%s: sending the failure alert for run %s failed", schedule, run_id)
    sent = [kind for kind, ok in delivered.items() if ok]
    if sent:
        log.info("%s: alert sent for run %s (%s)", schedule, run_id, " and ".join(sent))
    return delivered
