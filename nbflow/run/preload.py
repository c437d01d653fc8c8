"""Which modules the fork server imports before it forks the run's kernels: those the selected notebooks import.

Found statically, from each code cell's `import` statements read with `ast`: the module each one names (`import
matplotlib.pyplot` and `from matplotlib.pyplot import plot` preload `matplotlib.pyplot`, which costs far more than
`matplotlib`; `from matplotlib import pyplot` preloads `matplotlib`, since the name may not be a module), plus the
`preload = [...]` list of `nbflow.toml`. Nothing is imported here: the fork server imports each one it can, in the
kernels' own Python, and says which it skipped and why (`nbflow.run.forkserver`). A cell that does not parse
(IPython magics, a syntax error) contributes the imports of its parsable lines only.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterable

from nbflow.graph import Pipeline

# Always there in a kernel, or nbflow's own business: nothing to gain
_SKIP = frozenset({"__future__", "nbflow", "IPython", "ipykernel"})


@functools.lru_cache(maxsize=4096)
def _imports_of_cell(source: str) -> frozenset[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        tree = _parsable_lines(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return frozenset(found)


def _parsable_lines(source: str) -> ast.Module:
    """The import lines of a cell that does not parse as a whole (`%matplotlib inline` above `import pandas`)."""
    body: list[ast.stmt] = []
    for line in source.splitlines():
        if line.lstrip().startswith(("import ", "from ")):
            try:
                body.extend(ast.parse(line.strip()).body)
            except SyntaxError:
                continue
    return ast.Module(body=body, type_ignores=[])


def imports_of(code_cells: Iterable[str]) -> set[str]:
    """The modules the cells import by name (at any depth of the code: in functions and `try` too)."""
    found: set[str] = set()
    for source in code_cells:
        found |= _imports_of_cell(source)
    return found


def modules_to_preload(pipeline: Pipeline, selected: Iterable[str]) -> list[str]:
    """What the fork server should import for these instances: their notebooks' imports and the project's
    `preload` list, stdlib modules the interpreter has already loaded left out; none with `preload = false`."""
    setting = pipeline.project.preload
    if setting is False:
        return []
    wanted: set[str] = set()
    for base in {pipeline.tasks[name].base for name in selected}:
        wanted |= imports_of(pipeline.specs[base].code_cells)
    if isinstance(setting, list):
        wanted.update(setting)
    return sorted(name for name in wanted if name.split(".")[0] not in _SKIP and name not in sys.builtin_module_names)
