"""The REST API under /nbflow/api/, through a real Jupyter Server with real kernels."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import write_notebook

from lab.conftest import two_step_pipeline, wait_for_run

pytestmark = pytest.mark.timeout(600)


async def test_get_pipeline_is_the_graph_with_each_task_status(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    status, data = await api("GET", "pipeline")
    assert status == 200, data
    assert [t["name"] for t in data["tasks"]] == ["a", "b"]
    b = data["tasks"][1]
    assert b["notebook"] == "steps/b.ipynb" and b["inputs"] == ["a.txt"] and b["upstream"] == ["a"]
    assert b["params"] == {"n": 1}
    assert b["status"]["status"] == "never_run"
    assert data["edges"] == [{"from": "a", "to": "b", "via": ["a.txt"]}]
    assert data["root"] == "" and data["active_run"] is None and data["problems"] == []


async def test_an_invalid_pipeline_answers_422_with_every_problem(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "x.ipynb", 'inputs = ["y.txt"]\noutputs = ["x.txt"]')
    write_notebook(jp_root_dir / "y.ipynb", 'inputs = ["x.txt"]\noutputs = ["y.txt"]')
    write_notebook(jp_root_dir / "z.ipynb", "inputs = make()")
    status, data = await api("GET", "pipeline")
    assert status == 422
    assert len(data["problems"]) == 2 and data["tasks"] == []
    assert any("cycle" in p and "x" in p and "y" in p for p in data["problems"])
    assert any(p.startswith("z.ipynb: parameters cell, line 1") for p in data["problems"])
    assert "problems" in data["message"]


async def test_a_run_started_from_the_api_runs_in_the_background_and_is_recorded(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    status, started = await api("POST", "runs", body={"params": {"n": 7}})
    assert status == 202, started
    run_id = started["id"]
    assert started["tasks"] == ["a", "b"]
    detail = await wait_for_run(api, run_id)
    assert detail["state"] == "succeeded", detail
    assert detail["trigger"] == "lab" and detail["params"]["n"] == 7
    assert [(t["name"], t["state"]) for t in detail["tasks"]] == [("a", "succeeded"), ("b", "succeeded")]
    assert (jp_root_dir / "b.txt").read_text() == "77"

    status, runs = await api("GET", "runs")
    assert status == 200 and runs[0]["id"] == run_id and runs[0]["counts"] == {"succeeded": 2}
    assert set(runs[0]) == {
        "id",
        "trigger",
        "state",
        "started_at",
        "finished_at",
        "duration_s",
        "grid",
        "counts",
        "params",
    }

    status, data = await api("GET", "pipeline")
    assert {t["name"]: t["status"]["last_state"] for t in data["tasks"]} == {"a": "succeeded", "b": "succeeded"}

    status, executed = await api("GET", "runs", run_id, "tasks", "b", "notebook")
    assert status == 200, executed
    assert executed["path"] == f".nbflow/runs/{run_id}/b.ipynb" and executed["state"] == "succeeded"
    sources = [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in executed["notebook"]["cells"]
    ]
    assert any("n = 7" in s for s in sources)  # the injected parameters cell

    # `latest` and a unique prefix name a run too
    status, latest = await api("GET", "runs", "latest")
    assert status == 200 and latest["id"] == run_id
    status, _ = await api("GET", "runs", run_id[:15])
    assert status == 200

    # up to date now: a second run skips both; `force` reruns them
    status, again = await api("POST", "runs", body={"targets": ["b"], "params": {"n": 7}})
    detail = await wait_for_run(api, again["id"])
    assert [t["state"] for t in detail["tasks"]] == ["skipped", "skipped"]
    status, forced = await api("POST", "runs", body={"targets": ["a"], "force": True, "params": {"a.n": 3}})
    assert status == 202
    detail = await wait_for_run(api, forced["id"])
    assert [(t["name"], t["state"]) for t in detail["tasks"]] == [("a", "succeeded")]
    assert detail["params"]["a.n"] == 3 and (jp_root_dir / "a.txt").read_text() == "3"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"targets": ["nope"]}, "target `nope` names no task"),
        ({"targets": ["b", "aa"]}, "target `aa` names no task (did you mean 'a'?)"),
        ({"params": {"typo": 1}}, "parameter `typo`: no selected task assigns `typo`"),
        ({"params_text": {"typo": "1"}}, "parameter `typo`: no selected task assigns `typo`"),
        ({"params": {"zz.n": 1}}, "parameter `zz.n`: `zz` is no task"),
        ({"params": {"a.m": 1}}, "parameter `a.m`: a.ipynb does not assign `m`"),
        ({"targets": "a"}, "`targets` must be a list of task names"),
        (
            {"targets": ["a", 1]},
            "`targets` must be a list of task names (each run with its upstream), or null for all "
            "tasks (item 2: input should be a valid string).",
        ),
        ({"params": [1]}, "`params` must be an object"),
        ({"params_text": {"n": 1}}, "`params_text` must be an object of text values"),
        ({"params": {"n": 1}, "params_text": {"n": "2"}}, "parameter `n` is given in both `params` and `params_text`"),
        ({"force": "yes"}, "`force` must be true or false"),
        (
            {"target": ["a"]},
            "unknown field(s) target; known: targets, params, params_text, force, no_wait, grid, grid_text, "
            "upstream, downstream, rerun_failed.",
        ),
        ([1, 2], "the request body must be a JSON object"),
        ("null", "the request body must be a JSON object"),
        ("{not json", "the request body is not valid JSON"),
    ],
)
async def test_a_run_that_cannot_start_answers_400_with_the_reason(jp_root_dir, api, body, fragment):
    two_step_pipeline(jp_root_dir)
    status, data = await api("POST", "runs", body=body)
    assert status == 400, data
    assert fragment in data["message"], data
    assert "-p" not in data["message"] and "--target" not in data["message"]
    assert "pydantic" not in data["message"] and "Traceback" not in data["message"]
    status, runs = await api("GET", "runs")
    assert runs == []


async def test_a_body_over_the_bound_is_refused_before_it_is_read(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    huge = json.dumps({"params": {"n": "x" * (1024 * 1024)}})
    for path in (("runs",), ("schedules",)):
        status, data = await api("POST", *path, body=huge)
        assert status == 413, data
        assert "at most 1048576" in data["message"]
    status, runs = await api("GET", "runs")
    assert runs == []


async def test_params_text_is_read_as_the_command_line_reads_it(jp_root_dir, api):
    """`True` is a bool, `3` an int, `2.5` a float, `None` None, anything else text: what `-p NAME VALUE` gives."""
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(
        jp_root_dir / "t.ipynb",
        'outputs = ["t.json"]\nflag = False\ncount = 0\nratio = 0.0\nlabel = ""\nnothing = 1',
        "import json\njson.dump([flag, count, ratio, label, nothing], open('t.json', 'w'))",
    )
    texts = {"flag": "True", "count": "3", "ratio": "2.5", "label": "eu-west", "nothing": "None"}
    status, started = await api("POST", "runs", body={"params_text": texts})
    assert status == 202, started
    detail = await wait_for_run(api, started["id"])
    assert detail["state"] == "succeeded", detail
    assert json.loads((jp_root_dir / "t.json").read_text()) == [True, 3, 2.5, "eu-west", None]
    assert detail["params"] == {"flag": True, "count": 3, "ratio": 2.5, "label": "eu-west", "nothing": None}


async def test_a_missing_source_is_a_400_naming_it(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "a.ipynb", 'inputs = ["raw.csv"]\noutputs = ["a.txt"]')
    status, data = await api("POST", "runs", body={})
    assert status == 400 and any("raw.csv does not exist" in p for p in data["problems"])


async def test_a_second_run_waits_or_is_409_told_not_to_and_a_run_can_be_cancelled(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "slow.ipynb", 'outputs = ["s.txt"]', "import time\ntime.sleep(120)")
    status, started = await api("POST", "runs", body={})
    assert status == 202
    run_id = started["id"]

    # the server stays responsive while the run goes on, and shows it as the active run
    status, data = await api("GET", "pipeline")
    assert status == 200 and data["active_run"] == run_id
    await _wait_task_state(api, run_id, "slow", "running")

    status, data = await api("POST", "runs", body={"force": True, "no_wait": True})
    assert status == 409 and f"slow (run {run_id} has slow)" in data["message"]
    status, second = await api("POST", "runs", body={"force": True})
    assert status == 202
    await _wait_task_state(api, second["id"], "slow", "waiting")
    status, data = await api("POST", "runs", second["id"], "cancel")
    assert status == 202
    assert (await wait_for_run(api, second["id"], timeout=60))["state"] == "cancelled"

    status, data = await api("POST", "runs", run_id, "cancel")
    assert status == 202 and data["cancelling"] is True
    detail = await wait_for_run(api, run_id, timeout=60)
    assert detail["state"] == "cancelled" and detail["tasks"][0]["state"] == "cancelled"

    status, data = await api("POST", "runs", run_id, "cancel")
    assert status == 409 and "not running" in data["message"]
    status, data = await api("POST", "runs", "nope", "cancel")
    assert status == 404


async def test_a_run_started_by_the_cli_is_cancelled_with_sigint(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "slow.ipynb", 'outputs = ["s.txt"]', "import time\ntime.sleep(120)")
    process = subprocess.Popen(
        [sys.executable, "-m", "nbflow", "run", str(jp_root_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        runs: list = []
        while not runs:
            assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
            await asyncio.sleep(0.3)
            status, runs = await api("GET", "runs")
        run_id = runs[0]["id"]
        assert runs[0]["trigger"] == "cli"
        await _wait_task_state(api, run_id, "slow", "running")
        status, data = await api("POST", "runs", run_id, "cancel")
        assert status == 202 and data["how"].startswith(f"SIGINT to process {process.pid}; SIGTERM after 10 s")
        assert process.wait(timeout=60) == 130
        detail = await wait_for_run(api, run_id, timeout=30)
        assert detail["state"] == "cancelled" and detail["tasks"][0]["state"] == "cancelled"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        process.stdout.close()


async def test_unknown_runs_and_tasks_are_404_json(jp_root_dir, api):
    two_step_pipeline(jp_root_dir)
    status, data = await api("GET", "runs", "20990101T000000000-abcd")
    assert status == 404 and "no run" in data["message"]
    status, started = await api("POST", "runs", body={"targets": ["a"]})
    await wait_for_run(api, started["id"])
    status, data = await api("GET", "runs", started["id"], "tasks", "b", "notebook")
    assert status == 404 and "has no task 'b'" in data["message"]
    status, data = await api("GET", "runs", "limit")
    assert status == 404
    status, data = await api("GET", "runs", params={"limit": "x"})
    assert status == 400
    for method, path in (("GET", ("nope",)), ("POST", ("pipeline", "x")), ("DELETE", ("runs",))):
        status, data = await api(method, *path, allow_nonstandard_methods=True)
        assert status in (404, 405) and "message" in data, (method, path, data)


# -- authentication ---------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "pipeline"),
    ("GET", "runs"),
    ("POST", "runs"),
    ("GET", "runs/latest"),
    ("POST", "runs/latest/cancel"),
    ("GET", "runs/latest/tasks/a/notebook"),
    ("GET", "events"),
    ("GET", "tasks/a"),
    ("GET", "files/preview?path=a.txt"),
    ("GET", "no-such-endpoint"),
    ("GET", "schedules"),
    ("POST", "schedules"),
    ("GET", "schedules/nightly"),
    ("DELETE", "schedules/nightly"),
    ("POST", "schedules/nightly/pause"),
    ("POST", "schedules/nightly/resume"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
async def test_every_endpoint_is_403_without_a_token(
    jp_root_dir, jp_fetch, method, path, http_server_client, jp_base_url
):
    from nbflow.schedule import add_schedule, list_schedules

    two_step_pipeline(jp_root_dir)
    add_schedule(jp_root_dir, "nightly", cron="0 3 * * *", tz="UTC")
    for body in ("{}", '{"name": "sneaky", "every": "1h"}'):
        response = await http_server_client.fetch(
            f"{jp_base_url}nbflow/api/{path}", method=method, raise_error=False, body=body if method == "POST" else None
        )
        assert response.code == 403
        assert "message" in json.loads(response.body)
        wrong = await jp_fetch(
            "nbflow",
            "api",
            *path.split("/"),
            method=method,
            raise_error=False,
            headers={"Authorization": "token wrong"},
            body=body if method == "POST" else None,
        )
        assert wrong.code == 403
    assert not (jp_root_dir / ".nbflow" / "runs").exists() or not list((jp_root_dir / ".nbflow" / "runs").glob("*"))
    assert [(s["name"], s["paused"]) for s in list_schedules(jp_root_dir)] == [("nightly", False)]


# -- nothing outside the root -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "runs/%2Fetc%2Fpasswd",
        "runs/RUN/tasks/..%2F..%2F..%2F..%2Fetc%2Fpasswd/notebook",
        "runs/RUN/tasks/../../../../etc/passwd/notebook",
        "runs/RUN/tasks//etc/passwd/notebook",
        "runs/RUN/tasks/%2Fetc%2Fpasswd/notebook",
        "runs/RUN/tasks/a%2F..%2F..%2Fb/notebook",
        "runs/RUN%2F..%2F..%2Fx/tasks/a/notebook",
    ],
)
async def test_traversal_in_urls_reaches_nothing(
    jp_root_dir, api, http_server_client, jp_auth_header, jp_base_url, raw
):
    two_step_pipeline(jp_root_dir)
    status, started = await api("POST", "runs", body={})
    await wait_for_run(api, started["id"])
    response = await http_server_client.fetch(
        f"{jp_base_url}nbflow/api/" + raw.replace("RUN", started["id"]), headers=jp_auth_header, raise_error=False
    )
    assert response.code in (400, 404)
    assert b"root:" not in response.body
    assert "message" in json.loads(response.body)


async def test_an_executed_notebook_symlinked_outside_the_root_is_not_served(jp_root_dir, api, tmp_path):
    two_step_pipeline(jp_root_dir)
    status, started = await api("POST", "runs", body={})
    run_id = started["id"]
    await wait_for_run(api, run_id)
    secret = tmp_path / "secret.ipynb"
    secret.write_text('{"cells": [], "secret": true}')
    executed = jp_root_dir / ".nbflow" / "runs" / run_id / "a.ipynb"
    executed.unlink()
    executed.symlink_to(secret)
    status, data = await api("GET", "runs", run_id, "tasks", "a", "notebook")
    assert status == 404 and "outside the server's root" in data["message"]
    # a symlink that stays inside the root is fine
    executed.unlink()
    executed.symlink_to(jp_root_dir / ".nbflow" / "runs" / run_id / "b.ipynb")
    status, data = await api("GET", "runs", run_id, "tasks", "a", "notebook")
    assert status == 200


async def test_a_task_notebook_symlinked_from_outside_is_refused(jp_root_dir, api, tmp_path):
    two_step_pipeline(jp_root_dir)
    outside = write_notebook(tmp_path / "elsewhere" / "evil.ipynb", 'outputs = ["e.txt"]')
    (jp_root_dir / "evil.ipynb").symlink_to(outside)
    status, data = await api("GET", "pipeline")
    assert status == 422
    assert data["problems"] == [
        "evil.ipynb: the notebook resolves outside the server's root folder (a symlink?); "
        "the server does not read or run it."
    ]
    status, data = await api("POST", "runs", body={})
    assert status == 400 and "evil.ipynb" in data["message"]


async def test_a_project_above_the_root_is_refused(jp_root_dir, api):
    (jp_root_dir.parent / "nbflow.toml").write_text("")  # the project root would be the server root's parent
    write_notebook(jp_root_dir / "a.ipynb", 'outputs = ["a.txt"]')
    status, data = await api("GET", "pipeline")
    assert status == 422 and "outside the server's root folder" in data["problems"][0]
    status, data = await api("GET", "runs")
    assert status == 404 and "outside" in data["message"]
    status, data = await api("POST", "runs", body={})
    assert status == 400 and not (jp_root_dir.parent / ".nbflow").exists()


async def _wait_task_state(api, run_id: str, task: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, detail = await api("GET", "runs", run_id)
        states = {t["name"]: t["state"] for t in detail["tasks"]}
        if states[task] == state:
            return
        assert time.monotonic() < deadline, detail
        await asyncio.sleep(0.3)


def test_paths_are_checked_with_symlinks_resolved(tmp_path):
    from nbflow.server.errors import ApiError
    from nbflow.server.paths import check_relative, inside

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)
    real = os.path.realpath(root)
    assert inside(real, root / "sub") and inside(real, root)
    assert not inside(real, root / "link") and not inside(real, root / ".." / "x")
    assert not inside(real, str(root) + "-sibling")
    assert check_relative("sub/./x/", "p") == "sub/x"
    for bad in ("/etc", "../x", "a/../../b", "a\\..\\b", "\\x"):
        with pytest.raises(ApiError):
            check_relative(bad, "p")


class TestProjectSubfolder:
    """c.NbflowApp.project: the project in a folder below the server's root, never outside it."""

    @pytest.fixture
    def project_setting(self):
        return "pipes"

    @pytest.fixture
    def jp_server_config(self, project_setting):
        return {
            "ServerApp": {"jpserver_extensions": {"nbflow.server": True}},
            "NbflowApp": {"project": project_setting},
        }

    async def test_the_project_is_the_configured_subfolder(self, jp_root_dir, api):
        two_step_pipeline(jp_root_dir / "pipes")
        status, data = await api("GET", "pipeline")
        assert status == 200 and data["root"] == "pipes" and len(data["tasks"]) == 2
        status, started = await api("POST", "runs", body={"targets": ["a"]})
        await wait_for_run(api, started["id"])
        status, executed = await api("GET", "runs", started["id"], "tasks", "a", "notebook")
        assert executed["path"] == f"pipes/.nbflow/runs/{started['id']}/a.ipynb"

    @pytest.mark.parametrize("project_setting", ["../outside", "/etc", "pipes/../../x", "link", "missing"])
    async def test_a_subfolder_outside_the_root_is_refused(self, jp_root_dir, api, tmp_path, project_setting):
        (tmp_path / "outside").mkdir(exist_ok=True)
        two_step_pipeline(tmp_path / "outside")
        (jp_root_dir / "link").symlink_to(tmp_path / "outside")
        status, data = await api("GET", "pipeline")
        assert status == 422 and "c.NbflowApp.project" in data["problems"][0], data
        status, data = await api("GET", "runs")
        assert status == 400
        assert not (tmp_path / "outside" / ".nbflow").exists()


async def test_task_names_with_a_slash_reach_their_executed_notebook(
    jp_root_dir, api, http_server_client, jp_auth_header, jp_base_url
):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "sales" / "clean.ipynb", 'outputs = ["s.txt"]', "open(outputs[0], 'w')")
    write_notebook(jp_root_dir / "stock" / "clean.ipynb", 'outputs = ["t.txt"]', "open(outputs[0], 'w')")
    status, data = await api("GET", "pipeline")
    assert [t["name"] for t in data["tasks"]] == ["sales/clean", "stock/clean"]
    status, started = await api("POST", "runs", body={"targets": ["sales/clean"]})
    assert status == 202, started
    detail = await wait_for_run(api, started["id"])
    assert detail["state"] == "succeeded", detail
    for raw in ("sales%2Fclean", "sales/clean"):  # as the panel sends it (encodeURIComponent), and plain
        response = await http_server_client.fetch(
            f"{jp_base_url}nbflow/api/runs/{started['id']}/tasks/{raw}/notebook", headers=jp_auth_header
        )
        executed = json.loads(response.body)
        assert executed["task"] == "sales/clean"
        assert executed["path"].startswith(f".nbflow/runs/{started['id']}/sales__clean~")  # one file per name


async def test_a_failed_task_has_its_error_and_its_executed_notebook(jp_root_dir, api):
    (jp_root_dir / "nbflow.toml").write_text("")
    write_notebook(jp_root_dir / "bad.ipynb", 'outputs = ["bad.txt"]', "x = 1", "raise ValueError('no data for today')")
    write_notebook(jp_root_dir / "after.ipynb", 'inputs = ["bad.txt"]\noutputs = ["after.txt"]')
    status, started = await api("POST", "runs", body={})
    detail = await wait_for_run(api, started["id"])
    assert detail["state"] == "failed"
    bad, after = detail["tasks"]
    assert (bad["state"], after["state"]) == ("failed", "upstream_failed")
    assert bad["error"]["ename"] == "ValueError" and bad["error"]["evalue"] == "no data for today"
    status, executed = await api("GET", "runs", started["id"], "tasks", "bad", "notebook")
    assert status == 200 and executed["state"] == "failed"
    outputs = [o for c in executed["notebook"]["cells"] for o in c.get("outputs", [])]
    assert any(o.get("ename") == "ValueError" for o in outputs)
    status, data = await api("GET", "runs", started["id"], "tasks", "after", "notebook")
    assert status == 404 and "upstream_failed" in data["message"]
    status, data = await api("GET", "pipeline")
    assert {t["name"]: t["status"]["status"] for t in data["tasks"]}["bad"] == "failed"


class TestSchedulerSetting:
    @pytest.fixture
    def jp_server_config(self):
        return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}}, "NbflowApp": {"scheduler": True}}

    async def test_the_scheduler_setting_is_read_and_the_api_still_serves(self, jp_serverapp, jp_root_dir, api):
        two_step_pipeline(jp_root_dir)
        apps = jp_serverapp.extension_manager.extension_apps["nbflow.server"]
        assert [app.scheduler for app in apps] == [True]
        status, data = await api("GET", "pipeline")
        assert status == 200
