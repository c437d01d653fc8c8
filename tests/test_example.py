"""The example pipeline in notebooks/ (the daily transaction report), run end to end with `nbflow run`: a report per
region (a grid) written by nbflow from the executed notebook, their summary (a glob fan-in of the reports' key
figures), and a backfill over days (a run grid). The reports are read as a reader would: the figures shown, not
the notebook's variables."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"
REGIONS = ["north", "south", "east", "west", "all"]
REPORTS = [f"daily_report[region={region}]" for region in REGIONS]
UPSTREAM = ["sales", "inventory", "fulfillment", "returns", "clean", "quality_check", "warehouse"]


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


def key_figures(project: Path, region: str, day: str = "2026-11-24") -> dict:
    """What daily_report wrote for the summary."""
    return json.loads((project / "data" / "figures" / f"{day}_{region}.json").read_text())


def report(project: Path, region: str, day: str = "2026-11-24") -> BeautifulSoup:
    return BeautifulSoup((project / "reports" / f"transactions_{day}_{region}.html").read_text(), "html.parser")


def headline(page: BeautifulSoup) -> dict[str, tuple[str, str]]:
    """The headline figures as shown: label -> (value, change against the previous day)."""
    return {
        tile.select_one(".label").get_text(): (
            tile.select_one(".value").get_text(),
            tile.select_one(".change").get_text(),
        )
        for tile in page.select(".report-figure")
    }


def section_table(page: BeautifulSoup, heading: str) -> dict[str, dict[str, str]]:
    """The table under a heading, as shown: first column -> {column: cell text}."""
    title = next(h for h in page.find_all("h2") if h.get_text().startswith(heading))
    table = title.find_next("table")
    columns = [th.get_text() for th in table.select("thead th")]
    rows = [[cell.get_text() for cell in tr.find_all(["th", "td"])] for tr in table.select("tbody tr")]
    return {row[0]: dict(zip(columns[1:], row[1:])) for row in rows}


def dollars(amount: float) -> str:
    return f"${amount:,.2f}"


def test_the_whole_pipeline_runs_a_report_per_region_and_their_summary(example):
    assert states(example) == {name: "succeeded" for name in [*UPSTREAM, *REPORTS, "summary"]}
    # nbflow wrote the reports (declared `report`), in this run, where the README says
    listed = json.loads(run_cli("reports", str(example), "--json").stdout)
    run_id = json.loads(run_cli("show", "latest", str(example), "--json").stdout)["id"]
    assert {(r["name"], r["path"], r["run_id"], r["exists"]) for r in listed} == {
        *(
            (f"daily_report[region={region}]", f"reports/transactions_2026-11-24_{region}.html", run_id, True)
            for region in REGIONS
        ),
        ("summary", "reports/summary_2026-11-24.html", run_id, True),
    }
    for region in REGIONS:
        page = report(example, region)
        assert page.h1.get_text() == "Daily transactions: Tuesday 24 November 2026"
        assert (
            page.select_one(".report-subtitle")
            .get_text()
            .startswith("All regions" if region == "all" else f"Region {region.capitalize()}")
        )
        assert page.find("img", src=re.compile("^data:image/png;base64,")) is not None  # the chart, inline
        # no code: neither an input area nor the setup the notebook runs
        assert page.select(".jp-InputArea-editor") == [] and "def fill" not in str(page) and "import " not in page.text
    summary = BeautifulSoup((example / "reports" / "summary_2026-11-24.html").read_text(), "html.parser")
    links = {a.get_text(): a["href"] for a in summary.select("table a")}
    assert links == {
        "All regions" if region == "all" else region.capitalize(): f"transactions_2026-11-24_{region}.html"
        for region in REGIONS
    }
    assert "The four regions add up to all regions." in summary.text
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM sales WHERE report_date = '2026-11-24'").fetchone()[0] > 100


def test_a_report_shows_its_figures_in_dollars_and_says_the_previous_day_is_missing(example):
    figures = key_figures(example, "north")
    shown = headline(report(example, "north"))
    assert list(shown) == ["Revenue", "Orders", "Average order value", "Units sold", "Returns rate (units)"]
    assert shown["Revenue"][0] == dollars(figures["revenue"]) and re.fullmatch(
        r"\$\d{1,3}(,\d{3})+\.\d\d", shown["Revenue"][0]
    )
    assert shown["Orders"][0] == f"{figures['orders']:,}"
    assert shown["Average order value"][0] == dollars(figures["revenue"] / figures["orders"])
    # the fixture ran one day only: there is nothing to compare with, and the report says so
    assert {change for _, change in shown.values()} == {"no data for the previous day"}
    assert figures["previous"] is None
    top = section_table(report(example, "north"), "Top 10 products")
    assert len(top) == 10 and all(row["revenue"].startswith("$") for row in top.values())


def test_the_data_quality_section_shows_the_rows_dropped_and_why_as_in_quality_json(example):
    quality = json.loads((example / "data" / "clean" / "2026-11-24" / "quality.json").read_text())
    page = report(example, "all")
    table = section_table(page, "Data quality")
    assert list(table) == [*(name.capitalize() for name in quality["sources"]), "All sources"]
    for name, source in quality["sources"].items():
        row = table[name.capitalize()]
        assert (row["rows read"], row["rows dropped"]) == (f"{source['rows']:,}", f"{source['dropped']:,}")
        assert {reason: row[reason] for reason in source["reasons"]} == {
            reason: f"{count:,}" for reason, count in source["reasons"].items()
        }
    assert (table["All sources"]["rows read"], table["All sources"]["rows dropped"]) == (
        f"{quality['rows']:,}",
        f"{quality['dropped']:,}",
    )
    assert f"dropped {quality['dropped']:,} of {quality['rows']:,} rows" in page.text
    assert "within the 10% threshold" in page.text


def test_the_footer_says_when_the_report_was_made_and_with_which_parameters(example):
    footer = report(example, "west").select_one(".report-footer").get_text()
    assert re.match(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d ", footer)
    for shown in ["report_date = '2026-11-24'", "region = 'west'", "max_error_rate = 0.1"]:
        assert shown in footer


def test_each_region_report_counts_only_its_region_and_the_regions_add_up(example):
    figures = {region: key_figures(example, region) for region in REGIONS}
    whole = figures.pop("all")
    assert all(0 < part["orders"] < whole["orders"] for part in figures.values())
    assert sum(part["orders"] for part in figures.values()) == whole["orders"]
    assert sum(part["revenue"] for part in figures.values()) == pytest.approx(whole["revenue"])
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        north = db.execute(
            "SELECT COUNT(DISTINCT order_id) FROM sales WHERE report_date = '2026-11-24' AND region = 'north'"
        ).fetchone()[0]
    assert figures["north"]["orders"] == north
    # the summary shows the figures the reports wrote
    summary = BeautifulSoup((example / "reports" / "summary_2026-11-24.html").read_text(), "html.parser")
    revenue = {tr.find("a").get_text(): tr.find_all("td")[1].get_text() for tr in summary.select("tbody tr")}
    assert revenue["North"] == dollars(figures["north"]["revenue"])
    assert revenue["All regions"] == dollars(whole["revenue"])


def test_the_graph_has_five_report_instances_and_the_summary_reads_them_all(example):
    result = run_cli("graph", str(example), "--format", "json")
    assert result.returncode == 0, result.stderr
    graph = json.loads(result.stdout)
    names = {task["name"] for task in graph["tasks"]}
    assert set(REPORTS) <= names and "daily_report" not in names
    into_summary = {edge["from"]: edge["via"] for edge in graph["edges"] if edge["to"] == "summary"}
    assert into_summary == {report: ["data/figures/2026-11-24_*.json"] for report in REPORTS}
    # the day's load, and the clean step's quality.json for the data-quality section
    assert {edge["from"] for edge in graph["edges"] if edge["to"] in REPORTS} == {"warehouse", "clean"}


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
    # the new day's report compares with the day before, which is in the warehouse now
    before, now = key_figures(example, "all"), key_figures(example, "all", "2026-11-25")
    revenue, change = headline(report(example, "all", "2026-11-25"))["Revenue"]
    assert revenue == dollars(now["revenue"])
    assert change.endswith(f"{now['revenue'] / before['revenue'] - 1:+.1%} vs {dollars(before['revenue'])}")
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
