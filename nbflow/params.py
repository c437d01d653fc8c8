"""Parameter values: reading them from text, and filling `{name}` placeholders in paths.

Every interface turns text into values here, with one rule: text is read the way papermill's `-p NAME VALUE`
reads it (`parse_value`), so a notebook gets the same value from `nbflow run -p`, a schedule, the panel's forms and
papermill itself. `parse_assignments` reads the `NAME=VALUE` lines the schedule forms take, value by value with
that rule; `parse_literal` reads the Python literals (lists, dicts) no `-p` text can express.

Placeholders look like `str.format`'s but are only names: `{region}`, or `{report_date:%Y%m}` (a date's strftime
format) and `{n:03d}` (a number's width and kind). Attributes, indexes and conversions (`{x.y}`, `{x[0]}`, `{x!r}`)
are refused, since templates come from notebooks, schedules and API callers and `str.format` would let them read
any attribute of a value; a width is bounded and so is what a template fills to.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections.abc import Iterable, Mapping
from datetime import date
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
_PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# a number's format: alignment, sign, zero padding, a width of up to three digits, grouping, precision, kind
_NUMBER_FORMAT = re.compile(r"(?:.?[<>^=])?[+\- ]?0?\d{0,3}[,_]?(?:\.\d{1,2})?[bdoxXeEfFgGn%]?\Z")
MAX_FORMAT = 64  # characters of a date's strftime format
MAX_FILLED = 4096  # characters a template may fill to: beyond it, a value or a format made it absurd


MAX_VALUE_CHARS = 64 * 1024  # a parameter value's size as JSON: the store and every listing of runs carry it


def oversized(values: Iterable[tuple[str, Any]], label: str = "parameter") -> list[str]:
    """The (name, value) pairs too big to pass as parameters (measured as the JSON the store keeps), each said in
    one line."""
    found = []
    for name, value in values:
        size = len(json.dumps(value, default=repr))
        if size > MAX_VALUE_CHARS:
            found.append(
                f"{label} `{name}`: its value is {size:,} characters, more than the {MAX_VALUE_CHARS:,} a parameter "
                "may hold; put the data in a file and pass its path."
            )
    return found


class PlaceholderError(ValueError):
    """A template names a parameter with no value, or is not a valid template."""


def _fields(template: str) -> list[tuple[str, str | None, str]]:
    """The template read into (literal text, placeholder name or None, format); PlaceholderError when it is not a
    template of names."""
    try:
        parsed = list(_formatter.parse(template))
    except ValueError as exc:  # an unbalanced brace
        raise PlaceholderError(
            f"{template!r} is not a valid template ({exc}); write a literal brace as '{{{{' or '}}}}'"
        ) from None
    fields: list[tuple[str, str | None, str]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            fields.append((literal, None, ""))
            continue
        if conversion:
            raise PlaceholderError(
                f"{template!r}: {{{field}!{conversion}}} converts the value; a placeholder is a name only: "
                f"write {{{field}}}"
            )
        if not _PLACEHOLDER_NAME.match(field):
            raise PlaceholderError(
                f"{template!r}: {{{field}}} is not a parameter name; a placeholder is a name only ({{region}}, "
                "{report_date:%Y%m}), with no attribute, index or expression"
            )
        if "{" in (spec or ""):
            raise PlaceholderError(f"{template!r}: {{{field}:{spec}}}: a format cannot hold a placeholder")
        fields.append((literal, field, spec or ""))
    return fields


def template_parts(template: str) -> list[tuple[str, str | None, str]]:
    """A template as (literal text, placeholder name or None, format) parts, for code that writes it in another
    template language; PlaceholderError when it is not a template of names."""
    return _fields(template)


def placeholders(template: str) -> list[str]:
    """The parameter names a template refers to, in order (`"a/{x}/{y:03d}.csv"` -> `["x", "y"]`);
    PlaceholderError when it is not a valid template."""
    if "{" not in template and "}" not in template:
        return []
    return [name for _, name, _ in _fields(template) if name is not None]


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Fill `{name}` placeholders from `values`; raise PlaceholderError naming what is missing or wrong."""
    if "{" not in template and "}" not in template:
        return template
    fields = _fields(template)
    names = [name for _, name, _ in fields if name is not None]
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
    parts = []
    size = 0
    for literal, name, spec in fields:
        text = _formatted(template, name, values[name], spec) if name is not None else ""
        parts += [literal, text]
        size += len(literal) + len(text)
        if size > MAX_FILLED:
            raise PlaceholderError(
                f"{template!r} fills to more than {MAX_FILLED:,} characters; a value or a format width is too big"
            )
    return "".join(parts)


def _formatted(template: str, name: str, value: Any, spec: str) -> str:
    """One placeholder's text: the value as text, or formatted by a date's strftime or a number's format."""
    if not spec:
        return str(value)
    if isinstance(value, date):
        if len(spec) > MAX_FORMAT:
            raise PlaceholderError(f"{template!r}: the format of {{{name}}} is longer than {MAX_FORMAT} characters")
        return format(value, spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _NUMBER_FORMAT.match(spec):
        try:
            return format(value, spec)
        except ValueError as exc:  # a kind that does not apply (`{n:x}` of a float)
            raise PlaceholderError(f"{template!r}: {{{name}:{spec}}} cannot format {value!r} ({exc})") from None
    raise PlaceholderError(
        f"{template!r}: {{{name}:{spec}}}: a format applies to a date (a strftime format such as %Y%m) or a number "
        f"(a width and kind such as 03d), and {name} is {value!r}"
    )
