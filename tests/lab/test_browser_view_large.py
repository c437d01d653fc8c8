"""The pipeline view on a 1,000-task project in a real browser (the fixtures of test_browser.py): it opens with
every node drawn, zooms at the pointer, and a node's drawer opens. Screenshot: tests/artifacts/lab-view-1000.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from . import test_browser as browser
from .test_browser import ARTIFACTS
from .test_browser_view import VIEW, open_view

pytestmark = browser.pytestmark
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """1,000 notebooks in folders of 50, each reading up to three files earlier ones write (bench/pipelines.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from pipelines import large

    return large(tmp_path / "project", 1000)


def test_a_thousand_task_project_opens_zooms_and_selects(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_view(page, lab_server)
    page.wait_for_function(f"() => document.querySelectorAll('{VIEW} .nbflow-node').length === 1000")
    viewport = page.locator(f"{VIEW} .nbflow-graph-viewport")
    fitted = float(viewport.get_attribute("data-scale"))
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -800)
    page.wait_for_function(
        f"() => Number(document.querySelector('{VIEW} .nbflow-graph-viewport').dataset.scale) > {fitted * 1.5}"
    )
    page.locator(f"{VIEW} .nbflow-graph-tools button", has_text="Fit").click()
    scale = f"Number(document.querySelector('{VIEW} .nbflow-graph-viewport').dataset.scale)"
    page.wait_for_function(f"() => Math.abs({scale} - {fitted}) < 1e-3")
    node = page.locator(f"{VIEW} .nbflow-node").nth(500)
    task = node.get_attribute("data-task")
    node.locator(".nbflow-node-box").dispatch_event("click")
    page.locator(f'{VIEW} .nbflow-drawer [data-task="{task}"] .nbflow-drawer-state').wait_for()
    page.screenshot(path=str(ARTIFACTS / "lab-view-1000.png"))
