"""A grid task as the interfaces show it, after real runs: one node counting its instances by state, `status` and
`show` grouping them, the partition x task table of a backfill, the live table, and the panel running one
instance. The runs are made once for the module (trivial notebooks, real kernels)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook
from rich.console import Console

import nbflow
from nbflow import palette, render
from nbflow.progress import LiveProgress
from nbflow.widgets.panel import Panel

SVG = "{http://www.w3.org/2000/svg}"
REGIONS = ["north", "south", "east", "west", "all"]


def grid_project(root: Path) -> None:
    """clean (per day) -> report (a grid over five regions; west has no data on 2026-11-01) -> summary (reads every
    report of its day through a glob)."""
    (root / "nbflow.toml").write_text("")
    write_notebook(
        root / "clean.ipynb",
        'day = "2026-11-01"\noutputs = ["clean/{day}.csv"]',
        "import os; os.makedirs('clean', exist_ok=True); open(outputs[0], 'w').write(day)",
    )
    write_notebook(
        root / "report.ipynb",
        f'day = "2026-11-01"\nregion = "all"\ngrid = {{"region": {REGIONS!r}}}\n'
        'inputs = ["clean/{day}.csv"]\noutputs = ["reports/{day}_{region}.txt"]',
        "assert not (region == 'west' and day == '2026-11-01'), 'no data for west'",
        "import os; os.makedirs('reports', exist_ok=True); open(outputs[0], 'w').write(region)",
    )
    write_notebook(
        root / "summary.ipynb",
        'day = "2026-11-01"\ninputs = {"reports": "reports/{day}_*.txt"}\noutputs = ["summary/{day}.json"]',
        "import json, os; os.makedirs('summary', exist_ok=True); json.dump(inputs['reports'], open(outputs[0], 'w'))",
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The project after a run of every task (its live table kept) and a two-day backfill of summary."""
    root = tmp_path_factory.mktemp("grid")
    grid_project(root)
    live = LiveProgress()  # never started: its table is rendered by the test, as the terminal would show it
    first = nbflow.load(root).run(workers=2, on_event=live)
    assert first.state == "failed" and first.tasks["report[region=west]"].state == "failed"
    backfill = nbflow.load(root).run(targets=["summary"], grid={"day": ["2026-11-01", "2026-11-02"]}, workers=2)
    assert backfill.state == "failed" and len(backfill.tasks) == 2 * 7
    return root, first, backfill, live


def drawn_nodes(svg: str) -> dict[str, list[str]]:
    """Each node's name -> the lines written in its box, for Graphviz's SVG and the built-in one alike."""
    root = ET.fromstring(svg[svg.index("<svg") :])
    return {
        group.find(f"{SVG}title").text.split("\n")[0]: [t.text for t in group.iter(f"{SVG}text")]
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "node"
    }


def node_fill(svg: str, name: str) -> str:
    root = ET.fromstring(svg[svg.index("<svg") :])
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node" and group.find(f"{SVG}title").text.split("\n")[0] == name:
            return next(e.get("fill") for e in group.iter() if e.get("fill") not in (None, "none", "transparent"))
    raise AssertionError(f"no node {name}")


@pytest.mark.parametrize("engine", ["graphviz", "grandalf"])
def test_a_grid_task_is_one_node_counting_its_instances_by_state(ran, engine):
    root, first, _, _ = ran
    if engine == "graphviz" and not render.has_graphviz():
        pytest.skip("Graphviz's dot is not installed here")
    pipeline = nbflow.load(root)
    states = {name: task.state for name, task in first.tasks.items()}
    svg = render.draw_svg(pipeline, states, engine=engine)
    nodes = drawn_nodes(svg)
    assert set(nodes) == {"clean", "report", "summary"}  # not one node per region
    assert nodes["report"] == ["report", "5 instances (region)", "4 ok · 1 failed"]
    assert nodes["summary"] == ["summary", "upstream failed"]
    # the most urgent state colours the node: one failed instance makes the task red
    assert node_fill(svg, "report") == palette.STYLES["failed"].fill
    assert "failed: report[region=west]" in svg  # the tooltip names it


def test_a_backfill_is_drawn_with_its_instances_and_edges_collapsed_between_tasks(ran, monkeypatch, tmp_path):
    root, _, backfill, _ = ran
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot: the built-in drawing, its edges read back
    pipeline = nbflow.load(root).with_params(run_grid=backfill.grid)
    svg = render.draw_svg(pipeline, {name: task.state for name, task in backfill.tasks.items()})
    nodes = drawn_nodes(svg)
    assert nodes["report"] == ["report", "10 instances (day × region)", "9 ok · 1 failed"]
    assert nodes["clean"] == ["clean", "2 instances (day)", "2 ok"]
    assert nodes["summary"] == ["summary", "2 instances (day)", "1 ok · 1 upstream failed"]
    edges = {
        group.find(f"{SVG}title").text.split(":")[0]: [t.text for t in group.iter(f"{SVG}text")]
        for group in ET.fromstring(svg).iter(f"{SVG}g")
        if group.get("class") == "edge"
    }
    # one edge per pair of tasks, labelled with the path as declared where the instances read different files
    assert edges == {"clean -> report": ["{day}.csv"], "report -> summary": ["{day}_*.txt"]}


def test_graph_as_text_and_dot_groups_instances_and_json_lists_each(ran):
    root = ran[0]
    text = run_cli("graph", str(root))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].endswith("3 task(s), 7 instance(s), 10 edge(s)")
    at = lines.index("  report   report.ipynb   <- clean")
    assert lines[at + 1 : at + 6] == [f"    report[region={r}]" for r in REGIONS]  # as the grid lists them
    assert "  summary  summary.ipynb  <- report" in lines
    dot = run_cli("graph", str(root), "--format", "dot").stdout
    statements = {
        line.split(" [")[0].strip(): line for line in dot.splitlines() if " [label=" in line and "->" not in line
    }
    assert list(statements) == ["clean", "report", "summary"]  # one node per task, edges between tasks
    assert "peripheries=2" in statements["report"] and "5 instances (region)" in statements["report"]
    assert [line.strip().split(" [")[0] for line in dot.splitlines() if "->" in line and "[label" in line] == [
        "clean -> report",
        "report -> summary",
    ]
    shown = json.loads(run_cli("graph", str(root), "--format", "json").stdout)
    reports = [t for t in shown["tasks"] if t["task"] == "report"]
    assert sorted(t["grid"]["region"] for t in reports) == sorted(REGIONS)
    assert {e["from"] for e in shown["edges"] if e["to"] == "summary"} == {t["name"] for t in reports}


def test_many_instances_show_their_values_and_status_lists_only_those_not_up_to_date(project):
    write_notebook(
        project / "sweep.ipynb",
        f'n = 0\ngrid = {{"n": {list(range(1, 31))!r}}}\noutputs = ["out/{{n}}.txt"]',
        "pass",
    )
    text = run_cli("graph", str(project)).stdout.splitlines()
    assert text[-3:] == ["  sweep  sweep.ipynb", "    30 instances (n):", "      n: 1..30 (30)"]
    status = run_cli("status", str(project)).stdout.splitlines()
    assert " ".join(status[0].split()) == "sweep 30 instances: 30 never_run"
    assert [line.split()[0] for line in status[1:13]] == [f"sweep[n={i}]" for i in range(1, 13)]
    assert status[13] == "  ... and 18 more not up to date"


def test_status_groups_a_grid_tasks_instances(ran):
    result = run_cli("status", str(ran[0]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["clean", "up_to_date"]
    assert " ".join(lines[1].split()) == "report 5 instances: 4 up_to_date · 1 failed"
    instances = {line.split()[0]: line.split()[1] for line in lines[2:7]}
    assert all(line.startswith("  report[region=") for line in lines[2:7])
    assert instances == {f"report[region={r}]": "failed" if r == "west" else "up_to_date" for r in REGIONS}
    assert lines[7].startswith("summary ")


def test_runs_show_the_grid_and_show_has_the_partition_table(ran):
    root, first, backfill, _ = ran
    runs = run_cli("runs", str(root)).stdout.splitlines()
    [line] = [r for r in runs if r.startswith(backfill.id)]
    assert line.endswith("grid: day 2026-11-01,2026-11-02 (2)")
    assert "grid" not in next(r for r in runs if r.startswith(first.id))

    show = run_cli("show", backfill.id, str(root))
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    at = lines.index("grid: day 2026-11-01,2026-11-02 (2)")
    assert lines[at + 1 : at + 4] == [
        "  day         clean      report               summary",
        "  2026-11-01  skipped    4 skipped, 1 failed  upstream_failed",
        "  2026-11-02  succeeded  5 succeeded          succeeded",
    ]
    listed = [line.split()[0] for line in lines[at + 4 :] if line.startswith("    ") and line[4] != " "]
    assert listed == ["report[day=2026-11-01,region=west]", "summary[day=2026-11-01]"]  # only what needs a look
    assert "AssertionError" in show.stdout and "no data for west" in show.stdout
    assert lines[-1].startswith("12 of 14 instances succeeded or were up to date and are not listed")


def test_the_live_table_has_a_row_per_task_and_rows_for_failed_instances(ran):
    live = ran[3]
    out = io.StringIO()
    Console(file=out, width=110, color_system=None).print(live.__rich__())
    shown = out.getvalue()
    rows = [" ".join(line.split()) for line in shown.splitlines() if not line.startswith(" " * 30)]  # no folds
    assert rows[0] == "task state elapsed"
    assert rows[1].startswith("clean succeeded")
    assert rows[2] == "report (5) 4 succeeded · 1 failed"  # not a row per region
    assert rows[3].startswith("report[region=west] failed")
    assert rows[4].startswith("summary upstream_failed") and len(rows) == 5
    assert "no data for west" in " ".join(shown.split())


def test_the_panel_counts_instances_shows_the_partition_table_and_runs_one_instance(ran):
    root, _, backfill, _ = ran
    panel = Panel(root, poll_interval=0.2)
    try:
        nodes = drawn_nodes(panel.svg)  # status now
        assert nodes["report"] == ["report", "5 instances (region)", "4 ok · 1 failed"]
        assert ("report  (5 instances)", "report") in panel.tasks_select.options

        panel.show(backfill.id)  # the backfill from the history: its own instances, and values by tasks
        assert drawn_nodes(panel.svg)["report"][1:] == ["10 instances (day × region)", "9 ok · 1 failed"]
        table = panel.table.value
        assert table.index("2026-11-01") < table.index("4 ok · 1 failed") < table.index("2026-11-02")

        panel.show("live")
        panel.tasks_select.value = ("report",)  # opens its instances: choose one
        assert panel.chooser.instances_box.layout.display != "none"
        assert list(panel.chooser.instances.options) == [f"report[region={r}]" for r in REGIONS]
        panel.chooser.instances.value = ("report[region=north]",)
        assert panel.run_button.description == "Run 1 selected + upstream"
        panel.force.value = True
        panel.run_button.click()
        assert panel.handle is not None, panel.note.value
        run = panel.handle.wait(timeout=300)
        assert {name: str(t.state) for name, t in run.tasks.items()} == {
            "clean": "succeeded",
            "report[region=north]": "succeeded",
        }
        assert run.tasks["report[region=north]"].output_notebook.exists()
    finally:
        panel.close()
