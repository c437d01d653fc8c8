"""Grids in the JupyterLab side panel, in a real browser (the fixtures of test_browser.py): a grid task is one node
with its instances counted by state and a list of them; a run over a run grid, started from the panel's form, is a
partition of dates x tasks, live while it goes on. Screenshots go to tests/artifacts/lab-grid-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notebook

from . import test_browser as browser
from .test_browser import ARTIFACTS, GRAPH_GEOMETRY, TIMEOUT_MS, assert_drawn_readably, node_states, open_panel

pytestmark = browser.pytestmark
# the browser tests' fixtures, serving this module's pipeline_root
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page

REGIONS = ["north", "south", "east", "west"]
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """clean (per day) -> report (per day and region: a grid of four) -> summary (per day, every report by a glob)
    -> notify and archive. The clean of 11-02 fails (no rows that day), and so does the west report of 11-03."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "nbflow.toml").write_text("workers = 2\n")
    write_notebook(
        root / "clean.ipynb",
        'day = "2026-11-03"\ninputs = ["raw/{day}.csv"]\noutputs = ["clean/{day}.csv"]',
        "assert day != '2026-11-02', 'no rows on ' + day",
        "import os\nos.makedirs('clean', exist_ok=True)\nopen(outputs[0], 'w').write(open(inputs[0]).read().upper())",
    )
    write_notebook(
        root / "report.ipynb",
        f'day = "2026-11-03"\nregion = "all"\ngrid = {{"region": {REGIONS!r}}}\n'
        'inputs = ["clean/{day}.csv"]\noutputs = ["reports/{day}_{region}.txt"]',
        "import os, time\ntime.sleep(0.5)\nos.makedirs('reports', exist_ok=True)",
        "assert not (region == 'west' and day == '2026-11-03'), 'no data for ' + region",
        "open(outputs[0], 'w').write(region + ':' + open(inputs[0]).read())",
    )
    write_notebook(
        root / "summary.ipynb",
        'day = "2026-11-03"\ninputs = {"reports": "reports/{day}_*.txt"}\noutputs = ["summary/{day}.json"]',
        "import json, os\nos.makedirs('summary', exist_ok=True)\njson.dump(inputs['reports'], open(outputs[0], 'w'))",
    )
    for name, folder in (("notify", "notices"), ("archive", "archive")):
        write_notebook(
            root / f"{name}.ipynb",
            f'day = "2026-11-03"\ninputs = ["summary/{{day}}.json"]\noutputs = ["{folder}/{{day}}.txt"]',
            f"import os\nos.makedirs('{folder}', exist_ok=True)\nopen(outputs[0], 'w').write('sent')",
        )
    (root / "raw").mkdir()
    for day in DAYS:
        (root / "raw" / f"{day}.csv").write_text(f"rows of {day}\n")
    return root


# a task's node in the panel's graph, or its row where the graph is too wide for the panel and its tasks are listed
NODE_TEXT = """(task) => {
    const node = document.querySelector(`#nbflow-panel .nbflow-node[data-task="${task}"]`);
    const row = document.querySelector(`#nbflow-panel .nbflow-task-row[data-task="${task}"]`);
    const [detail, title] = node
        ? [node.querySelector('.nbflow-node-detail').textContent, node.querySelector('title').textContent]
        : [row.querySelector('.nbflow-task-detail').textContent, row.title];
    const shown = node ?? row;
    return { detail, title, state: shown.dataset.state, grouped: shown.dataset.grouped,
             instances: Number(shown.dataset.instances) };
}"""

PARTITION = """() => {
    const table = document.querySelector('#nbflow-panel .nbflow-partition-table');
    if (!table) { return null; }
    const tasks = [...table.querySelectorAll('thead .nbflow-partition-task')].map(th => th.textContent);
    const rows = [...table.querySelectorAll('tbody tr')].map(tr => ({
        value: tr.dataset.row,
        cells: [...tr.querySelectorAll('td')].map(td => ({ state: td.dataset.state, text: td.textContent,
                                                            instances: Number(td.dataset.instances) }))
    }));
    const scroll = table.closest('.nbflow-partition-scroll');
    return { tasks, rows, width: scroll.scrollWidth, shown: scroll.clientWidth };
}"""


def wait_for_runs(page, count: int) -> None:
    """Until the history has `count` runs and the newest has ended, and is the run the panel shows."""
    page.wait_for_function(
        """(count) => { const rows = document.querySelectorAll('#nbflow-panel .nbflow-history-row');
                        const state = rows[0]?.querySelector('.nbflow-badge').dataset.state;
                        return rows.length === count && state && state !== 'running'
                               && rows[0].classList.contains('nbflow-selected'); }""",
        arg=count,
        timeout=TIMEOUT_MS,
    )


def console_errors(page) -> list[str]:
    return [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]


def test_a_grid_task_is_one_node_with_its_instances_counted_and_listed(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_panel(page, lab_server)
    # one node per task, the grid's four instances in one; one edge between two tasks
    assert node_states(page) == {
        "clean": "never_run",
        "report": "never_run",
        "summary": "never_run",
        "notify": "never_run",
        "archive": "never_run",
    }
    assert page.locator("#nbflow-panel .nbflow-edge").count() == 4
    report = page.evaluate(NODE_TEXT, "report")
    assert (report["grouped"], report["instances"], report["detail"]) == ("true", 4, "4 never run")
    assert page.evaluate(NODE_TEXT, "clean")["grouped"] == "false"
    assert "5 task(s) (8 instances)" in page.locator("#nbflow-panel .nbflow-project").inner_text()
    assert_drawn_readably(page.evaluate(GRAPH_GEOMETRY))

    page.locator("#nbflow-panel .nbflow-run-all").click()
    wait_for_runs(page, 1)
    # the grid task takes the colour of its most urgent state; its counts are on it, in full in its tooltip
    assert node_states(page) == {
        "clean": "succeeded",
        "report": "failed",
        "summary": "upstream_failed",
        "notify": "upstream_failed",
        "archive": "upstream_failed",
    }
    report = page.evaluate(NODE_TEXT, "report")
    assert report["detail"] == "3 ok · 1 failed"
    assert "4 instances · 3 succeeded · 1 failed" in report["title"]
    geometry = page.evaluate(GRAPH_GEOMETRY)
    assert geometry["width"] <= geometry["shown"], geometry
    assert_drawn_readably(geometry)
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-node.png"))

    # clicking it lists its instances: each one's grid values, state, duration, error and actions
    page.locator('#nbflow-panel .nbflow-node[data-task="report"] .nbflow-node-name').click()
    listed = page.locator("#nbflow-panel .nbflow-instances-box .nbflow-instances[data-task='report']")
    listed.wait_for()
    rows = listed.locator("tr[data-instance]")
    assert {rows.nth(i).get_attribute("data-instance"): rows.nth(i).get_attribute("data-state") for i in range(4)} == {
        "report[region=east]": "succeeded",
        "report[region=north]": "succeeded",
        "report[region=south]": "succeeded",
        "report[region=west]": "failed",
    }
    assert listed.locator("thead").inner_text().split()[:2] == ["region", "state"]
    assert listed.locator("tr[data-instance='report[region=north]'] td").first.inner_text() == "north"
    assert "no data for west" in listed.locator(".nbflow-task-error").inner_text()
    assert listed.locator("tr[data-instance='report[region=west]'] .nbflow-open-executed").count() == 1
    assert (
        page.locator('#nbflow-panel .nbflow-node[data-task="report"]').get_attribute("class")
        == "nbflow-node nbflow-expanded"
    )
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-instances.png"))

    # an instance opens its own executed notebook
    listed.locator("tr[data-instance='report[region=north]'] .nbflow-open-executed").click()
    view = page.locator(".nbflow-Executed")
    view.wait_for()
    assert "report[region=north]" in page.locator(".nbflow-Executed-header").inner_text()

    # and runs with its upstream: that instance and clean, no other
    listed.locator("tr[data-instance='report[region=south]'] .nbflow-instance-run").click()
    wait_for_runs(page, 2)
    ran = page.locator("#nbflow-panel .nbflow-run .nbflow-tasks tr[data-task]")
    assert sorted(ran.nth(i).get_attribute("data-task") for i in range(ran.count())) == [
        "clean",
        "report[region=south]",
    ]
    # the other instances show their status again, the list still open and counted
    assert "skipped" in page.evaluate(NODE_TEXT, "report")["title"]
    assert listed.locator("tr[data-instance]").count() == 4

    listed.locator(".nbflow-instances-close").click()
    listed.wait_for(state="detached")
    assert not console_errors(page), console_errors(page)


def test_a_run_over_a_run_grid_shows_a_partition_of_dates_and_tasks(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_panel(page, lab_server)
    page.locator("#nbflow-panel details.nbflow-grid-section summary").click()
    name = page.locator("#nbflow-panel .nbflow-grid-name")
    values = page.locator("#nbflow-panel .nbflow-grid-values")

    # half a grid is refused in the panel; a range the server cannot read is said as it says it
    name.fill("day")
    page.locator("#nbflow-panel .nbflow-run-all").click()
    error = page.locator("#nbflow-panel .nbflow-error")
    error.wait_for(state="visible")
    assert "give both a name and its values" in error.inner_text()
    values.fill("2026-11-03..2026-11-01")
    page.locator("#nbflow-panel .nbflow-run-all").click()
    page.wait_for_function(
        """() => document.querySelector('#nbflow-panel .nbflow-error').innerText.includes('ends before it starts')"""
    )
    assert "day" in error.inner_text()
    assert page.locator("#nbflow-panel .nbflow-history-row").count() == 0

    values.fill("2026-11-01..2026-11-03")
    assert (
        "Run grid: day = 2026-11-01..2026-11-03"
        in page.locator("#nbflow-panel .nbflow-grid-section summary").inner_text()
    )
    page.locator("#nbflow-panel .nbflow-run-all").click()
    # live: a cell runs while the others wait their turn
    page.wait_for_function(
        """() => document.querySelector('#nbflow-panel .nbflow-cell[data-state="running"]') &&
                 document.querySelector('#nbflow-panel .nbflow-cell[data-state="pending"]')""",
        timeout=TIMEOUT_MS,
    )
    assert error.is_hidden()
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-partition-live.png"))
    wait_for_runs(page, 1)

    partition = page.evaluate(PARTITION)
    assert partition["tasks"][:3] == ["clean", "report", "summary"]
    assert sorted(partition["tasks"][3:]) == ["archive", "notify"]
    assert [row["value"] for row in partition["rows"]] == DAYS
    cells = {
        row["value"]: [(cell["state"], cell["text"], cell["instances"]) for cell in row["cells"]]
        for row in partition["rows"]
    }
    assert cells == {
        "2026-11-01": [("succeeded", "✓", 1), ("succeeded", "4/4", 4), *[("succeeded", "✓", 1)] * 3],
        "2026-11-02": [("failed", "✗", 1), ("upstream_failed", "0/4", 4), *[("upstream_failed", "↑", 1)] * 3],
        "2026-11-03": [("succeeded", "✓", 1), ("failed", "3/4", 4), *[("upstream_failed", "↑", 1)] * 3],
    }
    assert partition["width"] <= partition["shown"], "the partition does not fit the side panel"
    assert (
        "grid: day = 2026-11-01, 2026-11-02, 2026-11-03 (3)"
        in page.locator("#nbflow-panel .nbflow-run-grid").inner_text()
    )
    # the errors are listed under it; the graph counts each task's instances in this run
    assert "no rows on 2026-11-02" in page.locator("#nbflow-panel .nbflow-partition-errors").inner_text()
    assert page.evaluate(NODE_TEXT, "clean")["detail"] == "2 ok · 1 failed"
    assert page.evaluate(NODE_TEXT, "report")["detail"] == "7 ok · 1 failed · 4 upstream failed"
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-partition.png"))

    # a cell of several instances lists them, under the partition
    page.locator('#nbflow-panel .nbflow-cell[data-task="report"][data-row="2026-11-03"]').click()
    listed = page.locator("#nbflow-panel .nbflow-run .nbflow-instances[data-task='report']")
    listed.wait_for()
    assert "report for 2026-11-03" in listed.locator(".nbflow-instances-head").inner_text()
    listed_cell = '#nbflow-panel .nbflow-cell-listed[data-task="report"][data-row="2026-11-03"]'
    assert page.locator(listed_cell).count() == 1
    states = listed.locator("tr[data-instance]")
    assert sorted(states.nth(i).get_attribute("data-state") for i in range(states.count())) == [
        "failed",
        "succeeded",
        "succeeded",
        "succeeded",
    ]
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-partition-cell.png"))

    # widened, the panel writes the tasks' names across again
    assert page.locator("#nbflow-panel .nbflow-partition.nbflow-partition-narrow").count() == 1
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    page.locator("#nbflow-panel .nbflow-partition:not(.nbflow-partition-narrow)").wait_for()
    wide = page.evaluate(PARTITION)
    assert wide["width"] <= wide["shown"]
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-grid-partition-wide.png"))

    # a cell of one instance opens its executed notebook
    page.locator('#nbflow-panel .nbflow-cell[data-task="clean"][data-row="2026-11-01"]').click()
    page.locator(".nbflow-Executed").wait_for()
    assert "clean[day=2026-11-01]" in page.locator(".nbflow-Executed-header").inner_text()
    assert not console_errors(page), console_errors(page)
