"""The example pipeline in notebooks/ (the daily transaction report), run end to end with `nbflow run`: a report per
region (a grid), their summary (a glob fan-in), and a backfill over days (a run grid)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"
REGIONS = ["north", "south", "east", "west", "all"]
REPORTS = [f"daily_report[region={region}]" for region in REGIONS]
UPSTREAM = ["sales", "inventory", "fulfillment", "returns", "clean", "quality_check", "warehouse"]
KEY_FIGURES = re.compile(r'<script type="application/json" id="key-figures">(.*?)</script>', re.DOTALL)


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """A copy of notebooks/ that has been run once with the defaults."""
    copy = tmp_path_factory.mktemp("example") / "notebooks"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("data", "reports", ".nbflow", ".ipynb_checkpoints"))
    result = run_cli("run", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    return copy


def last_run(project: Path) -> dict[str, dict]:
    """The latest run's tasks by name."""
    shown = json.loads(run_cli("show", "latest", str(project), "--json").stdout)
    return {task["name"]: task for task in shown["tasks"]}


def states(project: Path) -> dict[str, str]:
    return {name: task["state"] for name, task in last_run(project).items()}


def key_figures(report: Path) -> dict:
    return json.loads(KEY_FIGURES.search(report.read_text()).group(1))


def test_the_whole_pipeline_runs_a_report_per_region_and_their_summary(example):
    assert states(example) == {name: "succeeded" for name in [*UPSTREAM, *REPORTS, "summary"]}
    for region in REGIONS:
        page = (example / "reports" / f"transactions_2026-11-24_{region}.html").read_text()
        assert f"<h1>Daily transactions, 2026-11-24, region: {region}</h1>" in page
        assert "data:image/png;base64," in page
    summary = (example / "reports" / "summary_2026-11-24.html").read_text()
    for region in REGIONS:
        assert f'<a href="transactions_2026-11-24_{region}.html">{region}</a>' in summary
    assert "The four regions add up to all regions." in summary
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM sales WHERE report_date = '2026-11-24'").fetchone()[0] > 100


def test_each_region_report_counts_only_its_region_and_the_regions_add_up(example):
    figures = {
        region: key_figures(example / "reports" / f"transactions_2026-11-24_{region}.html") for region in REGIONS
    }
    whole = figures.pop("all")
    assert all(0 < part["orders"] < whole["orders"] for part in figures.values())
    assert sum(part["orders"] for part in figures.values()) == whole["orders"]
    assert sum(part["revenue"] for part in figures.values()) == pytest.approx(whole["revenue"])
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        north = db.execute(
            "SELECT COUNT(DISTINCT order_id) FROM sales WHERE report_date = '2026-11-24' AND region = 'north'"
        ).fetchone()[0]
    assert figures["north"]["orders"] == north


def test_the_graph_has_five_report_instances_and_the_summary_reads_them_all(example):
    result = run_cli("graph", str(example), "--format", "json")
    assert result.returncode == 0, result.stderr
    graph = json.loads(result.stdout)
    names = {task["name"] for task in graph["tasks"]}
    assert set(REPORTS) <= names and "daily_report" not in names
    into_summary = {edge["from"]: edge["via"] for edge in graph["edges"] if edge["to"] == "summary"}
    assert into_summary == {report: ["reports/transactions_2026-11-24_*.html"] for report in REPORTS}
    assert {edge["from"] for edge in graph["edges"] if edge["to"] in REPORTS} == {"warehouse"}


def test_a_second_run_is_all_skipped(example):
    result = run_cli("run", str(example))
    assert result.returncode == 0
    assert set(states(example).values()) == {"skipped"}


def test_a_backfill_builds_the_new_day_skips_the_day_already_built_and_reruns_nothing(example):
    backfill = ["run", str(example), "-g", "report_date", "2026-11-24..2026-11-25", "-j", "2"]
    result = run_cli(*backfill)
    assert result.returncode == 0, result.stdout + result.stderr
    by_day: dict[str, set[str]] = {}
    for name, state in states(example).items():
        day = re.search(r"report_date=([\d-]+)", name).group(1)
        by_day.setdefault(day, set()).add(state)
    assert by_day == {"2026-11-24": {"skipped"}, "2026-11-25": {"succeeded"}}
    assert len(states(example)) == 2 * len([*UPSTREAM, *REPORTS, "summary"])
    assert "The four regions add up to all regions." in (example / "reports" / "summary_2026-11-25.html").read_text()
    # The warehouse holds both days, once each: each day's load replaces only its own rows.
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        days = db.execute("SELECT report_date, COUNT(*) FROM sales GROUP BY report_date").fetchall()
    assert [day for day, _ in days] == ["2026-11-24", "2026-11-25"]

    again = run_cli(*backfill)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(states(example).values()) == {"skipped"}


def test_too_many_bad_rows_fail_the_quality_check_and_stop_the_load_and_the_reports(example):
    result = run_cli("run", str(example), "-p", "error_rate", "0.5")
    assert result.returncode == 1
    tasks = last_run(example)
    assert tasks["quality_check"]["state"] == "failed"
    assert "above the threshold" in tasks["quality_check"]["error"]["evalue"]
    assert {tasks[name]["state"] for name in ["warehouse", *REPORTS, "summary"]} == {"upstream_failed"}
    assert tasks["clean"]["state"] == "succeeded"
