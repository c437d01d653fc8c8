"""Instance names, `-t` selectors and `-g` values: what users type and read."""

from __future__ import annotations

import pytest

from nbflow.errors import UsageError
from nbflow.grids import MAX_INSTANCES, instance_name, notebook_file_name, parse_grid_values, parse_selector


def test_instance_names_list_values_in_the_grids_order():
    assert instance_name("daily_report", {}) == "daily_report"
    assert instance_name("daily_report", {"region": "north"}) == "daily_report[region=north]"
    assert instance_name("fit", {"n": 3, "mode": "fast", "on": True}) == "fit[n=3,mode=fast,on=True]"


def test_a_selector_matches_instances_by_any_subset_of_their_values():
    one = parse_selector("fit[mode=fast]")
    assert one.matches("fit", {"n": 3, "mode": "fast"}) and not one.matches("fit", {"n": 3, "mode": "slow"})
    assert parse_selector("fit[n=3]").matches("fit", {"n": 3, "mode": "x"})  # compared as names show values
    assert parse_selector("fit").matches("fit", {"n": 1}) and not parse_selector("fit").matches("fix", {})
    with pytest.raises(UsageError, match="'north' is not NAME=VALUE"):
        parse_selector("report[north]")


def test_executed_notebook_names_are_safe_and_one_per_name():
    assert notebook_file_name("report[region=north]") == "report[region=north].ipynb"
    assert notebook_file_name("rapport_été") == "rapport_été.ipynb"
    assert notebook_file_name("sub/report[path=a/b c]").startswith("sub__report[path=a__b c]~")
    assert notebook_file_name('t[q="x?"]').startswith("t[q=_x__]~")
    # names a changed character would make equal keep files of their own
    for one, other in [("x/b", "x__b"), ('t[q="x?"]', "t[q=_x__]"), ("a~b", "a_b")]:
        assert notebook_file_name(one) != notebook_file_name(other)
    changed = notebook_file_name("x/b")[: -len(".ipynb")]
    assert notebook_file_name(changed) != notebook_file_name("x/b")  # a name that looks like a changed one
    long_a, long_b = "t[x=" + "a" * 300 + "1]", "t[x=" + "a" * 300 + "2]"
    assert notebook_file_name(long_a) != notebook_file_name(long_b)
    assert len(notebook_file_name(long_a).encode()) <= 200


@pytest.mark.parametrize(
    "text, values",
    [
        ("north,south", ["north", "south"]),
        ("1, 2,3", [1, 2, 3]),
        ("2026-11-29..2026-12-02", ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]),
        ("2026-11-01..2026-11-30/7d", ["2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29"]),
        ("2026-11-01..2026-11-30/2w", ["2026-11-01", "2026-11-15", "2026-11-29"]),
        ("1..10/3", [1, 4, 7, 10]),
        ("2026-11-01", ["2026-11-01"]),
    ],
)
def test_grid_values_from_lists_and_ranges(text, values):
    assert parse_grid_values("x", text) == values


@pytest.mark.parametrize(
    "text, message",
    [
        ("2026-11-30..2026-11-01", "ends before it starts"),
        ("a..b", "no range nbflow reads"),
        ("1..5/2d", "no range nbflow reads"),
        ("north,north", "north given more than once"),
        (" , ", "no values given"),
        (f"1..{MAX_INSTANCES + 1}", "Split the range"),
    ],
)
def test_bad_grid_values_say_what_is_wrong(text, message):
    with pytest.raises(UsageError, match=message) as caught:
        parse_grid_values("report_date", text)
    assert str(caught.value).startswith("-g report_date:")
