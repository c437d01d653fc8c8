"""Where a notice goes: e-mail over SMTP (smtplib), a webhook (a JSON POST) or a shell command; and which of them
an event reaches (`channels_for`: the project's `[notify]`, and a schedule's own settings added to it).

Each `send` makes one attempt and raises `DeliveryError` saying why it failed, `permanent` when trying again cannot
mend it (no mail server configured, a password variable missing); `nbflow.notify.deliver` retries the others.
"""

from __future__ import annotations

import ipaddress
import json
import os
import smtplib
import socket
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from nbflow.notify.message import Notice, email_message
from nbflow.notify_settings import SmtpSettings
from nbflow.project import Project
from nbflow.schedule.model import Schedule
from nbflow.version import __version__

COMMAND_TIMEOUT = 120.0
WEBHOOK_TIMEOUT = 15.0
EMAIL, WEBHOOK, COMMAND = "email", "webhook", "command"


class DeliveryError(Exception):
    """One attempt failed; `permanent`: no later attempt can succeed."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Channel:
    """`kind` email (`target`: the recipients, comma-separated), webhook (the URL) or command (the shell line)."""

    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind} {self.target}" if self.kind != EMAIL else f"e-mail to {self.target}"

    def send(self, notice: Notice, project: Project) -> None:
        if self.kind == EMAIL:
            smtp = project.notify.smtp
            if smtp is None:
                raise DeliveryError(f"no mail server: add [notify.smtp] to {project.settings_file}", permanent=True)
            recipients = self.target.split(", ")
            send_email(smtp, email_message(notice, project, smtp, recipients), recipients)
        elif self.kind == WEBHOOK:
            if not project.notify.allow_private_webhooks:
                refuse_private(self.target, project)
            post_webhook(self.target, notice.payload)
        else:
            run_command(self.target, notice, project)


def channels_for(project: Project, event: str, scheduled: bool, schedule: Schedule | None = None) -> list[Channel]:
    """The channels `event` reaches: the project's when `[notify].on` has it (for a scheduled run, or for any run
    with `runs = "all"`), and the schedule's when its events have it: its own command, webhook and addresses, or
    the project's channels when it names none. The same target is reached once."""
    settings = project.notify
    emails: list[str] = []
    others: list[Channel] = []

    def add(addresses: Any, webhook: str | None, command: str | None) -> None:
        emails.extend(a for a in addresses if a not in emails)
        for channel in (Channel(WEBHOOK, webhook) if webhook else None, Channel(COMMAND, command) if command else None):
            if channel is not None and channel not in others:
                others.append(channel)

    project_channels = (settings.email, settings.webhook, settings.command)
    if event in settings.on and (scheduled or settings.runs == "all"):
        add(*project_channels)
    if schedule is not None and event in schedule.events:
        if schedule.has_channels:
            add(schedule.notify_email, schedule.on_failure_webhook, schedule.on_failure_command)
        else:
            add(*project_channels)
    return ([Channel(EMAIL, ", ".join(emails))] if emails else []) + others


def send_email(smtp: SmtpSettings, message: Any, recipients: list[str]) -> None:
    """One SMTP session: SSL from the start, or STARTTLS, or plain; logged in when a user is set."""
    password = None
    if smtp.user:
        password = os.environ.get(smtp.password_env or "")
        if password is None:
            raise DeliveryError(
                f"the SMTP password variable {smtp.password_env} is not set in the environment of this process",
                permanent=True,
            )
    context = ssl.create_default_context(cafile=smtp.ca_file) if smtp.security != "none" else None
    try:
        client: smtplib.SMTP
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.user and password is not None:
                client.login(smtp.user, password)
            refused = client.send_message(message, smtp.sender, recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the mail server {smtp.host}:{smtp.port} refused the login of {smtp.user}: {exc}") from exc
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"the mail server {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}") from exc
    if refused:
        raise DeliveryError(f"the mail server refused {', '.join(sorted(refused))}", permanent=True)


def refuse_private(url: str, project: Project) -> None:
    """DeliveryError (permanent) when the webhook's host is, or resolves to, a loopback, private, link-local or
    otherwise non-public address: a notification must not become a way to reach the machine's own services."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        resolved = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"the webhook {url}: its host {host!r} does not resolve ({exc})") from exc
    inner = sorted(a for a in resolved if not ipaddress.ip_address(a.split("%")[0]).is_global)
    if inner:
        raise DeliveryError(
            f"the webhook {url} goes to {host} = {', '.join(inner)}, a loopback or private address; nbflow posts "
            f"only to public addresses unless {project.settings_file} sets [notify] allow_private_webhooks = true",
            permanent=True,
        )


def post_webhook(url: str, body: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> None:
    """POST the payload as JSON to `url`; a 2xx answer is success."""
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
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the webhook {url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryError(f"the webhook {url} could not be reached: {getattr(exc, 'reason', exc)}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"the webhook {url} answered {status}")


def run_command(command: str, notice: Notice, project: Project, timeout: float = COMMAND_TIMEOUT) -> None:
    """Run `command` in a shell in the project root, with NBFLOW_EVENT, NBFLOW_RUN_ID, NBFLOW_SCHEDULE,
    NBFLOW_STATE, NBFLOW_PROJECT and NBFLOW_MESSAGE set and the payload as JSON on its standard input."""
    body = notice.payload
    env = {
        **os.environ,
        "NBFLOW_EVENT": notice.event,
        "NBFLOW_RUN_ID": body.get("run_id") or "",
        "NBFLOW_SCHEDULE": body.get("schedule") or "",
        "NBFLOW_STATE": body.get("state") or "",
        "NBFLOW_PROJECT": body["project"],
        "NBFLOW_MESSAGE": body["text"],
    }
    try:
        result = subprocess.run(
            command,
            shell=True,
            cwd=project.root,
            env=env,
            input=json.dumps(body),
            text=True,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise DeliveryError(f"the command did not finish within {timeout:.0f} s; it was stopped") from exc
    except OSError as exc:
        raise DeliveryError(f"the command could not start: {exc}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        raise DeliveryError(f"the command exited with code {result.returncode}{f': {output[-1]}' if output else ''}")
