"""Parameter values: reading them from the command line, and filling `{name}` placeholders in paths.

Values given as text (`-p NAME VALUE`, schedule parameters) are read the way papermill's `-p` reads them, so a
notebook gets the same value from nbflow as from papermill. Placeholders use `str.format` syntax.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any


def parse_value(text: str) -> Any:
    """Read a command-line value as papermill's `-p` does: bool, None, int, float, else the string itself.

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
    try:
        return template.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise PlaceholderError(f"{template!r} cannot be filled ({exc})") from exc
