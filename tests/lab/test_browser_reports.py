"""The Reports view in a real browser (the fixtures of test_browser.py): opened from the side panel, it lists the
latest report of each grid instance, shows the chosen one in a sandboxed frame with the versions earlier runs kept,
and follows a new run. Screenshots go to tests/artifacts/lab-reports*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notebook

import nbflow

from . import test_browser as browser
from .test_browser import ARTIFACTS, open_panel

pytestmark = browser.pytestmark
# the browser tests' fixtures, serving this module's pipeline_root
server_args, lab_server, page = browser.server_args, browser.lab_server, browser.page


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """A grid report over two regions, run twice before the server starts: all of it, then south alone."""
    root = tmp_path / "project"
    root.mkdir()
    write_notebook(
        root / "regional.ipynb",
        'region = "all"\nedition = "one"\ngrid = {"region": ["north", "south"]}\nreport = "reports/{region}.html"',
        "from IPython.display import HTML\nHTML(f'<h2 class=\"headline\">Sales of {region}, edition {edition}</h2>')",
    )
    write_notebook(root / "extract.ipynb", 'outputs = ["raw.txt"]', "open('raw.txt', 'w').write('raw')")
    first = nbflow.load(root).run()
    second = nbflow.load(root).run(targets=["regional[region=south]"], params={"edition": "two"})
    for run in (first, second):
        assert run.state == "succeeded", {name: task.state for name, task in run.tasks.items()}
    return root


def frame_text(page) -> str:
    frame = page.frame_locator("#nbflow-reports-view iframe.nbflow-Reports-frame")
    return frame.locator("h2.headline").inner_text()


def test_the_reports_view_lists_each_instance_and_shows_its_versions_sandboxed(page, lab_server, pipeline_root):
    ARTIFACTS.mkdir(exist_ok=True)
    open_panel(page, lab_server)
    page.locator("#nbflow-panel .nbflow-open-reports").click()
    view = page.locator("#nbflow-reports-view")
    view.locator(".nbflow-Reports-item").first.wait_for()

    items = view.locator(".nbflow-Reports-item")
    assert [items.nth(i).get_attribute("data-instance") for i in range(items.count())] == [
        "regional[region=north]",
        "regional[region=south]",
    ]
    assert view.locator(".nbflow-Reports-taskname").all_inner_texts() == ["regional"]  # extract writes none
    # the first is shown at once
    page.wait_for_function(
        "() => document.querySelector('#nbflow-reports-view .nbflow-Reports-title')?.textContent"
        " === 'regional[region=north]'"
    )
    assert frame_text(page) == "Sales of north, edition one"
    frame = view.locator("iframe.nbflow-Reports-frame")
    assert frame.get_attribute("sandbox") == "allow-scripts allow-popups"

    items.nth(1).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#nbflow-reports-view .nbflow-Reports-version option').length === 2"
    )
    assert frame_text(page) == "Sales of south, edition two"
    assert "edition = two" in view.locator(".nbflow-Reports-params").inner_text()
    page.screenshot(path=str(ARTIFACTS / "lab-reports.png"))

    # the earlier version, as its run kept it: the declared path holds the newer one
    options = view.locator(".nbflow-Reports-version option")
    assert "(latest)" in options.nth(0).inner_text() and "(latest)" not in options.nth(1).inner_text()
    view.locator(".nbflow-Reports-version").select_option(index=1)
    page.wait_for_function(
        "() => document.querySelector('#nbflow-reports-view .nbflow-Reports-meta')?.textContent"
        ".includes('an earlier version')"
    )
    assert frame_text(page) == "Sales of south, edition one"
    # the report's scripts run in an origin of their own: no cookies of the Jupyter server, no reach into the page
    seen = (
        page.frame_locator("#nbflow-reports-view iframe.nbflow-Reports-frame")
        .locator("body")
        .evaluate(
            """() => { let cookie, parent;
                   try { cookie = document.cookie; } catch (e) { cookie = 'blocked: ' + e.name; }
                   try { parent = window.parent.document.title; } catch (e) { parent = 'blocked: ' + e.name; }
                   return [cookie, parent]; }"""
        )
    )
    assert seen == ["blocked: SecurityError", "blocked: SecurityError"]

    # a new run's report shows after a refresh, north now with two versions
    run = nbflow.load(pipeline_root).run(targets=["regional[region=north]"], params={"edition": "three"})
    assert run.state == "succeeded"
    view.locator(".nbflow-reports-refresh").click()
    items.nth(0).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#nbflow-reports-view .nbflow-Reports-version option').length === 2"
        " && document.querySelector('#nbflow-reports-view .nbflow-Reports-title')?.textContent"
        " === 'regional[region=north]'"
    )
    assert frame_text(page) == "Sales of north, edition three"
    page.screenshot(path=str(ARTIFACTS / "lab-reports-new-run.png"))
    errors = [m for m in page.console_messages if m.startswith(("error", "pageerror")) and "nbflow" in m]
    assert not errors, errors
