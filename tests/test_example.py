"""The example pipeline in notebooks/ (the daily transaction report), run end to end with `nbflow run`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """A copy of notebooks/ that has been run once with the defaults."""
    copy = tmp_path_factory.mktemp("example") / "notebooks"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("data", "reports", ".nbflow", ".ipynb_checkpoints"))
    result = run_cli("run", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    return copy


def last_run(project: Path) -> dict:
    return json.loads(run_cli("show", "latest", str(project), "--json").stdout)


def test_the_whole_pipeline_runs_and_writes_the_dated_report(example):
    report = example / "reports" / "transactions_2026-11-24_all.html"
    assert report.exists()
    html = report.read_text()
    assert "2026-11-24" in html and "<h1>" in html and "data:image/png;base64," in html
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM sales WHERE report_date = '2026-11-24'").fetchone()[0] > 100
    states = {t["name"]: t["state"] for t in last_run(example)["tasks"]}
    assert set(states.values()) == {"succeeded"} and len(states) == 8


def test_a_second_run_is_all_skipped(example):
    result = run_cli("run", str(example))
    assert result.returncode == 0
    assert {t["state"] for t in last_run(example)["tasks"]} == {"skipped"}


def test_another_report_date_reruns_what_depends_on_it(example):
    result = run_cli("run", str(example), "-p", "report_date", "2026-11-25", "-t", "daily_report")
    assert result.returncode == 0, result.stderr
    states = {t["name"]: t["state"] for t in last_run(example)["tasks"]}
    assert set(states.values()) == {"succeeded"}
    assert "2026-11-25" in (example / "reports" / "transactions_2026-11-25_all.html").read_text()
    # The warehouse holds both days, once each (the load is idempotent per date).
    with sqlite3.connect(example / "data" / "warehouse.sqlite") as db:
        days = db.execute("SELECT report_date, COUNT(*) FROM sales GROUP BY report_date").fetchall()
    assert [d for d, _ in days] == ["2026-11-24", "2026-11-25"]


def test_too_many_bad_rows_fail_the_quality_check_and_stop_the_load(example):
    result = run_cli("run", str(example), "-p", "error_rate", "0.5")
    assert result.returncode == 1
    states = {t["name"]: t for t in last_run(example)["tasks"]}
    assert states["quality_check"]["state"] == "failed"
    assert "above the threshold" in states["quality_check"]["error"]["evalue"]
    assert states["warehouse"]["state"] == states["daily_report"]["state"] == "upstream_failed"
    assert states["clean"]["state"] == "succeeded"
