"""Fixtures for the JupyterLab side: pytest_jupyter's server fixtures (`jp_fetch`, ...), scoped to this folder so
its autouse fixtures and hooks touch no other test, and small pipelines to serve."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from conftest import write_notebook
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures and the async test hooks)


def two_step_pipeline(root: Path) -> Path:
    """a writes a.txt; b reads it and writes b.txt; both take `n`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbflow.toml").write_text("")
    write_notebook(root / "a.ipynb", 'outputs = ["a.txt"]\nn = 1', "open('a.txt', 'w').write(str(n))")
    write_notebook(
        root / "steps" / "b.ipynb",
        'inputs = ["../a.txt"]\noutputs = ["../b.txt"]\nn = 1',
        "open('../b.txt', 'w').write(open('../a.txt').read() + str(n))",
    )
    return root


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}}}


@pytest.fixture
def api(jp_fetch):
    """`await api("GET", "runs")` -> (status, JSON body); errors are returned, not raised."""

    async def call(method: str, *path: str, body=None, **kwargs):
        if method == "POST" and body is None:
            body = {}
        response = await jp_fetch(
            "nbflow",
            "api",
            *path,
            method=method,
            raise_error=False,
            body=json.dumps(body) if body is not None and not isinstance(body, str) else body,
            request_timeout=120,
            **kwargs,
        )
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call


async def wait_for_run(api, run_id: str, timeout: float = 180) -> dict:
    """Poll GET runs/ID until the run is no longer running."""
    deadline = time.monotonic() + timeout
    while True:
        status, detail = await api("GET", "runs", run_id)
        assert status == 200, detail
        if detail["state"] != "running":
            return detail
        assert time.monotonic() < deadline, f"run {run_id} still running after {timeout}s: {detail}"
        await asyncio.sleep(0.3)
