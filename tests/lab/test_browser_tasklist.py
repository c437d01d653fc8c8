"""The side panel's compact list of tasks, in a real browser (the fixtures of test_browser.py): where the graph would
not fit the panel's width (four extracts side by side, as in the example pipeline), the panel lists the tasks,
upstream first, each on its row with its state, cell progress while it runs, and its buttons, and leaves the graph
to the pipeline view. Screenshots go to tests/artifacts/lab-task-list-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notebook

from . import test_browser as browser
from .test_browser import ARTIFACTS, TIMEOUT_MS, node_states, open_panel

pytestmark = browser.pytestmark
# the browser tests' fixtures, serving this module's pipeline_root
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page

SOURCES = ["orders", "customers", "returns", "fulfillment"]


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """Four extracts -> clean_everything (three slow cells) -> quality_check."""
    root = tmp_path / "project"
    root.mkdir()
    for source in SOURCES:
        write_notebook(
            root / f"extract_{source}.ipynb",
            f'outputs = ["data/{source}.txt"]',
            f"import os\nos.makedirs('data', exist_ok=True)\nopen('data/{source}.txt', 'w').write('{source}')",
        )
    write_notebook(
        root / "clean_everything.ipynb",
        f"inputs = {[f'data/{s}.txt' for s in SOURCES]!r}\noutputs = ['data/clean.txt']",
        "import time\ntime.sleep(1.5)",
        "time.sleep(1.5)",
        "open('data/clean.txt', 'w').write(' '.join(open(p).read() for p in inputs))",
    )
    write_notebook(
        root / "quality_check.ipynb",
        'inputs = ["data/clean.txt"]\noutputs = ["data/checked.txt"]',
        "open('data/checked.txt', 'w').write(open('data/clean.txt').read().upper())",
    )
    return root


LIST_GEOMETRY = """() => {
    const box = document.querySelector('#nbflow-panel .nbflow-graph-box');
    const rows = [...box.querySelectorAll('.nbflow-task-row')];
    return {
        tasks: rows.map(r => r.dataset.task),
        boxWidth: box.clientWidth, boxScroll: box.scrollWidth,
        rows: rows.map(r => {
            const name = r.querySelector('.nbflow-task-row-name');
            const buttons = r.querySelector('.nbflow-task-buttons').getBoundingClientRect();
            const text = name.getBoundingClientRect();
            return { task: r.dataset.task, lines: name.getClientRects().length, nameRight: text.right,
                     buttonsLeft: buttons.left, buttonsRight: buttons.right, rowRight: r.getBoundingClientRect().right,
                     overflow: r.scrollWidth > r.clientWidth };
        }),
    };
}"""


def test_a_graph_too_wide_for_the_panel_is_a_list_of_tasks_that_runs_and_shows_progress(
    page, lab_server, pipeline_root
):
    ARTIFACTS.mkdir(exist_ok=True)
    open_panel(page, lab_server)
    page.locator("#nbflow-panel .nbflow-task-list").wait_for()
    assert page.locator("#nbflow-panel svg.nbflow-graph").count() == 0
    geometry = page.evaluate(LIST_GEOMETRY)
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-task-list-never-run.png"))
    tasks = geometry["tasks"]
    assert sorted(tasks) == sorted([f"extract_{s}" for s in SOURCES] + ["clean_everything", "quality_check"])
    # upstream first
    assert max(tasks.index(f"extract_{s}") for s in SOURCES) < tasks.index("clean_everything")
    assert tasks.index("clean_everything") < tasks.index("quality_check")
    # nothing scrolls sideways or is cut off, no name breaks, no name runs into its buttons
    assert geometry["boxScroll"] <= geometry["boxWidth"], geometry
    for row in geometry["rows"]:
        assert row["lines"] == 1, f"the name of {row['task']} breaks"
        assert row["nameRight"] <= row["buttonsLeft"], f"the name of {row['task']} runs into its buttons"
        assert row["buttonsRight"] <= row["rowRight"] + 0.5 and not row["overflow"], row
    assert set(node_states(page).values()) == {"never_run"}

    # run all from the panel: the slow task shows which cell it is in, in its row, then everything succeeds
    page.locator("#nbflow-panel .nbflow-run-all").click()
    page.wait_for_function(
        """() => /cell [2-9]\\/\\d+/.test(document.querySelector(
                 '#nbflow-panel .nbflow-task-row[data-task="clean_everything"] .nbflow-task-detail')?.textContent)""",
        timeout=TIMEOUT_MS,
    )
    running = page.locator('#nbflow-panel .nbflow-task-row[data-task="clean_everything"]')
    assert running.get_attribute("data-state") == "running"
    assert running.locator(".nbflow-task-progress").count() == 1
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-task-list-running.png"))
    page.wait_for_function(
        """() => { const rows = [...document.querySelectorAll('#nbflow-panel .nbflow-task-row')];
                   return rows.length === 6 && rows.every(r => r.dataset.state === 'succeeded'); }""",
        timeout=TIMEOUT_MS,
    )
    page.locator("#nbflow-panel").screenshot(path=str(ARTIFACTS / "lab-task-list-succeeded.png"))
    assert (pipeline_root / "data" / "checked.txt").read_text() == "ORDERS CUSTOMERS RETURNS FULFILLMENT"

    # a row opens its executed notebook, and its name opens the notebook
    page.locator('#nbflow-panel .nbflow-task-row[data-task="quality_check"] .nbflow-task-output').click()
    page.locator(".nbflow-Executed").wait_for()
    page.locator('#nbflow-panel .nbflow-task-row[data-task="clean_everything"] .nbflow-task-row-name').click()
    page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[title*="clean_everything.ipynb"]').first.wait_for()

    # a row's run button runs that task (with its upstream: none), forced
    page.locator("#nbflow-panel .nbflow-force").check()
    page.locator('#nbflow-panel .nbflow-task-row[data-task="extract_orders"] .nbflow-task-run').click()
    page.wait_for_function(
        """() => { const rows = document.querySelectorAll('#nbflow-panel .nbflow-history-row');
                   return rows.length === 2 && rows[0].querySelector('.nbflow-badge').dataset.state === 'succeeded'
                          && rows[0].classList.contains('nbflow-selected');  // and the run shown is that one
               }""",
        timeout=TIMEOUT_MS,
    )
    rows = page.locator("#nbflow-panel .nbflow-tasks tr[data-task]")
    assert [rows.nth(i).get_attribute("data-task") for i in range(rows.count())] == ["extract_orders"]

    # the graph itself is in the pipeline view, one click away
    page.locator("#nbflow-panel .nbflow-graph-box .nbflow-open-view-large").click()
    page.locator(".nbflow-View svg.nbflow-graph .nbflow-node").first.wait_for()
    assert page.locator(".nbflow-View svg.nbflow-graph .nbflow-node").count() == 6

    nbflow_errors = [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]
    assert not nbflow_errors, nbflow_errors
