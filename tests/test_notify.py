"""Notifications delivered for real: mail to an aiosmtpd server on 127.0.0.1 (plain, and STARTTLS with a login),
webhooks to a local HTTP server, commands in a shell; real kernels, real store. The message, its headers and its
attached report are read back as received; a secret's value never appears in what is sent."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
from datetime import datetime, timezone

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import run_cli, write_notebook
from test_scheduler import Clock
from test_scheduler import webhook as hook_server  # noqa: F401  (a fixture: the webhook server)

from nbflow.project import load_project
from nbflow.schedule import add_schedule
from nbflow.scheduler import Scheduler
from nbflow.store import open_store
from nbflow.store.notifications import DeliveryState, deliveries

pytestmark = pytest.mark.timeout(120)

SECRET_VARIABLE, SECRET = "NBFLOW_TEST_SHOP_KEY", "sk-live-9f8e7d6c5b4a"
PASSWORD = "mail-password-1234"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """What the SMTP server received: (envelope sender, recipients, parsed message, session facts)."""

    def __init__(self):
        self.mails: list[tuple[str, list[str], email.message.EmailMessage, dict]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        facts = {"tls": session.ssl is not None, "login": session.authenticated, "raw": envelope.content}
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message, facts))
        return "250 OK"


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1: (port, inbox)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def tls_smtp(tmp_path):
    """An SMTP server that requires STARTTLS and a login, with a self-signed certificate: (port, inbox, cert)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a self-signed certificate for the STARTTLS server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"nbflow" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok)

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield port, inbox, cert
    controller.stop()


def settings(project, port, notify="", smtp_extra="", security="none"):
    (project / "nbflow.toml").write_text(
        f'[secrets]\napi_key = "env:{SECRET_VARIABLE}"\n\n[notify]\n{notify}\n\n'
        f'[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
        f'sender = "nbflow@example.com"\n{smtp_extra}\n'
    )


def report_notebook(project, fail=False):
    return write_notebook(
        project / "nb" / "daily.ipynb",
        'day = "2026-11-24"\napi_key = ""\noutputs = ["../data/{day}.txt"]\nreport = "../reports/{day}_daily.html"',
        f"assert not {fail}, f'bad rows on {{day}} with key {{api_key}}'\nopen(outputs[0], 'w').write(day)",
        "print('rows counted: 42')\nprint('calling the shop with', api_key)",
    )


def store_deliveries(project):
    store = open_store(load_project(project).store_dir)
    try:
        return deliveries(store)
    finally:
        store.close()


def latest_run_id(project):
    store = open_store(load_project(project).store_dir)
    try:
        return store.runs(1)[0].id
    finally:
        store.close()


def test_nbflow_run_mails_its_success_with_the_report_attached(project, smtp):
    port, inbox = smtp
    settings(project, port, 'on = ["success"]\nruns = "all"\nemail = ["ops@example.com", "lead@example.com"]')
    report_notebook(project)
    result = run_cli("run", cwd=project, env={SECRET_VARIABLE: SECRET})
    assert result.returncode == 0, result.stderr
    assert "notification" not in result.stderr
    run_id = latest_run_id(project)

    [(sender, recipients, message, facts)] = inbox.mails
    assert sender == "nbflow@example.com" and recipients == ["ops@example.com", "lead@example.com"]
    assert message["Subject"] == f"nbflow: run {run_id} succeeded (cli)"
    assert message["From"] == "nbflow@example.com" and message["To"] == "ops@example.com, lead@example.com"
    assert message["X-Nbflow-Run-Id"] == run_id and message["X-Nbflow-Event"] == "success"
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")
    body = message.get_body(("plain",)).get_content()
    assert f"Run:       {run_id}" in body and "Trigger:   cli" in body and "State:     succeeded" in body
    assert "api_key = ***" in body and "reports/2026-11-24_daily.html (attached as 2026-11-24_daily.html)" in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "2026-11-24_daily.html" and attachment.get_content_type() == "text/html"
    html = attachment.get_content()
    assert "rows counted: 42" in html and "calling the shop with ***" in html
    assert SECRET.encode() not in facts["raw"] and not facts["tls"]
    [delivery] = store_deliveries(project)
    assert (delivery.channel, delivery.state, delivery.attempts, delivery.run_id) == ("email", "sent", 1, run_id)
    assert delivery.event == "success" and delivery.target == "ops@example.com, lead@example.com"


def test_a_run_from_python_notifies_too_unless_told_not_to(project, smtp, monkeypatch):
    import nbflow

    port, inbox = smtp
    settings(project, port, 'on = ["success"]\nruns = "all"\nemail = ["ops@example.com"]')
    report_notebook(project)
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    run = nbflow.load(project).run()
    assert run.state == "succeeded"
    [(_, _, message, _)] = inbox.mails  # delivered before run() returned
    assert message["X-Nbflow-Run-Id"] == run.id and message["Subject"] == f"nbflow: run {run.id} succeeded (api)"
    quiet = nbflow.load(project).run(force=True, notify=False)
    assert quiet.state == "succeeded" and len(inbox.mails) == 1


def test_starttls_with_a_login_and_reports_linked_under_url_base(project, tls_smtp):
    port, inbox, cert = tls_smtp
    settings(
        project,
        port,
        'on = ["success"]\nruns = "all"\nemail = ["ops@example.com"]\nurl_base = "https://reports.example.com/"',
        f'user = "nbflow"\npassword_env = "NBFLOW_SMTP_PASSWORD"\nca_file = "{cert}"',
        security="starttls",
    )
    report_notebook(project)
    result = run_cli("run", cwd=project, env={SECRET_VARIABLE: SECRET, "NBFLOW_SMTP_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr
    [(_, _, message, facts)] = inbox.mails
    assert facts["tls"] and facts["login"] is True
    body = message.get_body(("plain",)).get_content()
    assert "https://reports.example.com/reports/2026-11-24_daily.html" in body
    assert list(message.iter_attachments()) == []
    assert PASSWORD.encode() not in facts["raw"] and SECRET.encode() not in facts["raw"]

    # without the password in the environment: not delivered, said in one line, the run still succeeded
    result = run_cli("run", "--force", cwd=project, env={SECRET_VARIABLE: SECRET})
    assert result.returncode == 0, result.stderr
    assert "notification not delivered (email ops@example.com, 1 attempt)" in result.stderr
    assert "NBFLOW_SMTP_PASSWORD is not set" in result.stderr and len(inbox.mails) == 1


def test_a_scheduled_failure_reaches_mail_webhook_and_command_with_secrets_masked(
    project,
    smtp,
    hook_server,  # noqa: F811  (the fixture imported above)
    tmp_path,
    monkeypatch,
):
    port, inbox = smtp
    url, received = hook_server
    settings(project, port, 'email = ["ops@example.com"]\nallow_private_webhooks = true')  # the hook is local
    report_notebook(project, fail=True)
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    events = tmp_path / "events.txt"
    clock = Clock()
    add_schedule(
        project,
        "nightly",
        every="1h",
        params={"day": "{date}"},
        notify_email=["oncall@example.com", "ops@example.com"],
        on_failure_webhook=url,
        on_failure_command=f'echo "$NBFLOW_EVENT $NBFLOW_SCHEDULE $NBFLOW_STATE" >> {events}',
        now=clock(),
    )
    scheduler = Scheduler(project, clock=clock, workers=1, notify_delays=(0.01,))
    try:
        clock.advance(hours=1)
        [firing] = scheduler.tick()
        assert scheduler.wait_idle(timeout=90)
    finally:
        scheduler.stop()
    [(_, recipients, message, facts)] = inbox.mails  # the project's address and the schedule's: one mail
    assert recipients == ["ops@example.com", "oncall@example.com"]
    assert message["Subject"] == f"nbflow: nightly — run {firing.run_id} failed"
    assert message["X-Nbflow-Event"] == "failure" and message["X-Nbflow-Schedule"] == "nightly"
    body = message.get_body(("plain",)).get_content()
    assert "daily: AssertionError: bad rows on 2026-11-24 with key ***" in body
    assert f".nbflow/runs/{firing.run_id}/daily.ipynb" in body and SECRET.encode() not in facts["raw"]
    [(_, _, payload)] = received
    assert payload["event"] == "failure" and payload["run_id"] == firing.run_id and SECRET not in str(payload)
    assert events.read_text() == "failure nightly failed\n"
    assert sorted((d.channel, d.state) for d in store_deliveries(project)) == [
        ("command", "sent"),
        ("email", "sent"),
        ("webhook", "sent"),
    ]


def test_a_dead_mail_server_is_retried_logged_and_never_stops_the_scheduler(project, caplog, monkeypatch):
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    dead = free_port()
    settings(project, dead, 'on = ["success"]\nemail = ["ops@example.com"]')
    write_notebook(
        project / "quick.ipynb", 'outputs = ["out.txt"]\nn = 0\napi_key = ""', "open(outputs[0], 'w').write(str(n))"
    )
    clock = Clock()
    add_schedule(project, "often", every="1m", params={"n": "{datetime}"}, now=clock())
    caplog.set_level(logging.INFO, logger="nbflow.notify")
    scheduler = Scheduler(project, clock=clock, workers=1, notify_delays=(1.5, 1.5))
    try:
        clock.advance(minutes=1)
        [first] = scheduler.tick()
        deadline = time.monotonic() + 30
        while not any(d.attempts == 1 for d in store_deliveries(project)) and time.monotonic() < deadline:
            time.sleep(0.05)
        [pending] = store_deliveries(project)
        assert pending.state == DeliveryState.PENDING and f"127.0.0.1:{dead}" in pending.last_error
        clock.advance(minutes=1)
        started = time.monotonic()
        [second] = scheduler.tick()  # a delivery waiting for its retry does not hold the scheduler up
        assert second.outcome == "started" and time.monotonic() - started < 1.0
        assert scheduler.wait_idle(timeout=90)
    finally:
        scheduler.stop()
    store = open_store(load_project(project).store_dir)
    try:
        assert [store.run(f.run_id).state for f in (first, second)] == ["succeeded", "succeeded"]
    finally:
        store.close()
    outcomes = [(d.run_id, d.state, d.attempts) for d in store_deliveries(project)]
    assert outcomes == [(first.run_id, "failed", 3), (second.run_id, "failed", 3)]
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(retries) == 4 and all("again in 1.5 s" in m for m in retries)
    assert len(failures) == 2 and all("attempt 3 of 3 failed" in m and "not delivered" in m for m in failures)


def test_a_missed_deadline_is_noticed_once_per_day_even_after_a_restart(project, smtp):
    port, inbox = smtp
    settings(project, port, "")
    write_notebook(project / "broken.ipynb", "outputs = make_paths()", "pass")  # every firing fails to start
    clock = Clock(datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc))  # 16:30 in Paris
    add_schedule(
        project,
        "daily",
        cron="0 17 * * *",
        tz="Europe/Paris",
        deadline="17:30",
        notify_email=["ops@example.com"],
        notify_on=["deadline"],
        check=False,
        now=clock(),
    )
    scheduler = Scheduler(project, clock=clock, notify_delays=(0.01,))
    try:
        clock.now = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)  # 17:00 in Paris: fires, fails to start
        [firing] = scheduler.tick()
        assert firing.outcome == "failed"
        clock.advance(minutes=29)  # 17:29: not yet
        assert scheduler.tick() == [] and scheduler.wait_idle(timeout=30) and inbox.mails == []
        clock.advance(minutes=2)  # 17:31
        scheduler.tick()
        scheduler.tick()
        assert scheduler.wait_idle(timeout=30)
    finally:
        scheduler.stop()
    restarted = Scheduler(project, clock=clock, notify_delays=(0.01,))
    try:
        restarted.tick()
        assert restarted.wait_idle(timeout=30)
    finally:
        restarted.stop()
    [(_, recipients, message, _)] = inbox.mails
    assert recipients == ["ops@example.com"] and message["X-Nbflow-Event"] == "deadline"
    assert message["Subject"] == "nbflow: daily — not succeeded by 17:30 Europe/Paris"
    assert message["X-Nbflow-Run-Id"] == firing.run_id
    text = message.get_body(("plain",)).get_content()
    assert text.startswith(
        f"nbflow: schedule `daily` has not succeeded by 17:30 Europe/Paris on 2026-11-24; last run {firing.run_id} "
        "failed"
    )
    assert [(d.event, d.state) for d in store_deliveries(project)] == [("deadline", "sent")]


@pytest.mark.parametrize(
    "toml, named",
    [
        ('[notify.smtp]\nhost = "h"\nsender = "a@b.c"\npassword = "hunter2"', "`notify.smtp.password` is refused"),
        ('[notify.smtp]\nhost = "h"\nsender = "a@b.c"\nsecurity = "tls"', "`notify.smtp.security` must be"),
        ('[notify]\non = ["failure", "sometimes"]', "`notify.on` must be"),
        ('[notify]\nemail = ["ops@example.com"]', "there is no [notify.smtp]"),
        ('[notify]\nruns = "cli"', "`notify.runs` must be"),
    ],
)
def test_settings_mistakes_exit_2_naming_the_key(project, toml, named):
    (project / "nbflow.toml").write_text(toml)
    result = run_cli("schedule", "list", cwd=project)
    assert result.returncode == 2 and named in result.stderr, result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "options, named",
    [
        (["--deadline", "25:00"], "deadline '25:00': give a time of day as HH:MM"),
        (["--notify-on", "failure,sometimes"], "notify on 'sometimes': give events among failure, success, deadline"),
        (["--notify-on", "deadline"], "notify on `deadline` needs the deadline"),
        (["--email", "ops@example.com"], "e-mail needs the mail server: add [notify.smtp]"),
    ],
)
def test_schedule_notification_mistakes_exit_2(project, options, named):
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w')")
    result = run_cli("schedule", "add", "s", "--every", "1h", *options, cwd=project)
    assert result.returncode == 2 and named in result.stderr, result.stderr


def test_schedule_add_keeps_its_notification_settings(project, smtp):
    port, _ = smtp
    settings(project, port, "")
    write_notebook(project / "a.ipynb", 'outputs = ["a.txt"]\napi_key = ""', "open(outputs[0], 'w')")
    result = run_cli(
        "schedule", "add", "s", "--cron", "0 17 * * 1-5", "--tz", "Europe/Paris", "--notify-on", "failure,success",
        "--deadline", "7:05", "--email", "a@example.com,b@example.com", cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "deadline 07:05" in result.stdout
    [entry] = json.loads(run_cli("schedule", "list", "--json", cwd=project).stdout)
    assert entry["notify_on"] == ["failure", "success", "deadline"] and entry["deadline"] == "07:05"
    assert entry["notify_email"] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f000001", "[::1]", "localhost", "169.254.169.254"])
def test_a_webhook_to_a_loopback_or_private_address_is_refused_unless_allowed(project, host, hook_server):  # noqa: F811
    from nbflow.notify.channels import WEBHOOK, Channel, DeliveryError
    from nbflow.notify.message import Notice

    url, received = hook_server
    port = url.split(":")[-1].split("/")[0]
    target = f"http://{host}:{port}/hook"
    notice = Notice(event="failure", run_id=None, schedule=None, subject="s", text="t", payload={"text": "t"})
    with pytest.raises(DeliveryError) as caught:
        Channel(WEBHOOK, target).send(notice, load_project(project))
    assert caught.value.permanent and "a loopback or private address" in str(caught.value)
    assert "allow_private_webhooks = true" in str(caught.value) and received == []
    if host in ("127.0.0.1", "0x7f000001", "localhost"):  # where the test's hook listens
        (project / "nbflow.toml").write_text("[notify]\nallow_private_webhooks = true\n")
        Channel(WEBHOOK, target).send(notice, load_project(project))
        assert len(received) == 1
