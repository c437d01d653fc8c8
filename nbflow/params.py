"""Parameter values: reading them from text, and filling `{name}` placeholders in paths.

Every interface turns text into values here, with one rule: text is read the way papermill's `-p NAME VALUE`
reads it (`parse_value`), so a notebook gets the same value from `nbflow run -p`, a schedule, the panel's forms and
papermill itself. `parse_assignments` reads the `NAME=VALUE` lines the schedule forms take, value by value with
that rule; `parse_literal` reads the Python literals (lists, dicts) no `-p` text can express. Placeholders use
`str.format` syntax.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Mapping
from typing import Any

from nbflow.errors import UsageError
from nbflow.masking import Secret

# NAME, or TASK.NAME for one task's parameter (as `-p` takes it); task names come from notebook file names.
_ASSIGNED_NAME = re.compile(r"(?:[^\s=.][^\s=]*\.)?[A-Za-z_][A-Za-z0-9_]*")


def parse_value(text: str) -> Any:
    """Read a value as papermill's `-p` does: `True`/`False`, `None`, an int, a float, else the text itself.

    papermill's own function lives in `papermill.cli`, whose import costs over a second; the tests check that
    both agree.
    """
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_assignments(text: str) -> dict[str, Any]:
    """`NAME=VALUE` lines (or `TASK.NAME=VALUE`) -> values read by `parse_value`, names and values stripped.

    Blank lines and lines starting with `#` are skipped; a later line for a name wins. A line that is no
    assignment raises UsageError naming its number.
    """
    values: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = (part.strip() for part in line.partition("="))
        if not sep or not _ASSIGNED_NAME.fullmatch(name):
            raise UsageError(
                f"parameters, line {number}: {line!r} is not NAME=VALUE; write one parameter a line, "
                "e.g. region=north or day={date}."
            )
        values[name] = parse_value(value)
    return values


def parse_literal(name: str, text: str) -> Any:
    """A Python literal (`[1, 2]`, `{'n': 1}`, `'text'`), for values `-p` text cannot hold; UsageError names
    the parameter when the text is none."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UsageError(f"parameter {name}: {text!r} is not a Python literal (write strings in quotes)") from None


_formatter = string.Formatter()


def placeholders(template: str) -> list[str]:
    """The parameter names a path template refers to, in order (`"a/{x}/{y:03d}.csv"` -> `["x", "y"]`)."""
    if "{" not in template:
        return []
    names = []
    for _, field, _, _ in _formatter.parse(template):
        if field is not None:
            names.append(field.split(".")[0].split("[")[0])
    return names


class PlaceholderError(ValueError):
    """A template names a parameter with no value, or is not valid `str.format` syntax."""


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Fill `{name}` placeholders from `values`; raise PlaceholderError naming what is missing."""
    if "{" not in template and "}" not in template:
        return template
    try:
        names = placeholders(template)
    except ValueError as exc:
        raise PlaceholderError(
            f"{template!r} is not a valid path template ({exc}); write a literal brace as '{{{{'"
        ) from exc
    missing = [n for n in names if n not in values]
    if missing:
        raise PlaceholderError(
            f"{template!r} uses {{{missing[0]}}}, which is no parameter of this task and not in [params] of "
            f"nbflow.toml; add `{missing[0]} = ...` to the parameters cell or to [params]"
        )
    secret = [n for n in names if isinstance(values[n], Secret)]
    if secret:
        raise PlaceholderError(
            f"{template!r} uses {{{secret[0]}}}, a secret ([secrets] in nbflow.toml); paths are shown and stored, "
            "so a secret's value cannot be part of one"
        )
    try:
        return template.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise PlaceholderError(f"{template!r} cannot be filled ({exc})") from exc
