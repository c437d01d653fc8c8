"""Secrets through the REST API of a real Jupyter Server: runs read them, answers show `***`, values are refused."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from conftest import write_notebook

from lab.conftest import wait_for_run

pytestmark = pytest.mark.timeout(600)


async def test_answers_show_the_mask_and_a_value_for_a_secret_is_refused(jp_root_dir, api, monkeypatch):
    variable, value = f"NBFLOW_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}", f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv(variable, value)  # the server's own environment: the one its runs read
    (jp_root_dir / "nbflow.toml").write_text(f'[secrets]\napi_key = "env:{variable}"\n')
    write_notebook(
        jp_root_dir / "fetch.ipynb",
        'api_key = ""\noutputs = ["digest.txt"]',
        'import hashlib\nopen("digest.txt", "w").write(hashlib.sha256(api_key.encode()).hexdigest())\nprint(api_key)',
    )
    status, started = await api("POST", "runs", body={})
    assert status == 202, started
    detail = await wait_for_run(api, started["id"])
    assert detail["state"] == "succeeded", detail
    assert (jp_root_dir / "digest.txt").read_text() == hashlib.sha256(value.encode()).hexdigest()
    assert detail["params"] == {"api_key": "***"}

    answers = [detail]
    for path in (("pipeline",), ("runs",), ("runs", started["id"], "tasks", "fetch", "notebook")):
        status, data = await api("GET", *path)
        assert status == 200, (path, data)
        answers.append(data)
    assert value not in json.dumps(answers)
    assert answers[1]["tasks"][0]["params"] == {"api_key": "***"}
    printed = ["".join(o["text"]) for c in answers[3]["notebook"]["cells"] for o in c.get("outputs", []) if "text" in o]
    assert printed == ["***\n"]

    for body in ({"params": {"api_key": "typed-in"}}, {"params_text": {"fetch.api_key": "typed-in"}}):
        status, data = await api("POST", "runs", body=body)
        assert status == 400, data
        assert f"`api_key` is a secret, read from the environment variable {variable}" in data["message"]
