"""Runs compared through the REST API: `GET runs/A/diff/B` answers what `nbflow diff A B --json` prints, `GET
runs/ID/tasks/INSTANCE/diff` compares an instance with the previous run that executed it; a run or task not found
is a 404, a malformed task a 400, and reading is enough. A real Jupyter Server with real kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.conftest import two_step_pipeline, wait_for_run
from lab.test_authorization import ReadOnly, config

pytestmark = pytest.mark.timeout(300)


def cli(root, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbflow", *args], cwd=root, capture_output=True, text=True, timeout=120
    )


async def test_runs_compared_as_the_cli_compares_them(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    ids = []
    for n in (1, 2):
        status, started = await api("POST", "runs", body={"params": {"n": n}})
        assert status == 202, started
        assert (await wait_for_run(api, started["id"]))["state"] == "succeeded"
        ids.append(started["id"])
    first, second = ids

    status, found = await api("GET", "runs", first, "diff", second)
    assert status == 200, found
    printed = cli(jp_root_dir, "diff", first, second, "--json")
    assert printed.returncode == 0, printed.stderr
    assert found == json.loads(printed.stdout)
    assert [(t["name"], [(p["name"], p["before"], p["after"]) for p in t["params"]]) for t in found["tasks"]] == [
        ("a", [("n", 1, 2)]),
        ("b", [("n", 1, 2)]),
    ]
    status, only_b = await api("GET", "runs", "previous", "diff", "latest", params={"task": "b"})
    assert status == 200 and [t["name"] for t in only_b["tasks"]] == ["b"] and only_b["b"]["id"] == second

    # an instance against the previous run that executed it: what the lab's "Compare with previous run" asks
    status, previous = await api("GET", "runs", second, "tasks", "b", "diff")
    assert status == 200, previous
    assert (previous["a"]["id"], previous["b"]["id"], previous["selector"]) == (first, second, "b")
    [b] = previous["tasks"]
    assert b["name"] == "b" and b["inputs"][0]["path"] == "a.txt"

    status, data = await api("GET", "runs", first, "tasks", "a", "diff")
    assert (
        status == 404 and data["message"] == f"no run before {first} executed 'a': there is nothing to compare it with."
    )
    status, data = await api("GET", "runs", "nosuchrun", "diff", second)
    assert status == 404 and "no run 'nosuchrun'" in data["message"] and "GET runs lists" in data["message"]
    status, data = await api("GET", "runs", first, "diff", second, params={"task": "nosuchtask"})
    assert status == 404 and "has a task or instance 'nosuchtask'" in data["message"]
    status, data = await api("GET", "runs", first, "diff", second, params={"task": "a[n]"})
    assert status == 400 and "is not NAME=VALUE" in data["message"]


class TestReadOnly:
    @pytest.fixture
    def jp_server_config(self):
        return config(ReadOnly)

    async def test_a_reader_compares_runs(self, jp_root_dir, api):
        two_step_pipeline(jp_root_dir)
        for n in ("1", "2"):
            assert cli(jp_root_dir, "run", "-p", "n", n).returncode == 0
        ReadOnly.asked.clear()
        status, found = await api("GET", "runs", "previous", "diff", "latest")
        assert status == 200 and [t["name"] for t in found["tasks"]] == ["a", "b"], found
        status, found = await api("GET", "runs", "latest", "tasks", "a", "diff")
        assert status == 200 and [t["name"] for t in found["tasks"]] == ["a"]
        assert set(ReadOnly.asked) == {("GET", "read", "nbflow")}
