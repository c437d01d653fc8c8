"""`[notify]` in `nbflow.toml`: which events of which runs notify, and where (e-mail over SMTP, a webhook, a
command). Read by `nbflow.project` with every mistake a problem naming its key; used by `nbflow.notify`.

A password never goes in the settings: `[notify.smtp]` names the environment variable it is read from when a mail is
sent, and a `password` key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbflow.errors import Problem, UsageError

RUN_EVENTS = ("failure", "success")  # what a run's end may notify; a schedule adds "deadline"
MAX_RECIPIENTS = 50
_NOTIFY_KEYS = {
    "on",
    "runs",
    "email",
    "webhook",
    "command",
    "url_base",
    "retry_seconds",
    "smtp",
    "allow_private_webhooks",
}
_SMTP_KEYS = {"host", "port", "security", "user", "password_env", "sender", "ca_file", "timeout"}
SECURITIES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SmtpSettings:
    """`[notify.smtp]`: the mail server; the password is read from `password_env` when a mail is sent."""

    host: str
    port: int
    security: str = "starttls"  # starttls | ssl | none
    sender: str = ""
    user: str | None = None
    password_env: str | None = None
    ca_file: str | None = None  # a CA bundle for a server whose certificate no public authority signed
    timeout: float = 30.0


@dataclass(frozen=True)
class NotifySettings:
    """`[notify]`: which events of which runs notify, and where."""

    on: tuple[str, ...] = ("failure",)
    runs: str = "scheduled"  # "scheduled": only schedules' runs; "all": every run
    email: tuple[str, ...] = ()
    webhook: str | None = None
    command: str | None = None
    url_base: str | None = None  # reports linked as url_base + their path under the root, instead of attached
    retry_seconds: tuple[float, ...] = (2.0, 10.0)  # the waits before the 2nd, 3rd... attempt of a delivery
    smtp: SmtpSettings | None = None
    # webhooks to loopback, private and link-local addresses (the machine's own services, a cloud's metadata
    # endpoint) are refused unless the project allows them
    allow_private_webhooks: bool = False


def address_problem(address: Any) -> str | None:
    """Why `address` is no e-mail address (`name@example.com`), or None."""
    from email.utils import parseaddr

    if not isinstance(address, str) or any(c in address for c in "\r\n,"):
        return "an e-mail address such as ops@example.com"
    _, parsed = parseaddr(address)
    if not parsed or "@" not in parsed or parsed.startswith("@") or parsed.endswith("@"):
        return "an e-mail address such as ops@example.com"
    return None


def check_addresses(addresses: Any, where: str) -> list[str]:
    """A list of e-mail addresses (at most MAX_RECIPIENTS); UsageError naming `where` and the bad one."""
    if not isinstance(addresses, list):
        raise UsageError(f"{where}: give a list of e-mail addresses, not {addresses!r}.")
    if len(addresses) > MAX_RECIPIENTS:
        raise UsageError(f"{where}: {len(addresses)} addresses; at most {MAX_RECIPIENTS}.")
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise UsageError(f"{where}: {address!r} is not {problem}.")
    return list(dict.fromkeys(addresses))


def read_notify_settings(where: str, raw: Any, problems: list[Problem]) -> NotifySettings | None:
    """`[notify]` read, each mistake a problem naming its key."""
    start = len(problems)

    def bad(key: str, expected: str, value: Any) -> None:
        problems.append(Problem("config", f"{where}: `notify.{key}` must be {expected}, not {value!r}."))

    if not isinstance(raw, dict):
        bad("", "a table ([notify])", raw)
        return None
    problems += [
        Problem("config", f"{where}: unknown setting `notify.{key}` (known: {', '.join(sorted(_NOTIFY_KEYS))}).")
        for key in raw
        if key not in _NOTIFY_KEYS
    ]
    on = raw.get("on", ["failure"])
    if not (isinstance(on, list) and all(event in RUN_EVENTS for event in on)):
        bad("on", 'a list of events among "failure" and "success"', on)
    runs = raw.get("runs", "scheduled")
    if runs not in ("scheduled", "all"):
        bad("runs", '"scheduled" (the schedules\' runs) or "all" (every run)', runs)
    email = raw.get("email", [])
    try:
        email = check_addresses(email, f"{where}: `notify.email`")
    except UsageError as exc:
        problems.append(Problem("config", str(exc)))
    webhook = raw.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
        bad("webhook", "an http:// or https:// URL", webhook)
    command = raw.get("command")
    if command is not None and not (isinstance(command, str) and command.strip()):
        bad("command", "a shell command", command)
    url_base = raw.get("url_base")
    if url_base is not None and not (isinstance(url_base, str) and url_base.startswith(("http://", "https://"))):
        bad("url_base", "an http:// or https:// URL", url_base)
    retry = raw.get("retry_seconds", [2, 10])
    if not (
        isinstance(retry, list)
        and len(retry) <= 10
        and all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 <= s <= 3600 for s in retry)
    ):
        bad("retry_seconds", "a list of at most 10 waits in seconds (0 to 3600), e.g. [2, 10]", retry)
    allow_private = raw.get("allow_private_webhooks", False)
    if not isinstance(allow_private, bool):
        bad("allow_private_webhooks", "true or false", allow_private)
    smtp = _smtp_settings(where, raw["smtp"], problems) if "smtp" in raw else None
    if email and "smtp" not in raw:
        problems.append(
            Problem("config", f"{where}: `notify.email` is set but there is no [notify.smtp] with the mail server.")
        )
    if len(problems) > start:
        return None
    return NotifySettings(
        on=tuple(dict.fromkeys(on)),
        runs=runs,
        email=tuple(email),
        webhook=webhook,
        command=command,
        url_base=url_base,
        retry_seconds=tuple(float(s) for s in retry),
        smtp=smtp,
        allow_private_webhooks=allow_private is True,
    )


def _smtp_settings(where: str, raw: Any, problems: list[Problem]) -> SmtpSettings | None:
    start = len(problems)

    def bad(key: str, expected: str, value: Any) -> None:
        problems.append(Problem("config", f"{where}: `notify.smtp.{key}` must be {expected}, not {value!r}."))

    if not isinstance(raw, dict):
        bad("", "a table ([notify.smtp])", raw)
        return None
    if "password" in raw:
        problems.append(
            Problem(
                "config",
                f"{where}: `notify.smtp.password` is refused: a password never goes in a settings file. Put it in "
                'an environment variable and name that: password_env = "NBFLOW_SMTP_PASSWORD".',
            )
        )
    problems += [
        Problem("config", f"{where}: unknown setting `notify.smtp.{key}` (known: {', '.join(sorted(_SMTP_KEYS))}).")
        for key in raw
        if key not in _SMTP_KEYS and key != "password"
    ]
    host = raw.get("host")
    if not (isinstance(host, str) and host.strip()):
        bad("host", "the mail server's host name", host)
    security = raw.get("security", "starttls")
    if security not in SECURITIES:
        bad("security", '"starttls", "ssl" or "none"', security)
    default_port = {"ssl": 465, "none": 25}.get(security, 587)
    port = raw.get("port", default_port)
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
        bad("port", "a port number (1 to 65535)", port)
    sender = raw.get("sender")
    if address_problem(sender):
        bad("sender", "the From address, such as nbflow@example.com", sender)
    user = raw.get("user")
    if user is not None and not (isinstance(user, str) and user):
        bad("user", "the login name", user)
    variable = raw.get("password_env")
    if variable is not None and not (isinstance(variable, str) and variable.isidentifier()):
        bad("password_env", "the name of an environment variable", variable)
    if user is not None and variable is None:
        problems.append(
            Problem("config", f"{where}: `notify.smtp.user` is set without `password_env` (where its password is).")
        )
    ca_file = raw.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        bad("ca_file", "the path of a CA bundle (PEM)", ca_file)
    timeout = raw.get("timeout", 30.0)
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout <= 600):
        bad("timeout", "seconds (at most 600)", timeout)
    if len(problems) > start:
        return None
    return SmtpSettings(
        host=str(host),
        port=port,
        security=security,
        sender=str(sender),
        user=user,
        password_env=variable,
        ca_file=ca_file,
        timeout=float(timeout),
    )
