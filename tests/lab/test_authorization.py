"""Jupyter Server's authorization on the nbflow API: a user allowed only to read sees everything and changes
nothing; starting runs needs `execute`, changing schedules `write`, and a schedule that runs a command `execute`
too. Through a real Jupyter Server configured with an Authorizer that grants only some actions."""

from __future__ import annotations

import pytest
from jupyter_server.auth.authorizer import Authorizer

from lab.conftest import two_step_pipeline

pytestmark = pytest.mark.timeout(300)


class Granting(Authorizer):
    """Grants the actions in `granted` on every resource, and records what the nbflow API asked."""

    granted: frozenset[str] = frozenset()
    asked: list[tuple[str, str, str]] = []

    def is_authorized(self, handler, user, action: str, resource: str) -> bool:
        if "/nbflow/api/" in handler.request.path:
            type(self).asked.append((handler.request.method, action, resource))
        return action in self.granted


class ReadOnly(Granting):
    granted = frozenset({"read"})


class NoExecute(Granting):
    granted = frozenset({"read", "write"})


def config(authorizer: type[Authorizer]) -> dict:
    return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}, "authorizer_class": authorizer}}


def schedules_of(root) -> list[tuple[str, bool]]:
    from nbflow.schedule import list_schedules

    return [(s["name"], s["paused"]) for s in list_schedules(root)]


MUTATIONS = [
    ("POST", ("runs",), {}),
    ("POST", ("runs", "latest", "cancel"), {}),
    ("POST", ("schedules",), {"name": "sneaky", "every": "1h"}),
    ("POST", ("schedules", "nightly", "pause"), {}),
    ("POST", ("schedules", "held", "resume"), {}),
    ("DELETE", ("schedules", "nightly"), None),
]


class TestReadOnly:
    @pytest.fixture
    def jp_server_config(self):
        return config(ReadOnly)

    async def test_every_change_is_403_and_nothing_runs_or_changes(self, jp_root_dir, api):
        from nbflow.schedule import add_schedule, pause_schedule

        two_step_pipeline(jp_root_dir)
        add_schedule(jp_root_dir, "nightly", cron="0 3 * * *", tz="UTC")
        add_schedule(jp_root_dir, "held", every="1h", tz="UTC")
        pause_schedule(jp_root_dir, "held")
        ReadOnly.asked.clear()
        for method, path, body in MUTATIONS:
            status, data = await api(method, *path, body=body)
            assert status == 403, (method, path, data)
            assert "not authorized" in data["message"], data
        assert not (jp_root_dir / "a.txt").exists() and not (jp_root_dir / ".nbflow" / "runs").exists()
        assert schedules_of(jp_root_dir) == [("held", True), ("nightly", False)]
        assert {(m, a) for m, a, _ in ReadOnly.asked} == {("POST", "execute"), ("POST", "write"), ("DELETE", "write")}
        assert {r for _, _, r in ReadOnly.asked} == {"nbflow"}

        # reading still works
        ReadOnly.asked.clear()
        for path in (("pipeline",), ("runs",), ("schedules",), ("schedules", "nightly")):
            status, data = await api("GET", *path)
            assert status == 200, (path, data)
        status, data = await api("GET", "runs", "latest")
        assert status == 404 and "no run" in data["message"]  # answered: there is no run yet
        assert set(ReadOnly.asked) == {("GET", "read", "nbflow")}


class TestNoExecute:
    @pytest.fixture
    def jp_server_config(self):
        return config(NoExecute)

    async def test_schedules_change_but_nothing_runs_and_no_command_is_set(self, jp_root_dir, api):
        from nbflow.schedule import add_schedule, pause_schedule

        two_step_pipeline(jp_root_dir)
        add_schedule(jp_root_dir, "alerting", every="1h", tz="UTC", on_failure_command="echo failed")
        pause_schedule(jp_root_dir, "alerting")

        status, data = await api("POST", "runs", body={})
        assert status == 403 and "execute" in data["message"], data
        status, data = await api("POST", "runs", "latest", "cancel")
        assert status == 403, data

        status, added = await api("POST", "schedules", body={"name": "plain", "every": "1h", "tz": "UTC"})
        assert status == 201, added
        status, data = await api(
            "POST", "schedules", body={"name": "cmd", "every": "1h", "on_failure_command": "touch pwned"}
        )
        assert status == 403, data
        assert data["message"].startswith("a schedule with an `on_failure_command` needs the `execute` permission")

        status, data = await api("POST", "schedules", "alerting", "resume")
        assert status == 403 and "execute" in data["message"], data
        status, paused = await api("POST", "schedules", "plain", "pause")
        assert status == 200 and paused["paused"] is True
        status, resumed = await api("POST", "schedules", "plain", "resume")
        assert status == 200 and resumed["paused"] is False

        assert schedules_of(jp_root_dir) == [("alerting", True), ("plain", False)]
        assert not (jp_root_dir / ".nbflow" / "runs").exists() and not (jp_root_dir / "pwned").exists()
