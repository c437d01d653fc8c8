"""One notebook -> its TaskSpec: what its `parameters` cell declares, read statically.

Nothing in the notebook runs: the cell is parsed with `ast`, and `inputs`, `outputs`, `upstream`, `report` and
`grid` must be literals. `nbflow.declare.reading` turns the file (an `.ipynb`, or a jupytext text notebook) into
cells first.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.declare.reading import Unreadable, read_notebook
from nbflow.errors import Problem
from nbflow.grids import MAX_INSTANCES
from nbflow.params import PlaceholderError, placeholders
from nbflow.paths import is_glob

DECLARATIONS = ("inputs", "outputs", "upstream")
GRID = "grid"  # read from a task's cell only: one instance per value (it alone does not make a notebook a task)
# a declaration too, but a name notebooks often give a variable of their own: it makes a notebook a task only when it
# names an .html (or .pdf) file; a notebook assigning it anything else is left alone, unless declaring something else
REPORT = "report"
REPORT_SUFFIXES = (".html", ".htm", ".pdf")
PathsDeclared = dict[str, str] | list[str] | str

# Used only when the cell does not parse: a line that starts by assigning a declaration makes it a task.
_DECLARATION_LINE = re.compile(r"^\s*(inputs|outputs|upstream)\s*(:[^=]*)?=(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Param:
    """An ordinary parameter as the `parameters` cell assigns it."""

    name: str
    source: str  # the right-hand side as written
    value: Any  # the literal's value; None when `literal` is False
    literal: bool
    line: int


@dataclass(frozen=True)
class TaskSpec:
    """What one task notebook declares, before any placeholder is filled."""

    notebook: Path  # absolute
    inputs: PathsDeclared  # as declared: dict name -> path, list of paths, or one path ({} when not declared)
    outputs: PathsDeclared
    upstream: tuple[str, ...]
    params: dict[str, Param]
    kernel: str  # the kernelspec name to run it with
    language: str
    timeout: float | None = None
    retries: int | None = None
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # parameter name -> values, in the cell's order
    always_run: bool = False  # never skipped as up to date (state the file hashes cannot see)
    check: str | None = None  # a command (or `python:module:function`) whose output joins the fingerprint
    report: str | None = None  # the HTML file nbflow writes from the executed notebook after a success
    code_cells: tuple[str, ...] = field(default=(), repr=False)
    parameters_source: str = field(default="", repr=False)  # the `parameters` cell as written

    @property
    def written(self) -> list[str]:
        """The path templates of everything the task writes: its outputs, then its report."""
        return paths_of(self.outputs) + ([self.report] if self.report else [])


def paths_of(declared: PathsDeclared) -> list[str]:
    """The path templates in a declaration, whatever its shape."""
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, dict):
        return list(declared.values())
    return list(declared)


def map_paths(declared: PathsDeclared, convert: Callable[[str], str]) -> PathsDeclared:
    """The declaration with each path replaced by `convert(path)`, its shape kept (for injection)."""
    if isinstance(declared, str):
        return convert(declared)
    if isinstance(declared, dict):
        return {key: convert(path) for key, path in declared.items()}
    return [convert(path) for path in declared]


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _tags(cell: dict[str, Any]) -> list[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return tags if isinstance(tags, list) else []


def _kernel_and_language(metadata: dict[str, Any], default_kernel: str) -> tuple[str, str]:
    spec = metadata.get("kernelspec")
    spec = spec if isinstance(spec, dict) else {}
    info = metadata.get("language_info")
    info = info if isinstance(info, dict) else {}
    language = spec.get("language") or info.get("name") or "python"
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        name = default_kernel
    return name, str(language).lower()


def _parse_cell(source: str) -> ast.Module:
    """Parse the cell as Python, after IPython's own transforms when plain Python fails (magics, `!cmd`). Code
    nested deeper than Python's parser goes (it runs out of memory or stack) is a SyntaxError here too."""
    try:
        return ast.parse(source)
    except (MemoryError, RecursionError):
        raise SyntaxError("the code is nested too deeply for Python's parser") from None
    except SyntaxError as first:
        try:
            from IPython.core.inputtransformer2 import TransformerManager
        except ImportError:
            raise first from None
        transformed = TransformerManager().transform_cell(source)  # type: ignore[no-untyped-call]
        try:
            return ast.parse(transformed)
        except SyntaxError:
            raise first from None


def read_spec(path: Path, display: str, default_kernel: str = "python3") -> TaskSpec | None | Problem:
    """Read one notebook: its TaskSpec, None when it is not a task, or the Problem that makes it unusable.

    `display` is how messages name the notebook (its path relative to the project root); `default_kernel` runs it
    when the notebook names no kernelspec (text notebooks often do not).
    """
    try:
        nb = read_notebook(path)
    except Unreadable as exc:
        return Problem(
            "unreadable",
            f"{display}: {exc}. nbflow reads every notebook in the pipeline; fix the "
            "file, or move it out of the project (or narrow `notebooks` in nbflow.toml).",
        )

    cells = nb["cells"]
    index = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code" and "parameters" in _tags(c)), None)
    if index is None:
        return _untagged_declaration(cells, display, path.suffix)
    source = _source(cells[index])
    kernel, language = _kernel_and_language(nb["metadata"], default_kernel)
    where = f"{display}: parameters cell"

    if not language.startswith("python"):
        match = _DECLARATION_LINE.search(source)
        if match is None:
            return None
        return Problem(
            "declaration",
            f"{where}: `{match.group(1)}` is declared in a notebook whose kernel language is "
            f"{language!r}, but "
            "nbflow reads declarations as Python literals and runs Python tasks only; "
            "remove the declaration or port the notebook to Python.",
        )
    try:
        tree = _parse_cell(source)
    except SyntaxError as exc:
        if not _DECLARATION_LINE.search(source):
            return None  # not a task: left alone, however odd
        return Problem(
            "declaration",
            f"{where}{f', line {exc.lineno}' if exc.lineno else ''}: {exc.msg}. The parameters cell must be valid "
            "Python so nbflow can read `inputs`, `outputs` and `upstream` from it.",
        )

    lines = source.replace("\r\n", "\n").replace("\r", "\n").encode().split(b"\n")
    declared: dict[str, tuple[Any, int]] = {}
    grid: tuple[Any, int] | None = None
    report: tuple[Any, int] | None = None
    params: dict[str, Param] = {}
    problems: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value_node = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            name, value_node = stmt.target.id, stmt.value
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id in DECLARATIONS:
            problems.append(
                f"{where}, line {stmt.lineno}: `{stmt.target.id}` is changed with an augmented "
                "assignment; assign it once, as a literal."
            )
            continue
        else:
            continue
        text = _segment(lines, value_node) or ast.unparse(value_node)
        try:
            value, literal = ast.literal_eval(value_node), True
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value, literal = None, False
        if name == GRID:
            grid = (value if literal else _Expression(text), stmt.lineno)
            continue
        if name == REPORT:
            report = (value if literal else _Expression(text), stmt.lineno)
            continue
        if name in DECLARATIONS:
            if not literal:
                problems.append(
                    f"{where}, line {stmt.lineno}: `{name}` must be a Python literal (a dict, a list "
                    f"or a string) so nbflow can read it without running the notebook, but it is "
                    f"`{text}`. Write the paths out; use {{name}} placeholders for the parts that vary."
                )
                continue
            declared[name] = (value, stmt.lineno)
        else:
            params[name] = Param(name, text, value, literal, stmt.lineno)

    # `x = None` is ploomber's placeholder convention: it declares nothing, so such notebooks are not tasks.
    declared = {k: v for k, v in declared.items() if v[0] is not None}
    if not declared and not problems and not _names_a_report(report):
        return None

    inputs = _check_paths("inputs", declared.get("inputs"), where, problems)
    outputs = _check_paths("outputs", declared.get("outputs"), where, problems)
    upstream = _check_upstream(declared.get("upstream"), where, problems)
    report_template = _check_report(report, where, problems)
    grid_values = _check_grid(grid, params, paths_of(outputs), report_template, where, problems)
    options = _check_options(nb["metadata"].get("nbflow"), display, problems)
    if problems:
        return Problem("declaration", "\n    ".join(problems))
    code_cells = tuple(_source(c) for c in cells if c.get("cell_type") == "code")
    return TaskSpec(
        notebook=path,
        inputs=inputs,
        outputs=outputs,
        upstream=upstream,
        params=params,
        grid=grid_values,
        kernel=options.get("kernel", kernel),
        language=language,
        timeout=options.get("timeout"),
        retries=options.get("retries"),
        always_run=options.get("always_run", False),
        check=options.get("check"),
        report=report_template,
        code_cells=code_cells,
        parameters_source=source,
    )


def _untagged_declaration(cells: list[dict[str, Any]], display: str, suffix: str) -> Problem | None:
    """A notebook without a `parameters` cell is no task; but one whose first code cell assigns a declaration
    at top level was meant to be one, and its consumers would fail far from the cause: say so here."""
    first = next((c for c in cells if c.get("cell_type") == "code"), None)
    if first is None:
        return None
    try:
        tree = _parse_cell(_source(first))
    except SyntaxError:
        return None
    for stmt in tree.body:
        targets = (
            stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        )
        named = [t.id for t in targets if isinstance(t, ast.Name) and t.id in DECLARATIONS]
        if named:
            how = (
                'mark it `# %% tags=["parameters"]`'
                if suffix == ".py"
                else "in JupyterLab: select the cell, open the property inspector (gear icon) and add the tag"
            )
            return Problem(
                "untagged",
                f"{display}: its first code cell assigns `{named[0]}` (line {stmt.lineno}) but is not tagged "
                f"`parameters`, so the notebook is not a task. Tag that cell `parameters` ({how}), or rename the "
                "variable if the notebook is not meant to be a task.",
            )
    return None


def _segment(lines: list[bytes], node: ast.expr) -> str | None:
    """The source text of `node`, as ast.get_source_segment gives it, from lines split once per cell (the
    standard function splits the whole cell again at every call). Offsets are UTF-8 bytes, as ast counts them."""
    if node.end_lineno is None or node.end_col_offset is None:
        return None
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first][node.col_offset : node.end_col_offset].decode()
    parts = [lines[first][node.col_offset :], *lines[first + 1 : last], lines[last][: node.end_col_offset]]
    return b"\n".join(parts).decode()


def _check_paths(name: str, declared: tuple[Any, int] | None, where: str, problems: list[str]) -> PathsDeclared:
    if declared is None:
        return {}
    value, line = declared
    if isinstance(value, str):
        bad = [] if value else [value]
    elif isinstance(value, dict):
        bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str) or not v]
    elif isinstance(value, (list, tuple)):
        value = list(value)
        bad = [v for v in value if not isinstance(v, str) or not v]
    else:
        problems.append(
            f"{where}, line {line}: `{name}` must be a dict of name -> path, a list of paths or one "
            f"path string, not a {type(value).__name__}."
        )
        return {}
    if bad:
        problems.append(
            f"{where}, line {line}: every path in `{name}` must be a non-empty string (and every key "
            f"a string); {bad[0]!r} is not."
        )
    checked: PathsDeclared = value  # a str, a dict of str or a list of str: the checks above
    return checked


def _check_upstream(declared: tuple[Any, int] | None, where: str, problems: list[str]) -> tuple[str, ...]:
    if declared is None:
        return ()
    value, line = declared
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        problems.append(f"{where}, line {line}: `upstream` must be a task name or a list of task names.")
        return ()
    return tuple(names)


def _names_a_report(declared: tuple[Any, int] | None) -> bool:
    """`report` names an HTML or PDF file, as a literal or as an expression ending like one (an f-string, which is
    then reported as no literal)."""
    value = declared[0] if declared else None
    if not isinstance(value, str):
        return False
    text = value.rstrip("\"'") if isinstance(value, _Expression) else value
    return text.lower().endswith(REPORT_SUFFIXES)


def _check_report(declared: tuple[Any, int] | None, where: str, problems: list[str]) -> str | None:
    """`report`: one HTML or PDF file's path (placeholders allowed), which nbflow writes itself after a success."""
    if declared is None or declared[0] is None:
        return None
    value, line = declared
    at = f"{where}, line {line}: `report`"
    if isinstance(value, _Expression):
        problems.append(
            f"{at} must be a Python literal (a string) so nbflow can read it without running the notebook, but it "
            f"is `{value}`. Write the path out; use {{name}} placeholders for the parts that vary."
        )
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(
            f'{at} must be the path of an HTML file, e.g. "../reports/{{report_date}}.html", not {value!r}.'
        )
        return None
    if value.endswith("/") or is_glob(value):
        problems.append(f"{at} is {value!r}, a {'folder' if value.endswith('/') else 'glob'}; it must name one file.")
        return None
    if not value.lower().endswith(REPORT_SUFFIXES):
        problems.append(f"{at} is {value!r}; nbflow writes reports as HTML or PDF: end the path with .html or .pdf.")
        return None
    return value


class _Expression(str):
    """The source text of a `grid` that is no literal (reported only when the notebook is a task)."""


def _check_grid(
    declared: tuple[Any, int] | None,
    params: dict[str, Param],
    outputs: list[str],
    report: str | None,
    where: str,
    problems: list[str],
) -> dict[str, tuple[Any, ...]]:
    """`grid`: a dict of parameters the cell assigns -> non-empty lists of distinct values, whose names every
    output path and the report's path use (so two instances never write one file)."""
    if declared is None or declared[0] is None:
        return {}
    value, line = declared
    at = f"{where}, line {line}: `grid`"
    if isinstance(value, _Expression):
        problems.append(
            f"{at} must be a Python literal (a dict of parameter name -> list of values) so nbflow can read it "
            f"without running the notebook, but it is `{value}`. Write the values out."
        )
        return {}
    if not isinstance(value, dict) or not value:
        problems.append(f'{at} must be a dict of parameter name -> list of values, e.g. {{"region": ["north"]}}.')
        return {}
    grid: dict[str, tuple[Any, ...]] = {}
    for name, values in value.items():
        if not isinstance(name, str) or name not in params:
            known = ", ".join(f"`{p}`" for p in params) or "none"
            problems.append(
                f"{at} names {name!r}, which the cell does not assign (its parameters: {known}); a grid varies "
                "parameters of the notebook: assign it with its default value above the grid."
            )
            continue
        if not isinstance(values, (list, tuple)) or not values:
            problems.append(f"{at}: the values of {name!r} must be a non-empty list, not {values!r}.")
            continue
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            problems.append(f"{at}: {name!r} lists {repeated[0]!r} more than once; list each value once.")
            continue
        grid[name] = tuple(values)
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_INSTANCES:
        problems.append(f"{at} makes {size:,} instances; at most {MAX_INSTANCES:,} are allowed. Make it smaller.")
    written = [("output", path) for path in outputs] + ([("report", report)] if report else [])
    for what, path in written if grid else []:
        try:
            used = set(placeholders(path))
        except (ValueError, PlaceholderError):
            continue  # the graph reports the template itself
        missing = [name for name in grid if name not in used]
        if missing:
            problems.append(
                f"{at}: the {what} {path!r} does not use {{{missing[0]}}}, so every instance would write the same "
                f"file; put {{{missing[0]}}} in the path (every output and the report must use every name of the "
                "grid)."
            )
    return grid


def _check_options(options: Any, display: str, problems: list[str]) -> dict[str, Any]:
    """Validate `metadata.nbflow`: timeout, retries, kernel, always_run, check."""
    if options is None:
        return {}
    where = f"{display}: metadata.nbflow"
    known = ", ".join(_OPTIONS)
    if not isinstance(options, dict):
        problems.append(f"{where} must be an object with some of {known}.")
        return {}
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in _OPTIONS:
            problems.append(f"{where}: unknown key `{key}` (known: {known}).")
            continue
        valid, expected = _OPTIONS[key]
        if valid(value):
            checked[key] = float(value) if key == "timeout" else value
        else:
            problems.append(f"{where}.{key} must be {expected}, not {value!r}.")
    return checked


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "timeout": (lambda v: _number(v) and v > 0, "a positive number of seconds"),
    "retries": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
    "kernel": (lambda v: isinstance(v, str) and bool(v), "a kernelspec name"),
    "always_run": (lambda v: isinstance(v, bool), "true or false"),
    "check": (
        lambda v: isinstance(v, str) and bool(v.strip()),
        "a command whose output says what changed (or python:module:function)",
    ),
}
