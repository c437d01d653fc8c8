"""Reports through the REST API: `GET reports` answers what `nbflow reports --json` prints, `GET reports/RUN/INSTANCE`
the HTML a run kept, confined as Jupyter confines the files it serves; both need `read`. A real Jupyter Server
with real kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import write_notebook
from tornado.httpclient import HTTPClientError

from lab.conftest import wait_for_run
from lab.test_authorization import Granting, ReadOnly, config

pytestmark = pytest.mark.timeout(300)


def regional_reports(root) -> None:
    (root / "nbflow.toml").write_text("")
    write_notebook(
        root / "regional.ipynb",
        'region = "all"\ngrid = {"region": ["north", "south"]}\nreport = "reports/{region}.html"',
        "print('sales of', region)",
    )


def cli_reports(root, *args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "nbflow", "reports", "--json", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_reports_are_listed_as_the_cli_lists_them_and_each_run_copy_is_served(jp_root_dir, api, jp_fetch):
    regional_reports(jp_root_dir)
    status, started = await api("POST", "runs", body={})
    assert status == 202, started
    first = await wait_for_run(api, started["id"])
    status, started = await api("POST", "runs", body={"targets": ["regional[region=south]"], "force": True})
    assert status == 202, started
    second = await wait_for_run(api, started["id"])
    assert (first["state"], second["state"]) == ("succeeded", "succeeded")

    status, listed = await api("GET", "reports")
    assert status == 200, listed
    assert listed == cli_reports(jp_root_dir)
    assert [(r["name"], r["run_id"]) for r in listed] == [
        ("regional[region=north]", first["id"]),
        ("regional[region=south]", second["id"]),
    ]
    status, every = await api("GET", "reports", params={"all": "true", "task": "regional[region=south]"})
    assert status == 200 and every == cli_reports(jp_root_dir, "--all", "-t", "regional[region=south]")
    assert [(r["run_id"], r["latest"]) for r in every] == [(second["id"], True), (first["id"], False)]

    # the earlier version, as that run kept it
    response = await jp_fetch("nbflow", "api", "reports", first["id"], "regional[region=south]")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "sandbox allow-scripts" in response.headers["Content-Security-Policy"]
    assert response.body == (jp_root_dir / every[1]["run_copy"]).read_bytes()
    assert b"sales of south" in response.body

    status, data = await api("GET", "reports", second["id"], "regional[region=north]")
    assert status == 404 and "wrote no report of 'regional[region=north]'" in data["message"]
    status, data = await api("GET", "reports", params={"all": "maybe"})
    assert status == 400 and data["message"] == "all must be true or false, not 'maybe'."


class NoRead(Granting):
    granted = frozenset()


class TestNoRead:
    @pytest.fixture
    def jp_server_config(self):
        return config(NoRead)

    async def test_reports_and_their_pages_need_read(self, jp_root_dir, api, jp_fetch):
        regional_reports(jp_root_dir)
        NoRead.asked.clear()
        status, data = await api("GET", "reports")
        assert status == 403 and "not authorized" in data["message"], data
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch("nbflow", "api", "reports", "latest", "regional[region=north]")
        assert refused.value.code == 403
        assert set(NoRead.asked) == {("GET", "read", "nbflow")}


class TestReadOnly:
    @pytest.fixture
    def jp_server_config(self):
        return config(ReadOnly)

    async def test_a_reader_lists_reports(self, jp_root_dir, api):
        regional_reports(jp_root_dir)
        ReadOnly.asked.clear()
        status, data = await api("GET", "reports")
        assert (status, data) == (200, [])
        assert set(ReadOnly.asked) == {("GET", "read", "nbflow")}
