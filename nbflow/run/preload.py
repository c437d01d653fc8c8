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
from nbflow.run.jobs import NO_PRELOAD, Preload

# Always there in a kernel, or nbflow's own business: nothing to gain
_SKIP = frozenset({"__future__", "nbflow", "IPython", "ipykernel"})


@functools.lru_cache(maxsize=4096)
def _imports_of_cell(source: str) -> frozenset[str]:
    if "import" not in source:  # every import statement says so: most cells need no parsing
        return frozenset()
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


def preload_plan(pipeline: Pipeline, selected: Iterable[str]) -> Preload:
    """What the fork server should import for these instances (in dependency order): their notebooks' imports,
    each in the order the run first needs it, after the project's `preload` list, which every kernel gets; stdlib
    modules the interpreter has already loaded left out. Nothing with `preload = false`."""
    setting = pipeline.project.preload
    if setting is False:
        return NO_PRELOAD
    everyone = [name for name in setting if _worth_preloading(name)] if isinstance(setting, list) else []
    order: dict[str, None] = dict.fromkeys(everyone)
    needs: dict[str, frozenset[str]] = {}
    for name in selected:
        spec = pipeline.specs[pipeline.tasks[name].base]
        notebook = str(spec.notebook)
        if notebook not in needs:
            own = sorted(module for module in imports_of(spec.code_cells) if _worth_preloading(module))
            order.update(dict.fromkeys(own))
            needs[notebook] = frozenset(everyone) | frozenset(own)
    return Preload(tuple(order), needs)


def _worth_preloading(name: str) -> bool:
    return name.split(".")[0] not in _SKIP and name not in sys.builtin_module_names
