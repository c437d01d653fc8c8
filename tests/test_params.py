"""Parameter text read into values: one rule (papermill's `-p`) for the command line and the panels' forms."""

from __future__ import annotations

import pytest

from nbflow.errors import UsageError
from nbflow.params import parse_assignments, parse_literal, parse_value


def test_values_are_read_as_papermills_p_reads_them():
    assert [parse_value(t) for t in ("True", "False", "None")] == [True, False, None]
    assert [parse_value(t) for t in ("3", "-3", " 4", "0")] == [3, -3, 4, 0]
    assert all(type(parse_value(t)) is int for t in ("3", "-3", " 4"))
    assert [parse_value(t) for t in ("1.5", "1e3", "-0.25")] == [1.5, 1000.0, -0.25]
    assert type(parse_value("1e3")) is float
    # anything else stays text, as written: lower-case booleans, dates, placeholders, an empty value
    for text in ("true", "none", "north", "2026-11-24", "{date}", "reports/{date:%Y%m%d}.html", "", "0x10"):
        assert parse_value(text) == text


def test_assignment_lines_are_read_value_by_value_with_the_same_rule():
    text = "# the fire day\na=1\nb = 2.5\nc=True\nd=None\ne=north\nf={date}\ng=\n\n  # a note\nload.n=7\n"
    assert parse_assignments(text) == {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": None,
        "e": "north",
        "f": "{date}",
        "g": "",
        "load.n": 7,
    }
    assert parse_assignments("url=http://x/?q=1&r=2") == {"url": "http://x/?q=1&r=2"}  # the first `=` splits
    assert parse_assignments("n=1\nn=2") == {"n": 2}  # the last line for a name wins
    assert parse_assignments("") == {} and parse_assignments("\n# nothing\n") == {}


@pytest.mark.parametrize(
    "text, line",
    [
        ("a=1\n=2", 2),
        ("region north", 1),
        ("a=1\n\nmy day=2", 3),
        ("1st=2", 1),
        ("a-b=2", 1),
        ("load.=2", 1),
    ],
)
def test_a_line_that_is_no_assignment_is_refused_by_its_number(text, line):
    with pytest.raises(UsageError, match=rf"parameters, line {line}: .* is not NAME=VALUE"):
        parse_assignments(text)


def test_python_literals_are_read_where_p_text_cannot_hold_the_value():
    assert parse_literal("options", "{'n': 2}") == {"n": 2}
    assert parse_literal("days", "[1, 2]") == [1, 2]
    assert parse_literal("label", "'north'") == "north"
    for text in ("{'n': ", "north", "today()"):
        with pytest.raises(UsageError, match="parameter when: .* is not a Python literal"):
            parse_literal("when", text)
