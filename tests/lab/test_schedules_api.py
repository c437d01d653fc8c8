"""The schedules under /nbflow/api/, and the scheduler hosted in the server
(`c.NbflowApp.scheduler = True`) firing for real, through a real Jupyter Server with real kernels."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from conftest import write_notebook

from lab.conftest import two_step_pipeline, wait_for_run

pytestmark = pytest.mark.timeout(600)

SHAPE = {
    "name",
    "cron",
    "every",
    "tz",
    "targets",
    "params",
    "grid",
    "paused",
    "next_fire",
    "last_fired",
    "created_at",
    "on_failure_command",
    "on_failure_webhook",
    "notify_on",
    "deadline",
    "notify_email",
}


async def test_a_schedule_is_added_listed_paused_resumed_and_removed(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    status, data = await api("GET", "schedules")
    assert status == 200, data
    assert data["schedules"] == [] and data["scheduler"] is None
    assert data["hosted"] is False and data["host_setting"] is False

    status, added = await api(
        "POST",
        "schedules",
        body={"name": "hourly", "every": "1h", "tz": "Europe/Paris", "targets": ["b"], "params": {"n": 3}},
    )
    assert status == 201, added
    assert set(added) == SHAPE
    assert added["every"] == "1h" and added["cron"] is None and added["tz"] == "Europe/Paris"
    assert added["targets"] == ["b"] and added["params"] == {"n": 3} and added["paused"] is False
    assert added["next_fire"] and added["next_fire"].endswith(("+01:00", "+02:00")) and added["last_fired"] is None

    status, added = await api(
        "POST",
        "schedules",
        body={
            "name": "nightly",
            "cron": "0 17 * * *",
            "tz": "UTC",
            "params": {"a.n": "{date}"},
            "on_failure_webhook": "http://127.0.0.1:9/hook",
        },
    )
    assert status == 201, added
    assert added["cron"] == "0 17 * * *" and added["every"] is None and added["targets"] == []
    assert added["next_fire"].endswith("T17:00:00+00:00")
    assert added["on_failure_webhook"] == "http://127.0.0.1:9/hook"

    # parameter text is read as `nbflow run -p` reads it: True is a bool; a placeholder stays text
    status, added = await api(
        "POST",
        "schedules",
        body={"name": "typed", "every": "1d", "tz": "UTC", "params_text": {"n": "True", "a.n": "{date}"}},
    )
    assert status == 201, added
    assert added["params"] == {"n": True, "a.n": "{date}"}
    status, _ = await api("DELETE", "schedules", "typed")
    assert status == 204

    status, data = await api("GET", "schedules")
    assert [s["name"] for s in data["schedules"]] == ["hourly", "nightly"]
    assert all(set(s) == SHAPE for s in data["schedules"])
    status, one = await api("GET", "schedules", "hourly")
    assert status == 200 and one["name"] == "hourly"

    status, paused = await api("POST", "schedules", "hourly", "pause")
    assert status == 200, paused
    assert paused["paused"] is True and paused["next_fire"] is None
    status, paused_again = await api("POST", "schedules", "hourly", "pause")  # idempotent
    assert status == 200 and paused_again["paused"] is True
    status, resumed = await api("POST", "schedules", "hourly", "resume")
    assert status == 200 and resumed["paused"] is False and resumed["next_fire"]

    status, body = await api("DELETE", "schedules", "hourly")
    assert status == 204 and body is None
    status, data = await api("GET", "schedules")
    assert [s["name"] for s in data["schedules"]] == ["nightly"]

    # the CLI sees what the API did (one store)
    from nbflow.schedule import list_schedules

    assert [s["name"] for s in list_schedules(jp_root_dir)] == ["nightly"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"every": "1h"}, "`name` is required"),
        ({"name": "", "every": "1h"}, "`name` is required"),
        ({"name": "../x", "every": "1h"}, "schedule name '../x'"),
        ({"name": "a/b", "every": "1h"}, "schedule name 'a/b'"),
        ({"name": "x"}, "either `cron`"),
        ({"name": "x", "every": "1h", "cron": "0 * * * *"}, "either `cron`"),
        ({"name": "x", "every": "10x"}, "'10x'"),
        ({"name": "x", "every": "0s"}, "at least 1s"),
        ({"name": "x", "cron": "61 * * * *"}, "61 * * * *"),
        ({"name": "x", "every": "1h", "tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"name": "x", "every": "1h", "targets": ["nope"]}, "target `nope` names no task"),
        ({"name": "x", "every": "1h", "targets": "a"}, "`targets` must be a list"),
        ({"name": "x", "every": "1h", "params": {"typo": 1}}, "parameter `typo`: no selected task assigns"),
        ({"name": "x", "every": "1h", "params_text": {"b.typo": "1"}}, "parameter `b.typo`: b.ipynb does not assign"),
        ({"name": "x", "every": "1h", "params_text": {"n": 3}}, "`params_text` must be an object of text values"),
        ({"name": "x", "every": "1h", "params": [1]}, "`params` must be an object"),
        ({"name": "x", "every": 60}, "`every` must be a string"),
        ({"name": 7, "every": "1h"}, "`name` must be a string"),
        ({"name": "x", "every": "1h", "on_failure_webhook": "ftp://x"}, "http://"),
        ({"name": "x", "every": "1h", "paused": True}, "unknown field(s) paused; known: "),
        ([1], "must be a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
async def test_a_schedule_that_cannot_be_added_is_a_400_with_the_reason(jp_root_dir, api, body, fragment):
    two_step_pipeline(jp_root_dir)
    status, data = await api("POST", "schedules", body=body)
    assert status == 400, data
    assert fragment in data["message"], data
    status, data = await api("GET", "schedules")
    assert data["schedules"] == []


async def test_a_second_schedule_of_the_same_name_is_a_400(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    status, _ = await api("POST", "schedules", body={"name": "x", "every": "1h"})
    assert status == 201
    status, data = await api("POST", "schedules", body={"name": "x", "cron": "0 * * * *"})
    assert status == 400 and "exists already" in data["message"]
    status, data = await api("GET", "schedules", "x")
    assert data["every"] == "1h"


async def test_an_invalid_pipeline_refuses_a_schedule(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "z.ipynb", "inputs = make()")
    status, data = await api("POST", "schedules", body={"name": "x", "every": "1h"})
    assert status == 400 and any("z.ipynb" in p for p in data["problems"])


async def test_unknown_schedules_are_404_and_bad_names_400(
    jp_root_dir, api, http_server_client, jp_auth_header, jp_base_url
):
    two_step_pipeline(jp_root_dir)
    for method, path in (
        ("GET", ("ghost",)),
        ("POST", ("ghost", "pause")),
        ("POST", ("ghost", "resume")),
        ("DELETE", ("ghost",)),
    ):
        status, data = await api(method, "schedules", *path)
        assert status == 404, (method, path, data)
        assert "no schedule 'ghost'" in data["message"]
    status, _ = await api("POST", "schedules", body={"name": "ghosts", "every": "1h"})
    status, data = await api("GET", "schedules", "ghost")
    assert status == 404 and "ghosts" in data["message"]  # did you mean
    for method, raw, code in (
        ("GET", "..%2F..%2Fetc", 400),
        ("DELETE", "..%2F..%2Fetc", 400),
        ("POST", "..%2F..%2Fetc/pause", 400),
        ("GET", "%2E%2E", 400),
        ("DELETE", ".x", 400),
        ("POST", "%2Fetc%2Fpasswd/resume", 400),
        ("GET", "x" * 65, 400),
        ("POST", "ghosts/stop", 404),
        ("POST", "ghosts/pause/x", 404),
        ("GET", "ghosts/..%2F..", 404),
        ("PUT", "ghosts", 405),
    ):
        response = await http_server_client.fetch(
            f"{jp_base_url}nbflow/api/schedules/{raw}",
            method=method,
            headers=jp_auth_header,
            raise_error=False,
            body="{}" if method in ("POST", "PUT") else None,
        )
        assert response.code == code, (method, raw, response.code, response.body)
        assert "message" in json.loads(response.body), (method, raw, response.body)
    status, data = await api("GET", "schedules")
    assert [s["name"] for s in data["schedules"]] == ["ghosts"]


# -- the scheduler hosted in the server ---------------------------------------------------------------------------


def trivial_pipeline(root):
    (root / "nbflow.toml").write_text("")
    write_notebook(
        root / "tick.ipynb", 'outputs = ["tick.txt"]\nstamp = "x"', "open('tick.txt', 'a').write(stamp + '\\n')"
    )


async def wait_for(api, predicate, what: str, timeout: float = 300) -> list:
    deadline = time.monotonic() + timeout
    while True:
        status, runs = await api("GET", "runs")
        assert status == 200, runs
        if predicate(runs):
            return runs
        assert time.monotonic() < deadline, f"no {what} after {timeout}s: {runs}"
        await asyncio.sleep(0.5)


async def with_lease_taken(api, seconds: float = 60) -> dict:
    """`GET schedules` once the hosted scheduler holds the lease (its thread takes it just after it starts)."""
    deadline = time.monotonic() + seconds
    while True:
        status, data = await api("GET", "schedules")
        assert status == 200, data
        if data["scheduler"] is not None or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.2)


class TestHostedScheduler:
    @pytest.fixture
    def jp_server_config(self):
        return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}}, "NbflowApp": {"scheduler": True}}

    @pytest.fixture
    def app(self, jp_serverapp):
        (app,) = jp_serverapp.extension_manager.extension_apps["nbflow.server"]
        return app

    async def test_the_hosted_scheduler_fires_a_schedule_and_stops_with_the_server(
        self, jp_serverapp, app, jp_root_dir, api
    ):
        trivial_pipeline(jp_root_dir)
        assert app.scheduler is True
        await app._start_jupyter_server_extension(jp_serverapp)  # what a started server calls (the start hook)
        data = await with_lease_taken(api)
        assert data["hosted"] is True and data["host_setting"] is True
        assert data["scheduler"]["pid"] == os.getpid() and data["scheduler_error"] is None

        status, added = await api(
            "POST", "schedules", body={"name": "ticker", "every": "2s", "params": {"stamp": "{datetime}"}}
        )
        assert status == 201, added
        runs = await wait_for(
            api,
            lambda runs: any(r["trigger"] == "schedule:ticker" and r["state"] == "succeeded" for r in runs),
            "succeeded run of schedule:ticker",
        )
        status, paused = await api("POST", "schedules", "ticker", "pause")
        assert status == 200 and paused["paused"] is True
        fired = next(r for r in runs if r["trigger"] == "schedule:ticker" and r["state"] == "succeeded")
        status, detail = await api("GET", "runs", fired["id"])
        assert detail["tasks"][0]["state"] == "succeeded"
        assert detail["params"]["stamp"][:4].isdigit() and "T" in detail["params"]["stamp"]  # {datetime} filled
        assert (jp_root_dir / "tick.txt").read_text().strip()
        status, data = await api("GET", "schedules")
        assert data["schedules"][0]["last_fired"] is not None

        # a scheduled run in flight is cancelled from the panel's Cancel, and stopping the server cancels another
        write_notebook(jp_root_dir / "slow.ipynb", 'outputs = ["slow.txt"]', "import time\ntime.sleep(300)")
        status, _ = await api("DELETE", "schedules", "ticker")
        assert status == 204
        await wait_for(api, lambda runs: all(r["state"] != "running" for r in runs), "idle project")
        status, _ = await api("POST", "schedules", body={"name": "slow", "every": "1s", "targets": ["slow"]})
        runs = await wait_for(
            api,
            lambda runs: any(r["trigger"] == "schedule:slow" and r["state"] == "running" for r in runs),
            "running run of schedule:slow",
        )
        first = next(r for r in runs if r["trigger"] == "schedule:slow" and r["state"] == "running")
        status, cancelling = await api("POST", "runs", first["id"], "cancel")
        assert status == 202 and cancelling["how"] == "in this server's scheduler", cancelling
        detail = await wait_for_run(api, first["id"])
        assert detail["state"] == "cancelled"

        runs = await wait_for(
            api,
            lambda runs: any(
                r["trigger"] == "schedule:slow" and r["state"] == "running" and r["id"] != first["id"] for r in runs
            ),
            "second slow run",
        )
        second = next(r for r in runs if r["trigger"] == "schedule:slow" and r["state"] == "running")
        await asyncio.get_running_loop().run_in_executor(None, app.service.shutdown)  # what stop_extension calls
        status, detail = await api("GET", "runs", second["id"])
        assert detail["state"] == "cancelled", detail
        status, data = await api("GET", "schedules")
        assert data["scheduler"] is None and data["hosted"] is False  # the lease released; no new scheduler

    async def test_a_scheduler_that_cannot_start_says_why_and_starts_once_the_project_is_fixed(self, jp_root_dir, api):
        (jp_root_dir / "nbflow.toml").write_text("workers = 'many'\n")
        status, data = await api("GET", "schedules")
        assert status == 400 and "workers" in data["message"]
        (jp_root_dir / "nbflow.toml").write_text("")
        write_notebook(jp_root_dir / "a.ipynb", 'outputs = ["a.txt"]')
        data = await with_lease_taken(api)
        assert data["hosted"] is True and data["scheduler"]["pid"] == os.getpid()
