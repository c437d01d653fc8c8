"""The pipeline view (JupyterLab's main area) in a real browser, on a copy of the example pipeline (the fixtures of
test_browser.py): opened from the command palette, it runs the example, shows the running cell change while the
reports run and every node succeed without a reload (the server pushes each change), the timeline, a task's drawer
with a CSV preview and its report, and a failed run compared with the one before (the 1,000-task project is
test_browser_view_large.py). Screenshots (1400x900, the side panel at its default width) go to
tests/artifacts/lab-view-*.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from . import test_browser as browser
from .test_browser import ARTIFACTS, TIMEOUT_MS, open_panel

pytestmark = browser.pytestmark
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page

EXAMPLE = Path(__file__).resolve().parents[2] / "notebooks"
VIEW = "#nbflow-pipeline-view"

# What the page has drawn, gathered in the page: each node's state and second line, the boxes and the edge labels
GEOMETRY = """() => {
    const svg = document.querySelector('#nbflow-pipeline-view svg.nbflow-graph');
    const matrix = svg.getScreenCTM();
    const screen = el => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
    const nodes = [...svg.querySelectorAll('.nbflow-node')].map(node => ({
        task: node.dataset.task, state: node.dataset.state,
        detail: node.querySelector('.nbflow-node-detail').textContent,
        box: screen(node.querySelector('.nbflow-node-box')), name: screen(node.querySelector('.nbflow-node-name')),
    }));
    const labels = [...svg.querySelectorAll('.nbflow-edge-label')].map(l => ({
        text: l.querySelector('text').textContent, box: screen(l.querySelector('rect')) }));
    return { nodes, labels, scale: matrix.a, viewport: screen(svg.parentElement) };
}"""


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".nbflow", "data", "reports", "*.html"))
    # The example's report runs its cells faster than a fast machine pushes two looks at them: two cells that wait,
    # far apart, in the instance the test watches, so the running cell is seen to move wherever the test runs.
    report = root / "report" / "daily_report.ipynb"
    notebook = nbformat.read(report, as_version=4)
    for at in (len(notebook.cells) - 1, 4):
        wait = nbformat.v4.new_code_cell('import time\nif region == "all":\n    time.sleep(1.5)')
        wait.metadata["tags"] = ["remove-cell"]
        notebook.cells.insert(at, wait)
    nbformat.write(notebook, report)
    return root


def open_view(page, lab_server) -> None:
    """Open JupyterLab with the side panel shown at its default width, then the view from the command palette."""
    open_panel(page, lab_server)
    palette = page.locator(".lm-CommandPalette-input")
    # a page still busy drawing may drop the shortcut: pressed again until the palette shows
    for _ in range(12):
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            continue
    palette.wait_for()
    palette.fill("nbflow: Open Pipeline")
    # the command found is the palette's active item: Enter runs it (a click waits for the list to stop moving,
    # which a busy page may not let it do)
    page.locator('.lm-CommandPalette-item.lm-mod-active[data-command="nbflow:open-pipeline"]').wait_for()
    palette.press("Enter")
    page.locator(f"{VIEW} .nbflow-node").first.wait_for()


def states(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#nbflow-pipeline-view .nbflow-node')]
                 .map(n => [n.dataset.task, n.dataset.state]))"""
    )


def overlapping(boxes: list[dict]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a["x"] < b["x"] + b["w"] - 1
        and b["x"] < a["x"] + a["w"] - 1
        and a["y"] < b["y"] + b["h"] - 1
        and b["y"] < a["y"] + a["h"] - 1
    ]


def assert_readable(geometry: dict) -> None:
    """Nothing overlaps (boxes and edge labels), every name fits its box (whole, on one line)."""
    boxes = [n["box"] for n in geometry["nodes"]] + [label["box"] for label in geometry["labels"]]
    assert overlapping(boxes) == []
    for node in geometry["nodes"]:
        assert node["name"]["x"] + node["name"]["w"] <= node["box"]["x"] + node["box"]["w"], node["task"]
        assert node["name"]["h"] < 20, f"the name of {node['task']} wraps"


def test_the_view_runs_the_example_live_with_its_timeline_drawer_and_runs(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_view(page, lab_server)
    view = page.locator(VIEW)
    assert set(states(page).values()) == {"never_run"}
    assert len(states(page)) == 9  # 4 extracts, clean, quality_check, warehouse, daily_report (a grid), summary
    geometry = page.evaluate(GEOMETRY)
    assert "sales.csv" in {label["text"] for label in geometry["labels"]}  # edges say which file they stand for
    assert_readable(geometry)
    assert view.locator(".nbflow-live").inner_text() == "● live"
    page.screenshot(path=str(ARTIFACTS / "lab-view-graph.png"))

    # open the instance drawer of one report before the run, to watch its cells while it runs
    view.locator('.nbflow-node[data-task="daily_report"] .nbflow-node-box').click()
    view.locator('.nbflow-drawer tr[data-task="daily_report[region=all]"]').click()
    view.locator('.nbflow-drawer [data-task="daily_report[region=all]"] .nbflow-drawer-state').wait_for()
    page.evaluate(
        """() => { window.seenCells = new Set(); window.seenRunning = new Set();
                   new MutationObserver(() => {
                     for (const line of document.querySelectorAll('#nbflow-pipeline-view .nbflow-progress-line'))
                       window.seenCells.add(line.textContent.split(' · ')[0]);
                     const view = document.querySelector('#nbflow-pipeline-view');
                     for (const n of view.querySelectorAll('.nbflow-node[data-state=running]'))
                       window.seenRunning.add(n.dataset.task);
                   }).observe(document.body, { subtree: true, childList: true, characterData: true }); }"""
    )
    reloads = page.evaluate("() => performance.getEntriesByType('navigation').length")
    view.locator(".nbflow-run-all").click()
    page.wait_for_function(
        """() => [...document.querySelectorAll('#nbflow-pipeline-view .nbflow-node')]
                   .every(n => n.dataset.state === 'succeeded')""",
        timeout=TIMEOUT_MS,
    )
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == reloads
    cells = page.evaluate("() => [...window.seenCells]")
    assert len([c for c in cells if c.startswith("cell ")]) >= 2, cells  # the running cell moved, as it ran
    assert "daily_report" in page.evaluate("() => [...window.seenRunning]")
    view.locator(".nbflow-drawer .nbflow-open-report").wait_for()
    page.screenshot(path=str(ARTIFACTS / "lab-view-succeeded.png"))

    # the report the instance wrote opens in a tab of its own
    view.locator(".nbflow-drawer .nbflow-open-report").click()
    report = page.frame_locator(".nbflow-report-frame iframe")
    report.locator("body").get_by_text("all", exact=False).first.wait_for()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Pipeline").first.click()

    # the timeline: one bar per instance that ran, parallel ones side by side
    view.locator('.nbflow-tab[data-tab="timeline"]').click()
    bars = view.locator(".nbflow-timeline-bar")
    assert bars.count() == 13  # 4 extracts, clean, quality_check, warehouse, 5 reports, summary
    assert set(view.locator(".nbflow-timeline-bar").evaluate_all("bars => bars.map(b => b.dataset.state)")) == {
        "succeeded"
    }
    page.screenshot(path=str(ARTIFACTS / "lab-view-timeline.png"))

    # a task's drawer: its files with their size, and a table's first rows
    view.locator('.nbflow-tab[data-tab="graph"]').click()
    view.locator('.nbflow-node[data-task="sales"] .nbflow-node-box').click()
    drawer = view.locator('.nbflow-drawer [data-task="sales"]')
    drawer.locator(".nbflow-preview-button").first.click()
    table = drawer.locator(".nbflow-preview-table")
    table.wait_for()
    columns = table.locator("th").all_inner_texts()
    assert "order_id" in columns or len(columns) >= 3, columns
    assert table.locator("tbody tr").count() >= 10
    assert "KiB" in drawer.locator(".nbflow-file-what").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "lab-view-drawer.png"))

    # a failed run (quality_check refuses the day at a 1% threshold), compared with the run before
    view.locator("details.nbflow-view-params summary").click()
    view.locator('input[data-param="max_error_rate"]').fill("0.01")
    view.locator(".nbflow-force").check()
    view.locator(".nbflow-run-all").click()
    page.wait_for_function(
        """() => document.querySelector('#nbflow-pipeline-view .nbflow-node[data-task="quality_check"]')
                   ?.dataset.state === 'failed'""",
        timeout=TIMEOUT_MS,
    )
    view.locator('.nbflow-tab[data-tab="runs"]').click()
    rows = view.locator(".nbflow-runs-row")
    rows.first.wait_for()
    page.wait_for_function(
        """() => document.querySelector('#nbflow-pipeline-view .nbflow-runs-row .nbflow-badge')?.dataset.state
                   === 'failed'""",
        timeout=TIMEOUT_MS,
    )
    assert rows.count() == 2 and "max_error_rate=0.01" in rows.first.inner_text()
    view.locator(".nbflow-runs-filter").fill("0.01")
    page.wait_for_function("() => document.querySelectorAll('#nbflow-pipeline-view .nbflow-runs-row').length === 1")
    page.screenshot(path=str(ARTIFACTS / "lab-view-runs.png"))
    rows.first.click()
    failed = view.locator('.nbflow-run-page tr[data-task="quality_check"]')
    failed.wait_for()
    assert "failed" in failed.inner_text()
    assert view.locator(".nbflow-run-page .nbflow-rerun-failed").count() == 1
    failed.get_by_role("button", name="Compare").click()
    page.locator(".nbflow-Diff").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "lab-view-compare.png"))
