"""GET pipeline answered from what the server keeps between requests, and the REST reads' ETags: a client that
sends back the ETag it was given gets 304 while nothing changed, and never an old graph or status once something
did (a notebook edited or added, a run finished)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import write_notebook

from lab.conftest import two_step_pipeline, wait_for_run

pytestmark = pytest.mark.timeout(600)


def saved_a_while_ago(root: Path) -> None:
    """Every file under `root` (the store too) as if written a minute ago: the server trusts only stats older than
    its filesystem's timestamp resolution, so without this each answer here would be worked out afresh anyway."""
    past = time.time() - 60
    for folder, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(folder, name), (past, past))


async def get_pipeline(jp_fetch, etag: str | None = None):
    """(status, body as JSON or None, ETag) of GET pipeline, sending `etag` as If-None-Match."""
    headers = {"If-None-Match": etag} if etag else {}
    response = await jp_fetch("nbflow", "api", "pipeline", headers=headers, raise_error=False)
    body = json.loads(response.body) if response.body else None
    return response.code, body, response.headers.get("ETag")


async def test_an_unchanged_pipeline_is_answered_304_to_the_etag_it_was_given(jp_root_dir, jp_fetch):
    two_step_pipeline(jp_root_dir)
    status, first, etag = await get_pipeline(jp_fetch)
    assert status == 200 and etag and [t["name"] for t in first["tasks"]] == ["a", "b"]
    saved_a_while_ago(jp_root_dir)
    status, body, again = await get_pipeline(jp_fetch, etag)
    assert status == 304 and body is None and again == etag
    status, body, _ = await get_pipeline(jp_fetch, '"something else"')
    assert status == 200 and body == first
    # every JSON read has one: the runs list too
    runs = await jp_fetch("nbflow", "api", "runs")
    listed = await jp_fetch("nbflow", "api", "runs", headers={"If-None-Match": runs.headers["ETag"]}, raise_error=False)
    assert listed.code == 304 and not listed.body


async def test_editing_a_notebooks_parameters_changes_the_answer(jp_root_dir, jp_fetch):
    two_step_pipeline(jp_root_dir)
    saved_a_while_ago(jp_root_dir)
    _, first, etag = await get_pipeline(jp_fetch)
    _, again, _ = await get_pipeline(jp_fetch)  # answered from what the server kept
    assert again == first and first["tasks"][1]["params"] == {"n": 1}
    # the same size: only the parameters cell's n = 1 becomes n = 2
    write_notebook(
        jp_root_dir / "steps" / "b.ipynb",
        'inputs = ["../a.txt"]\noutputs = ["../b.txt"]\nn = 2',
        "open('../b.txt', 'w').write(open('../a.txt').read() + str(n))",
    )
    status, edited, new_etag = await get_pipeline(jp_fetch, etag)
    assert status == 200 and new_etag != etag
    assert edited["tasks"][1]["params"] == {"n": 2}


async def test_adding_a_notebook_adds_its_task_and_edge(jp_root_dir, jp_fetch):
    two_step_pipeline(jp_root_dir)
    saved_a_while_ago(jp_root_dir)
    _, first, etag = await get_pipeline(jp_fetch)
    await get_pipeline(jp_fetch)
    write_notebook(jp_root_dir / "steps" / "c.ipynb", 'inputs = ["../b.txt"]\noutputs = ["../c.txt"]')
    status, added, _ = await get_pipeline(jp_fetch, etag)
    assert status == 200
    assert [t["name"] for t in added["tasks"]] == ["a", "b", "c"]
    assert {"from": "b", "to": "c", "via": ["b.txt"]} in added["edges"]
    (jp_root_dir / "steps" / "c.ipynb").unlink()
    status, removed, _ = await get_pipeline(jp_fetch)
    assert status == 200 and removed == first


async def test_an_invalid_pipeline_is_reported_at_every_request_until_fixed(jp_root_dir, jp_fetch):
    two_step_pipeline(jp_root_dir)
    saved_a_while_ago(jp_root_dir)
    _, first, _ = await get_pipeline(jp_fetch)
    write_notebook(jp_root_dir / "a.ipynb", 'inputs = ["b.txt"]\noutputs = ["a.txt"]\nn = 1')  # a cycle with b
    for _ in range(2):
        status, body, etag = await get_pipeline(jp_fetch)
        assert status == 422 and etag is None
        assert any("cycle" in p for p in body["problems"]) and body["tasks"] == []
    write_notebook(jp_root_dir / "a.ipynb", 'outputs = ["a.txt"]\nn = 1', "open('a.txt', 'w').write(str(n))")
    status, fixed, _ = await get_pipeline(jp_fetch)
    assert status == 200 and [t["name"] for t in fixed["tasks"]] == ["a", "b"]


async def test_a_finished_run_shows_in_the_statuses(jp_root_dir, jp_fetch, api):
    two_step_pipeline(jp_root_dir)
    await get_pipeline(jp_fetch)  # the store made
    saved_a_while_ago(jp_root_dir)
    _, before, etag = await get_pipeline(jp_fetch)
    _, again, _ = await get_pipeline(jp_fetch)
    assert again == before
    assert {t["name"]: t["status"]["status"] for t in before["tasks"]} == {"a": "never_run", "b": "never_run"}
    status, started = await api("POST", "runs", body={})
    assert status == 202, started
    detail = await wait_for_run(api, started["id"])
    assert detail["state"] == "succeeded", detail
    status, after, _ = await get_pipeline(jp_fetch, etag)
    assert status == 200 and after["active_run"] is None
    assert {t["name"]: (t["status"]["status"], t["status"]["last_run"]) for t in after["tasks"]} == {
        "a": ("up_to_date", started["id"]),
        "b": ("up_to_date", started["id"]),
    }
    # an output changed by hand: b is stale again, at once
    (jp_root_dir / "b.txt").write_text("edited")
    _, edited, _ = await get_pipeline(jp_fetch)
    b = edited["tasks"][1]["status"]
    assert b["status"] == "stale" and "output changed since the last run: b.txt" in b["reasons"]


async def test_a_thousand_task_project_is_answered_whole(jp_root_dir, jp_fetch):
    (jp_root_dir / "nbflow.toml").write_text("")
    for i in range(1000):
        inputs = f'inputs = ["data/t{i - 1:03d}.txt"]\n' if i else ""
        write_notebook(jp_root_dir / "chain" / f"t{i:03d}.ipynb", f'{inputs}outputs = ["data/t{i:03d}.txt"]')
    status, first, etag = await get_pipeline(jp_fetch)
    assert status == 200, first
    assert len(first["tasks"]) == 1000 and len(first["edges"]) == 999
    assert first["tasks"][0]["name"] == "t000" and first["tasks"][-1]["name"] == "t999"
    assert {t["status"]["status"] for t in first["tasks"]} == {"never_run"}
    saved_a_while_ago(jp_root_dir)
    status, again, same = await get_pipeline(jp_fetch)
    assert status == 200 and again == first and same == etag
    status, _, _ = await get_pipeline(jp_fetch, etag)
    assert status == 304
