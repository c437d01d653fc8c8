"""A task's run compared with its previous run in JupyterLab, in a real browser (the fixtures of test_browser.py):
two runs with a changed parameter and code line, the run detail's "diff" opens the side by side of what changed. The
screenshot goes to tests/artifacts/lab-diff.png.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_notebook

from . import test_browser as browser
from .test_browser import ARTIFACTS, open_panel

pytestmark = browser.pytestmark
# the browser tests' fixtures, serving this module's pipeline_root
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page


def sales(root: Path, shown: str) -> None:
    """sales prints its region's total (as `shown` says) and writes it."""
    write_notebook(
        root / "sales.ipynb",
        'region = "north"\noutputs = ["sales.txt"]',
        f"total = {{'north': 120, 'south': 75}}[region]\nprint({shown})",
        "open('sales.txt', 'w').write(str(total))\ntotal * 2",
    )


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """sales, and other, which never changes."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "nbflow.toml").write_text("")
    sales(root, "'sales of', region, total")
    write_notebook(root / "other.ipynb", 'outputs = ["other.txt"]', "open('other.txt', 'w').write('same')")
    return root


def nbflow_run(root: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "nbflow", "run", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_task_run_is_compared_with_its_previous_run(page, lab_server, pipeline_root):
    nbflow_run(pipeline_root)
    sales(pipeline_root, "'sales of', region, '=', total")  # a line of code changed, and the region
    nbflow_run(pipeline_root, "-p", "region", "south")
    open_panel(page, lab_server)
    row = page.locator('#nbflow-panel .nbflow-tasks tr[data-task="sales"]')
    row.wait_for()
    # other was up to date in the latest run: nothing of its own to compare
    assert page.locator('#nbflow-panel tr[data-task="other"] .nbflow-compare-previous').count() == 0
    fits = "() => { const p = document.querySelector('#nbflow-panel'); return p.scrollWidth <= p.clientWidth; }"
    assert page.evaluate(fits), "the run table is wider than the side panel"
    row.locator(".nbflow-compare-previous").click()

    view = page.locator(".nbflow-Diff")
    view.wait_for()
    assert [r.inner_text().split("\t") for r in view.locator(".nbflow-diff-params tbody tr").all()] == [
        ["region", "north", "south"]
    ]
    cells = view.locator(".nbflow-diff-cell")
    assert [c.get_attribute("data-cell") for c in cells.all()] == ["1", "2"]  # the injected cell is no code change
    # the changed line marked on each side
    assert cells.nth(0).locator(".nbflow-diff-removed").all_inner_texts() == ["print('sales of', region, total)"]
    assert cells.nth(0).locator(".nbflow-diff-added").all_inner_texts() == ["print('sales of', region, '=', total)"]
    printed = cells.nth(0).locator(".nbflow-diff-output")
    assert "output stdout changed" in printed.inner_text()
    assert printed.locator(".nbflow-diff-output-before").inner_text().strip() == "sales of north 120"
    assert printed.locator(".nbflow-diff-output-after").inner_text().strip() == "sales of south = 75"
    result = cells.nth(1).locator(".nbflow-diff-output")
    assert result.locator(".nbflow-diff-output-before").inner_text() == "240"
    assert result.locator(".nbflow-diff-output-after").inner_text() == "150"
    assert cells.nth(1).locator(".nbflow-diff-removed, .nbflow-diff-added").count() == 0  # its code is the same
    assert view.locator('.nbflow-diff-task[data-task="other"]').count() == 0
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").inner_text()
    assert tab.startswith("sales: ")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab-diff.png"))

    nbflow_errors = [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]
    assert not nbflow_errors, nbflow_errors
