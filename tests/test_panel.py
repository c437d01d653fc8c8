"""The ipywidgets panel, built in-process as a notebook builds it, on real runs (no browser)."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

import nbflow
from nbflow import palette, render
from nbflow.preflight import chromium
from nbflow.widgets import views
from nbflow.widgets.panel import LIVE, STATUS, Panel

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"
SVG = "{http://www.w3.org/2000/svg}"


def node_fills(svg: str) -> dict[str, str]:
    """Task name -> the fill of its box, for Graphviz's SVG and the built-in layout's alike."""
    root = ET.fromstring(svg[svg.index("<svg") :])
    fills = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            name = group.find(f"{SVG}title").text.split("\n")[0]
            shape = next(
                e
                for e in group.iter()
                if e.tag in (f"{SVG}path", f"{SVG}rect", f"{SVG}polygon")
                and e.get("fill") not in (None, "none", "transparent")
            )
            fills[name] = shape.get("fill").lower()
    return fills


def wait_for(condition, timeout: float = 120, what: str = "the panel to catch up") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """Graphviz's `dot` absent from PATH, as on a fresh machine."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not render.has_graphviz()


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, str]:
    """a -> b (fails) -> c, and d alone; run once for real. Returns the project and the run's id."""
    project = tmp_path_factory.mktemp("ran")
    (project / "nbflow.toml").write_text('[params]\nlabel = "x"\n')
    write_notebook(
        project / "a.ipynb",
        'outputs = ["a.txt"]\nlabel = "x"\nsize = 3\nratio = 0.5\nverbose = False',
        "open('a.txt', 'w').write(label * size)",
    )
    write_notebook(
        project / "b.ipynb",
        'inputs = ["a.txt"]\noutputs = ["b.txt"]',
        "text = open('a.txt').read()",
        "raise ValueError(f'no good: {text}')",
    )
    write_notebook(
        project / "c.ipynb", 'inputs = ["b.txt"]\noutputs = ["c.txt"]\nlimits = (1, 2)', "open('c.txt', 'w').write('c')"
    )
    write_notebook(project / "d.ipynb", 'outputs = ["d.txt"]', "open('d.txt', 'w').write('d')")
    run = nbflow.load(project).run(workers=2)
    assert {n: t.state for n, t in run.tasks.items()} == {
        "a": "succeeded",
        "d": "succeeded",
        "b": "failed",
        "c": "upstream_failed",
    }
    return project, run.id


@pytest.fixture
def example(tmp_path) -> Path:
    copy = tmp_path / "notebooks"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("data", "reports", ".nbflow", ".ipynb_checkpoints"))
    assert (copy / "panel.ipynb").exists()  # the notebook opening the panel: not a task
    return copy


def test_the_panel_builds_for_the_example_pipeline(example):
    panel = nbflow.panel(example)
    try:
        names = [
            *("fulfillment", "inventory", "returns", "sales", "clean", "quality_check", "warehouse", "daily_report"),
            "summary",
        ]
        assert isinstance(panel, Panel) and [v for _, v in panel.tasks_select.options] == names
        assert set(node_fills(panel.svg)) == set(names)
        assert set(panel.states.values()) == {"never_run"}
        assert set(node_fills(panel.svg).values()) == {palette.STYLES["never_run"].fill}
        for name in names:
            assert f"<title>{name}</title>" in panel.svg or f"<title>{name}\n" in panel.svg
        assert "sales.csv" in panel.svg  # edges are labelled with the files that link them
        assert [value for _, value in panel.history.options] == [LIVE, STATUS]
        fields = panel.form.fields
        assert set(fields) == {"report_date", "region", "seed", "error_rate", "max_error_rate", "warehouse"}
        assert (type(fields["report_date"]).__name__, fields["report_date"].value) == ("Text", "2026-11-24")
        assert (type(fields["seed"]).__name__, fields["seed"].value) == ("IntText", 42)
        assert (type(fields["error_rate"]).__name__, fields["error_rate"].value) == ("FloatText", 0.03)
        assert panel.form.changed() == {}
        fields["region"].value = "north"
        assert panel.form.changed() == {"region": "north"}
        panel.tasks_select.value = ("clean",)
        assert panel.run_button.description == "Run 1 selected + upstream"
        panel.focus.value = True  # the drawing narrows to clean, its upstream and downstream
        assert set(node_fills(panel.svg)) == set(names)
        panel.tasks_select.value = ("sales",)
        assert set(node_fills(panel.svg)) == {"sales", "clean", "quality_check", "warehouse", "daily_report", "summary"}
        assert "Status" in panel.table.value or "status" in panel.table.value
    finally:
        panel.close()
    assert not panel._thread.is_alive()


def test_the_svg_colours_every_task_by_its_state_after_a_real_run(ran):
    project, run_id = ran
    panel = Panel(project, follow=False)
    try:
        # Opened after the run: each task's status now.
        assert panel.states == {"a": "up_to_date", "d": "up_to_date", "b": "failed", "c": "never_run"}
        assert node_fills(panel.svg) == {n: palette.STYLES[s].fill for n, s in panel.states.items()}
        # The run chosen from the history: its states.
        assert run_id in [value for _, value in panel.history.options]
        panel.history.value = run_id
        expected = {"a": "succeeded", "b": "failed", "c": "upstream_failed", "d": "succeeded"}
        assert panel.states == expected
        assert node_fills(panel.svg) == {n: palette.STYLES[s].fill for n, s in expected.items()}
        assert "ValueError" in panel.table.value and "no good: xxx" in panel.table.value
        if render.has_graphviz():
            assert "Generated by graphviz" in panel.svg
            assert node_fills(render.draw_svg(panel.pipeline, expected, engine="grandalf")) == node_fills(panel.svg)
    finally:
        panel.close()


def test_without_dot_the_built_in_layout_draws_every_task(ran, no_dot):
    project, run_id = ran
    panel = Panel(project, follow=False)
    try:
        assert "the built-in layout" in panel.header.value
        assert "graphviz" not in panel.svg.lower()
        panel.show(run_id)
        assert node_fills(panel.svg) == {
            "a": palette.STYLES["succeeded"].fill,
            "b": palette.STYLES["failed"].fill,
            "c": palette.STYLES["upstream_failed"].fill,
            "d": palette.STYLES["succeeded"].fill,
        }
        assert "a.txt" in panel.svg and "b.txt" in panel.svg  # edge labels
    finally:
        panel.close()


def test_a_run_started_from_the_button_completes_and_the_panel_follows_it(project):
    write_notebook(
        project / "first.ipynb",
        'outputs = ["first.txt"]\nwho = "nobody"',
        "open('first.txt', 'w').write(f'hello {who}')",
    )
    write_notebook(
        project / "second.ipynb",
        'inputs = ["first.txt"]\noutputs = ["second.txt"]',
        "open('second.txt', 'w').write(open('first.txt').read().upper())",
    )
    write_notebook(project / "other.ipynb", 'outputs = ["other.txt"]', "open('other.txt', 'w').write('x')")
    panel = Panel(project, poll_interval=0.2)
    try:
        assert set(panel.states.values()) == {"never_run"}
        panel.tasks_select.value = ("second",)
        panel.form.fields["who"].value = "panel"
        panel.run_button.click()
        assert panel.handle is not None, panel.note.value
        assert "started" in panel.note.value
        # The kernel's thread is free while the run goes on: this test goes on too.
        seen = set()
        while panel.handle.wait(timeout=0.1) is None:
            seen.add(panel.states.get("first"))
        assert panel.handle.wait().state == "succeeded"
        wait_for(lambda: panel.states == {"first": "succeeded", "second": "succeeded", "other": "never_run"})
        assert seen & {"pending", "running", "succeeded"}
        assert (project / "second.txt").read_text() == "HELLO PANEL"
        assert panel.shown_run.id == panel.handle.id and panel.shown_run.trigger == "api"
        assert panel.handle.id in [value for _, value in panel.history.options]
        assert node_fills(panel.svg)["second"] == palette.STYLES["succeeded"].fill
        wait_for(lambda: panel.cancel_button.disabled, what="the cancel button to be disabled")
        # The executed notebook, rendered by nbconvert inside the panel.
        panel.outputs.task.value = "second"
        panel.outputs.button.click()
        assert (
            "<iframe" in panel.outputs.view.value
            and "upper" in panel.outputs.view.value
            and "second.txt" in panel.outputs.view.value
        )
        # Again, nothing changed: both skipped as up to date; with force, both run.
        panel.run_button.click()
        assert panel.handle.wait(timeout=300).state == "succeeded"
        wait_for(lambda: panel.states.get("second") == "skipped")
        panel.force.value = True
        panel.run_button.click()
        panel.handle.wait(timeout=300)
        wait_for(lambda: panel.states.get("second") == "succeeded" and panel.shown_run.id == panel.handle.id)
    finally:
        panel.close()


def test_runs_started_elsewhere_show_up_live(project):
    write_notebook(
        project / "slowish.ipynb", 'outputs = ["s.txt"]', "import time; time.sleep(3)", "open('s.txt', 'w').write('s')"
    )
    panel = Panel(project, poll_interval=0.2)
    try:
        seen = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(panel.states.get("slowish"))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        result = run_cli("run", str(project))
        assert result.returncode == 0, result.stdout + result.stderr
        # The run's state and the task states are published one after the other: wait for both.
        wait_for(
            lambda: (
                panel.shown_run is not None
                and panel.shown_run.state == "succeeded"
                and panel.states == {"slowish": "succeeded"}
            )
        )
        stop.set()
        watcher.join()
        assert panel.shown_run.trigger == "cli" and panel.states == {"slowish": "succeeded"}
        assert "running" in seen  # followed while it went on, not only at the end
    finally:
        panel.close()


def test_a_run_started_from_the_panel_can_be_cancelled(project):
    write_notebook(project / "sleepy.ipynb", 'outputs = ["z.txt"]', "import time; time.sleep(120)")
    panel = Panel(project, poll_interval=0.2)
    try:
        panel.run_button.click()
        wait_for(lambda: panel.states.get("sleepy") != "never_run", timeout=180)
        wait_for(lambda: panel.states.get("sleepy") != "pending", timeout=180)
        assert panel.states["sleepy"] == "running", panel.table.value
        assert not panel.cancel_button.disabled
        panel.cancel_button.click()
        assert panel.handle.wait(timeout=120).state == "cancelled"
        wait_for(lambda: panel.states.get("sleepy") == "cancelled")
    finally:
        panel.close()


def test_a_failed_task_shows_its_error_and_failing_cell(ran):
    project, run_id = ran
    panel = Panel(project, follow=False)
    try:
        panel.show(run_id)
        assert list(panel.outputs.task.options) == ["a", "b", "c", "d"]
        panel.show_output("c")  # it never ran: why
        assert "c upstream failed" in panel.outputs.view.value and "upstream task b failed" in panel.outputs.view.value
        assert "<iframe" not in panel.outputs.view.value
        panel.show_output("b")
        shown = panel.outputs.view.value
        assert "b failed" in shown and "ValueError" in shown and "no good: xxx" in shown
        assert "raise ValueError(f&#x27;no good: {text}&#x27;)" in shown  # the failing cell's code
        assert "<iframe" in shown and panel.tabs.selected_index == 3
    finally:
        panel.close()


def test_the_embedded_panel_holds_the_task_names(ran, tmp_path):
    from ipywidgets.embed import embed_minimal_html

    project, _ = ran
    panel = Panel(project, follow=False)
    try:
        page = tmp_path / "panel.html"
        embed_minimal_html(page, views=[panel], title="nbflow")
        text = page.read_text()
        for name in ("a", "b", "c", "d"):
            assert f"<title>{name}" in text or f"\\u003ctitle\\u003e{name}" in text
        assert "up to date" in text and "never run" in text
    finally:
        panel.close()


def test_problems_are_shown_not_raised(project):
    write_notebook(project / "x.ipynb", 'outputs = ["same.txt"]')
    write_notebook(project / "y.ipynb", 'outputs = ["same.txt"]')
    panel = Panel(project, follow=False)
    try:
        assert "same.txt" in panel.note.value and panel.run_button.disabled
        (project / "y.ipynb").unlink()
        panel.reload_button.click()
        assert panel.note.value == "" and [v for _, v in panel.tasks_select.options] == ["x"]
    finally:
        panel.close()


def test_a_run_that_cannot_start_says_why(project):
    write_notebook(
        project / "t.ipynb",
        'inputs = ["in.csv"]\noutputs = ["t.txt"]\noptions = {"n": 1}',
        "open('t.txt', 'w').write('t')",
    )
    (project / "in.csv").write_text("x\n")
    panel = Panel(project, follow=False)
    try:
        assert panel.form.fields["options"].value == "{'n': 1}"  # no widget for a dict: its repr, as text
        (project / "in.csv").unlink()  # gone between loading the panel and pressing run
        panel.run_button.click()
        assert "did not start" in panel.note.value and "in.csv" in panel.note.value and panel.handle is None
        panel.form.fields["options"].value = "{'n': "
        panel.run_button.click()
        assert "not a Python literal" in panel.note.value and panel.handle is None
        panel.form.fields["options"].value = "{'n': 2}"
        assert panel.form.changed() == {"options": {"n": 2}}
    finally:
        panel.close()


def test_a_run_that_begins_and_ends_between_two_looks_is_shown_with_the_statuses_it_changed(project):
    write_notebook(project / "quick.ipynb", 'outputs = ["q.txt"]', "open('q.txt', 'w').write('q')")
    write_notebook(project / "untouched.ipynb", 'outputs = ["u.txt"]', "open('u.txt', 'w').write('u')")
    panel = Panel(project, follow=False)
    try:
        assert panel.states == {"quick": "never_run", "untouched": "never_run"}
        run = nbflow.load(project).run(targets=["quick"])
        assert run.state == "succeeded"
        panel.refresh()
        assert panel.shown_run.id == run.id and panel.states == {"quick": "succeeded", "untouched": "never_run"}
        panel.show(STATUS)
        assert panel.states == {"quick": "up_to_date", "untouched": "never_run"}
        assert "up to date" in panel.table.value
    finally:
        panel.close()


def test_a_dot_that_fails_falls_back_to_the_built_in_layout(ran, tmp_path, monkeypatch):
    import os

    project, _ = ran
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\necho 'dot: broken install' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert render.has_graphviz()
    svg = render.draw_svg(nbflow.load(project), {"a": "succeeded"})
    assert "graphviz" not in svg.lower()
    assert node_fills(svg) == {
        "a": palette.STYLES["succeeded"].fill,
        "b": palette.UNKNOWN.fill,
        "c": palette.UNKNOWN.fill,
        "d": palette.UNKNOWN.fill,
    }


# The rules of ipywidgets 8 that size an HTML widget, in its VBox/HBox (jupyter-widgets' CSS): the widget is a flex
# row, and its content a flex item that grows to its widest line.
WIDGET_CSS = """
.out { width: 850px; overflow-x: auto; }
.w { box-sizing: border-box; margin: 2px; overflow: visible; }
.vbox { display: flex; flex-direction: column; box-sizing: border-box; margin: 0; }
.hbox { display: flex; flex-direction: row; box-sizing: border-box; margin: 0; }
.html { display: flex; flex-direction: row; align-items: baseline; }
.html > .content { align-self: stretch; flex-grow: 1; flex-shrink: 1; position: relative; }
"""
MEASURE = """<script>
const right = e => Math.round(e.getBoundingClientRect().right);
const out = document.getElementById('out');
const boxes = [...document.querySelectorAll('.nbflow-graph, .nbflow-table, .content')];
document.getElementById('result').textContent = JSON.stringify({
  out: [out.scrollWidth, out.clientWidth, right(out)], right: Math.max(...boxes.map(right)),
  graph: [document.querySelector('.nbflow-graph').scrollWidth, document.querySelector('.nbflow-graph').clientWidth]});
</script>"""


def widget(inner: str) -> str:
    """An HTML widget holding `inner`, as ipywidgets draws it."""
    return f'<div class="w html"><div class="content">{inner}</div></div>'


def test_long_names_errors_and_a_wide_graph_stay_inside_a_notebook_wide_panel(project, tmp_path):
    """At an output area 850 px wide, nothing of the graph, the tasks table or an error is cut off: what is wider
    scrolls inside its own box, long names and errors break (Chromium lays out the panel's HTML)."""
    browser = chromium()
    if browser is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    name = "clean_and_validate_the_inventory_snapshot_for_every_region_and_every_day_of_the_year"
    write_notebook(
        project / f"{name}.ipynb",
        'outputs = ["x.txt"]',
        "raise ValueError('/data/' + 'very_long_folder_name/' * 20 + 'inventory.csv is not there')",
    )
    for i in range(6):  # a drawing wider than the column
        write_notebook(project / f"wide_task_number_{i}.ipynb", f'outputs = ["w{i}.txt"]', "pass")
    run = nbflow.load(project).run()
    assert run.tasks[name].state == "failed"
    panel = Panel(project, follow=False)
    try:
        panel.show(run.id)  # the run's table, with the error
        panel.zoom.value = "150%"
        row = next(t for t in panel.shown_tasks if t.name == name)
        error = views.error_html(name, row.error, None)
        page = (
            f"<html><head><style>{WIDGET_CSS}</style></head><body><div class='out' id='out'>"
            "<div class='w vbox' style='width:100%'><div class='w hbox' style='width:100%'>"
            f"<div class='w vbox' style='flex:1 1 0%;min-width:0;overflow:hidden'>{widget(panel.graph.value)}</div>"
            "<div class='w vbox' style='width:240px;min-width:200px;margin:0 0 0 10px;overflow:hidden'></div></div>"
            f"<div class='w vbox'>{widget(panel.table.value)}{widget(error)}{widget(panel.note.value)}</div>"
            f"</div></div><pre id='result'></pre>{MEASURE}</body></html>"
        )
        (tmp_path / "panel.html").write_text(page)
        dumped = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", (tmp_path / "panel.html").as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        seen = json.loads(html.unescape(dumped.split('<pre id="result">')[1].split("</pre>")[0]))
        scroll_width, client_width, out_right = seen["out"]
        assert scroll_width <= client_width  # the output area has nothing to cut off or to scroll
        assert seen["right"] <= out_right  # every box ends inside it
        assert seen["graph"][0] > seen["graph"][1]  # the drawing, wider than its box, scrolls in it
    finally:
        panel.close()
