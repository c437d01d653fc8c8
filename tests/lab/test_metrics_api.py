"""`GET /nbflow/metrics` (Prometheus' text) and `GET /nbflow/api/health` through a real Jupyter Server, after real
runs and with a real scheduler: the numbers are the store's, a read-only user may scrape, nobody else may."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import pytest
from jupyter_server.auth.authorizer import Authorizer
from prometheus_client.parser import text_string_to_metric_families

from lab.conftest import two_step_pipeline, wait_for_run
from nbflow.scheduler import Scheduler

pytestmark = pytest.mark.timeout(300)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def store_rows(root, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(root / ".nbflow" / "nbflow.db") as db:
        return db.execute(sql, args).fetchall()


@pytest.fixture
def scrape(jp_fetch):
    async def get(**kwargs):
        response = await jp_fetch("nbflow", "metrics", raise_error=False, **kwargs)
        return response.code, response.headers.get("Content-Type", ""), response.body.decode()

    return get


async def test_metrics_after_real_runs_are_the_stores_numbers(jp_root_dir, api, scrape):
    two_step_pipeline(jp_root_dir)
    ids = []
    for body in ({}, {}, {"params": {"n": 2}}):  # ran, then up to date (skipped), then run again with n=2
        status, started = await api("POST", "runs", body=body)
        assert status == 202, started
        assert (await wait_for_run(api, started["id"]))["state"] == "succeeded"
        ids.append(started["id"])

    status, content_type, text = await scrape()
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    got = samples(text)
    assert got[("nbflow_store_readable", ())] == 1
    assert got[("nbflow_runs_total", (("state", "succeeded"), ("trigger", "lab")))] == 3
    assert got[("nbflow_runs_running", ())] == 0
    for task, state, count in store_rows(
        jp_root_dir, "SELECT COALESCE(base, task), state, COUNT(*) FROM task_runs GROUP BY 1, 2"
    ):
        assert got[("nbflow_task_runs_total", (("state", state), ("task", task)))] == count
    assert got[("nbflow_task_runs_total", (("state", "succeeded"), ("task", "a")))] == 2
    assert got[("nbflow_task_runs_total", (("state", "skipped"), ("task", "b")))] == 1

    # durations: the store's executed task runs, as a histogram (a skipped task is not timed)
    ((executed, seconds),) = store_rows(
        jp_root_dir,
        "SELECT COUNT(*), SUM((julianday(finished_at) - julianday(started_at)) * 86400) FROM task_runs "
        "WHERE task = 'a' AND state = 'succeeded'",
    )
    key = (("state", "succeeded"), ("task", "a"))
    assert got[("nbflow_task_duration_seconds_count", key)] == executed == 2
    assert got[("nbflow_task_duration_seconds_sum", key)] == pytest.approx(seconds, abs=0.01)
    assert got[("nbflow_task_duration_seconds_bucket", (("le", "+Inf"), *key))] == 2
    assert got[("nbflow_run_duration_seconds_count", (("state", "succeeded"), ("trigger", "lab")))] == 3

    # the last success of each task: when its latest success finished
    (latest,) = store_rows(
        jp_root_dir,
        "SELECT (MAX(julianday(finished_at)) - 2440587.5) * 86400 FROM task_runs WHERE task = 'a' AND state = ?",
        "succeeded",
    )[0]
    assert got[("nbflow_task_last_success_timestamp_seconds", (("task", "a"),))] == pytest.approx(latest, abs=0.01)
    assert abs(latest - time.time()) < 300
    assert got[("nbflow_scheduler_lease_held", ())] == 0
    assert not any(name == "nbflow_scheduler_lease_info" for name, _ in got)

    # OpenMetrics when the scraper asks for it
    status, content_type, text = await scrape(headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and content_type.startswith("application/openmetrics-text"), content_type
    assert text.rstrip().endswith("# EOF")


async def test_health_before_while_and_after_a_scheduler_runs(jp_root_dir, api, scrape):
    two_step_pipeline(jp_root_dir)
    status, health = await api("GET", "health")
    assert status == 200, health
    assert health == {
        "store_readable": True,
        "store_error": None,
        "scheduler_running": False,
        "scheduler": None,
        "last_tick": None,
        "last_tick_owner": None,
        "seconds_since_tick": None,
    }

    scheduler = Scheduler(jp_root_dir).start()
    try:
        deadline = time.monotonic() + 60
        while not (await api("GET", "health"))[1]["scheduler_running"]:
            assert time.monotonic() < deadline, "the scheduler never took the lease"
            await asyncio.sleep(0.1)
        status, health = await api("GET", "health")
        assert status == 200
        assert health["scheduler"]["owner"] == scheduler.owner and health["scheduler"]["pid"] == os.getpid()
        assert health["scheduler"]["here"] is False  # started by this test, not hosted by the server
        assert health["last_tick_owner"] == scheduler.owner and 0 <= health["seconds_since_tick"] < 15
        got = samples((await scrape())[2])
        assert got[("nbflow_scheduler_lease_held", ())] == 1
        info = [labels for name, labels in got if name == "nbflow_scheduler_lease_info"]
        assert info == [(("host", health["scheduler"]["host"]), ("owner", scheduler.owner), ("pid", str(os.getpid())))]
        assert abs(got[("nbflow_scheduler_last_tick_timestamp_seconds", ())] - time.time()) < 15
        assert got[("nbflow_scheduler_lease_expires_timestamp_seconds", ())] > time.time()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, scheduler.stop)

    # stopped: the lease released, the last tick kept
    status, health = await api("GET", "health")
    assert status == 200 and health["scheduler_running"] is False and health["scheduler"] is None
    assert health["last_tick_owner"] == scheduler.owner and health["seconds_since_tick"] >= 0
    got = samples((await scrape())[2])
    assert got[("nbflow_scheduler_lease_held", ())] == 0 and ("nbflow_scheduler_last_tick_timestamp_seconds", ()) in got


async def test_an_unreadable_project_is_said_not_hidden(jp_root_dir, api, scrape):
    (jp_root_dir / "nbflow.toml").write_text("this is = = not toml\n")
    status, health = await api("GET", "health")
    assert status == 503 and health["store_readable"] is False, health
    assert "nbflow.toml" in health["store_error"], health
    status, _, text = await scrape()
    assert status == 200 and samples(text) == {("nbflow_store_readable", ()): 0}


class Granting(Authorizer):
    granted: frozenset[str] = frozenset()

    def is_authorized(self, handler, user, action: str, resource: str) -> bool:
        return action in self.granted


class ReadOnly(Granting):
    granted = frozenset({"read"})


class Nothing(Granting):
    pass


def config(authorizer: type[Authorizer]) -> dict:
    return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}, "authorizer_class": authorizer}}


class TestReadOnly:
    @pytest.fixture
    def jp_server_config(self):
        return config(ReadOnly)

    async def test_a_reader_may_scrape_and_ask_for_health_and_a_stranger_may_not(self, jp_root_dir, api, scrape):
        two_step_pipeline(jp_root_dir)
        status, _, text = await scrape()
        assert status == 200 and samples(text)[("nbflow_store_readable", ())] == 1
        status, health = await api("GET", "health")
        assert status == 200 and health["store_readable"] is True

        # no token: refused, and nothing of the project shown
        for fetch in (scrape(headers={"Authorization": ""}), api("GET", "health", headers={"Authorization": ""})):
            result = await fetch
            assert result[0] == 403, result
            assert "nbflow_" not in str(result)


class TestNoRead:
    @pytest.fixture
    def jp_server_config(self):
        return config(Nothing)

    async def test_a_user_who_may_not_read_sees_no_metrics(self, jp_root_dir, api, scrape):
        two_step_pipeline(jp_root_dir)
        status, _, text = await scrape()
        assert status == 403 and "nbflow_" not in text
        status, health = await api("GET", "health")
        assert status == 403 and "scheduler" not in str(health)


class TestHostedScheduler:
    @pytest.fixture
    def jp_server_config(self):
        return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}}, "NbflowApp": {"scheduler": True}}

    async def test_health_says_the_scheduler_is_this_servers(self, jp_serverapp, jp_root_dir, api):
        two_step_pipeline(jp_root_dir)
        (app,) = jp_serverapp.extension_manager.extension_apps["nbflow.server"]
        await app._start_jupyter_server_extension(jp_serverapp)  # what a started server calls (the start hook)
        try:
            deadline = time.monotonic() + 60
            while not (health := (await api("GET", "health"))[1])["scheduler_running"]:
                assert time.monotonic() < deadline, "the hosted scheduler never took the lease"
                await asyncio.sleep(0.1)
            assert health["scheduler"]["here"] is True and health["scheduler"]["pid"] == os.getpid()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, app.service.shutdown)
        status, health = await api("GET", "health")
        assert status == 200 and health["scheduler"] is None and health["last_tick_owner"]
