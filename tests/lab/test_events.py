"""GET events: the server pushes each change of a run and of its tasks (server-sent events), whoever made it: a run
started through the API, or by `nbflow run` in a terminal, with the running cell as it moves. Through a real Jupyter
Server, read as a browser's EventSource reads it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import write_notebook
from jupyter_server.auth.authorizer import Authorizer

from lab.conftest import two_step_pipeline, wait_for_run

pytestmark = pytest.mark.timeout(300)

Events = list[tuple[str, dict]]


class Enough(Exception):
    """The reader has seen what it waited for: it closes the stream."""


async def read_events(jp_fetch, until: Callable[[Events], bool], connected: asyncio.Event) -> Events:
    """Read `GET events` until `until(events)`, as (event name, data) pairs; `connected` is set at the first
    bytes (the stream is open and followed)."""
    events: Events = []
    buffer = ""

    def on_chunk(chunk: bytes) -> None:
        nonlocal buffer
        connected.set()
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
            if "event" in fields:
                events.append((fields["event"], json.loads(fields["data"])))
        if until(events):
            raise Enough()

    try:
        response = await jp_fetch("nbflow", "api", "events", streaming_callback=on_chunk, request_timeout=240)
        raise AssertionError(f"the stream ended: {response.code}")
    except Enough:
        return events
    except Exception:
        if until(events):  # the client may wrap the callback's exception
            return events
        raise


def run_ended(run_id_of: Callable[[], str | None]) -> Callable[[Events], bool]:
    def check(events: Events) -> bool:
        run_id = run_id_of()
        return any(kind == "run" and e["run"]["id"] == run_id and e["run"]["state"] != "running" for kind, e in events)

    return check


def states_of(events: Events, task: str) -> list[str]:
    states = [e["task"]["state"] for kind, e in events if kind == "task" and e["task"]["name"] == task]
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]  # each change once


async def test_a_run_started_through_the_api_is_pushed_task_by_task(jp_root_dir, jp_fetch, api):
    two_step_pipeline(jp_root_dir)
    started: dict[str, str] = {}
    connected = asyncio.Event()
    reader = asyncio.ensure_future(read_events(jp_fetch, run_ended(lambda: started.get("id")), connected))
    await asyncio.wait_for(connected.wait(), 30)

    status, body = await api("POST", "runs", body={})
    assert status == 202, body
    started["id"] = body["id"]
    events = await asyncio.wait_for(reader, 240)

    assert events[0][0] == "run" and events[0][1]["run"]["state"] == "running"
    assert states_of(events, "a") == ["running", "succeeded"] or states_of(events, "a")[-1] == "succeeded"
    assert {e["task"]["name"] for kind, e in events if kind == "task"} == {"a", "b"}, events
    assert states_of(events, "b")[-1] == "succeeded"
    last = [e["run"] for kind, e in events if kind == "run"][-1]
    assert last["state"] == "succeeded" and last["counts"] == {"succeeded": 2}
    # what was pushed is what GET runs/ID says
    detail = await wait_for_run(api, body["id"])
    pushed = {e["task"]["name"]: e["task"] for kind, e in events if kind == "task"}
    assert {t["name"]: t["state"] for t in detail["tasks"]} == {n: t["state"] for n, t in pushed.items()}


async def test_a_run_of_the_command_line_is_pushed_with_its_running_cell(jp_root_dir, jp_fetch):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(
        jp_root_dir / "load.ipynb",
        'outputs = ["done.txt"]',
        "print('loading')",
        "# wait for the go file\nimport os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.05)",
        "open('done.txt', 'w').write('ok')",
    )
    connected = asyncio.Event()

    def waiting_cell_seen(events: Events) -> bool:
        return any(
            kind == "task" and (e["task"]["progress"] or {}).get("line") == "# wait for the go file"
            for kind, e in events
        )

    reader = asyncio.ensure_future(read_events(jp_fetch, waiting_cell_seen, connected))
    await asyncio.wait_for(connected.wait(), 30)
    command = subprocess.Popen([sys.executable, "-m", "nbflow", "run", str(jp_root_dir)], stdout=subprocess.DEVNULL)
    try:
        events = await asyncio.wait_for(reader, 240)
        progress = [e["task"]["progress"] for kind, e in events if kind == "task" and e["task"]["progress"]][-1]
        assert (progress["cell"], progress["cells"]) == (4, 5) and progress["tail"] == ["loading"]
        assert [e["run"]["trigger"] for kind, e in events if kind == "run"][0] == "cli"
    finally:
        (jp_root_dir / "go").write_text("")
        assert command.wait(120) == 0


class ExecuteOnly(Authorizer):
    def is_authorized(self, handler, user, action: str, resource: str) -> bool:
        return action == "execute"


class TestWithoutRead:
    @pytest.fixture
    def jp_server_config(self):
        return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}, "authorizer_class": ExecuteOnly}}

    async def test_the_events_are_not_streamed_to_a_user_who_may_not_read(self, jp_root_dir, api):
        two_step_pipeline(jp_root_dir)
        status, body = await api("GET", "events")
        assert status == 403 and "not authorized" in body["message"]
