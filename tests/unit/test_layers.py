"""nbflow's layers hold: imports point down, the interfaces do not import one another, no modules form a cycle.

The imports are read from the source with `ast`, so an import inside a function counts as much as one at the top
of a module (a function-level import does not hide a dependency, it only delays it), and so does one under
`if TYPE_CHECKING:` (a type is a dependency too). Each module belongs to the
layer of the longest name prefix it has in LAYERS; a module none of them covers is a failure, so a new module
has to be placed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "nbflow"

# lowest first; a module may import its own layer and the ones below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "vocabulary",
        (
            "nbflow.errors",
            "nbflow.models",
            "nbflow.params",
            "nbflow.grids",
            "nbflow.times",
            "nbflow.processes",
            "nbflow.paths",
            "nbflow.masking",
            "nbflow.version",
        ),
    ),
    ("store", ("nbflow.store",)),
    ("declarations", ("nbflow.declare", "nbflow.notify_settings", "nbflow.project")),
    (
        "graph",
        (
            "nbflow.graph",
            "nbflow.fingerprint",
            "nbflow.external",
            "nbflow.preflight",
            "nbflow.render",
            "nbflow.palette",
            "nbflow.layout",
        ),
    ),
    # `nbflow import ploomber`: reads a Ploomber project and writes declarations, with the graph layer's checks
    ("adopt", ("nbflow.adopt",)),
    ("run", ("nbflow.run",)),
    ("schedules", ("nbflow.schedule", "nbflow.notify", "nbflow.scheduler")),
    ("history", ("nbflow.history", "nbflow.shapes", "nbflow.diff", "nbflow.metrics")),
    # `nbflow export airflow`: the graph and a schedule written as another orchestrator's workflow (text only)
    ("export", ("nbflow.export",)),
    (
        "interfaces",
        ("nbflow.api", "nbflow.cli", "nbflow.progress", "nbflow.widgets", "nbflow.server", "nbflow", "nbflow.__main__"),
    ),
]
ROOT = "nbflow"  # the package itself: its own name, not a prefix of every module
# the interfaces users meet; each may import nbflow.api (which imports none of them), never one another
APPS = ("nbflow.cli", "nbflow.widgets", "nbflow.server")
SHARED_INTERFACE = "nbflow.api"
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


@dataclass(frozen=True)
class Import:
    importer: str  # module names
    imported: str
    file: str  # the importer's file, relative to the package's parent folder
    line: int
    in_function: bool  # run when the function is called, not when the module is imported

    def __str__(self) -> str:
        where = " (in a function)" if self.in_function else ""
        return f"{self.file}:{self.line}{where}: {self.importer} imports {self.imported}"


@dataclass
class Modules:
    """A package's modules (name -> file) and every import among them."""

    files: dict[str, Path]
    imports: list[Import]
    packages: set[str]  # modules that are a package's __init__
    top: Path  # the folder holding the package

    def shown(self, module: str) -> str:
        return self.files[module].relative_to(self.top).as_posix()


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(package_dir: Path) -> Modules:
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    packages = {name for name, path in files.items() if path.name == "__init__.py"}
    imports = []
    for importer, path in files.items():
        finder = _ImportFinder(importer, importer in packages, files, package_dir.name)
        finder.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        where = path.relative_to(package_dir.parent).as_posix()
        imports += [Import(importer, name, where, line, in_function) for name, line, in_function in finder.found]
    return Modules(files, imports, packages, package_dir.parent)


class _ImportFinder(ast.NodeVisitor):
    """The package's modules one module imports: (module, line, inside a function), in the order written."""

    def __init__(self, module: str, is_package: bool, files: dict[str, Path], package_name: str):
        # relative imports start from the module's own package: itself when it is a package's __init__
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.files, self.package_name = files, package_name
        self.depth = 0
        self.found: list[tuple[str, int, bool]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        self._add([alias.name for alias in node.names], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = ".".join(self.package[: len(self.package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # `from P import x` imports the module P.x where there is one, else a name defined in P
        self._add([f"{base}.{a.name}" if f"{base}.{a.name}" in self.files else base for a in node.names], node.lineno)

    def _add(self, names: list[str], line: int) -> None:
        for name in dict.fromkeys(names):
            if name == self.package_name or name.startswith(self.package_name + "."):
                self.found.append((name, line, self.depth > 0))


def owner(module: str) -> tuple[str, str] | None:
    """(layer, prefix) of a module: the longest prefix in LAYERS it falls under; None for a module not placed."""
    best: tuple[str, str] | None = None
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            covers = module == prefix or (prefix != ROOT and module.startswith(prefix + "."))
            if covers and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best


def unplaced_modules(modules: Modules) -> list[str]:
    unplaced = []
    for name in modules.files:
        if owner(name) is None:
            unplaced.append(
                f"{modules.shown(name)}: {name} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
            )
    for imp in modules.imports:
        if owner(imp.imported) is None and imp.imported not in modules.files:
            unplaced.append(f"{imp}, which is no module of the package and belongs to no layer")
    return unplaced


def upward_imports(modules: Modules) -> list[str]:
    found = []
    for imp in modules.imports:
        here, there = owner(imp.importer), owner(imp.imported)
        if here and there and RANK[there[0]] > RANK[here[0]]:
            found.append(f"{imp}: {here[0]} imports from {there[0]}, a higher layer")
    return found


def interface_imports(modules: Modules) -> list[str]:
    found = []
    for imp in modules.imports:
        here, there = owner(imp.importer), owner(imp.imported)
        if not (here and there) or here[1] == there[1]:
            continue
        if here[1] in APPS and there[1] in APPS:
            found.append(
                f"{imp}: {here[1]} and {there[1]} never import each other (both may import {SHARED_INTERFACE})"
            )
        elif here[1] == SHARED_INTERFACE and there[0] == "interfaces":
            found.append(f"{imp}: {SHARED_INTERFACE} is what the interfaces share, so it imports none of them")
    return found


def import_cycles(modules: Modules) -> list[str]:
    graph = nx.DiGraph()
    lines: dict[tuple[str, str], Import] = {}
    for imp in modules.imports:
        # a package's __init__ importing its own modules at its top, to offer their names, makes no cycle
        reexport = (
            imp.importer in modules.packages and imp.imported.startswith(imp.importer + ".") and not imp.in_function
        )
        if imp.importer != imp.imported and not reexport:
            graph.add_edge(imp.importer, imp.imported)
            lines.setdefault((imp.importer, imp.imported), imp)
    found = []
    for component in sorted(nx.strongly_connected_components(graph), key=min):
        if len(component) > 1:
            cycle = nx.find_cycle(graph.subgraph(component), source=min(component))
            shown = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
            steps = "; ".join(str(lines[edge]) for edge in cycle)
            found.append(f"import cycle {shown} ({steps})")
    return found


def layer_violations(package_dir: Path) -> list[str]:
    """Everything wrong with a package's imports, one line each, naming the file and line."""
    modules = read_modules(package_dir)
    return unplaced_modules(modules) + upward_imports(modules) + interface_imports(modules) + import_cycles(modules)


def report(found: list[str]) -> str:
    return f"{len(found)} violation(s):\n  " + "\n  ".join(found)


# -- nbflow itself ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nbflow_modules() -> Modules:
    return read_modules(PACKAGE_DIR)


def test_the_modules_are_read(nbflow_modules):
    assert {"nbflow", "nbflow.run.loop", "nbflow.store.db", "nbflow.api"} <= set(nbflow_modules.files)
    assert any(imp.importer == "nbflow.run.loop" and imp.imported == "nbflow.store" for imp in nbflow_modules.imports)


def test_every_module_has_a_layer(nbflow_modules):
    found = unplaced_modules(nbflow_modules)
    assert not found, report(found)


def test_every_import_points_down(nbflow_modules):
    found = upward_imports(nbflow_modules)
    assert not found, report(found)


def test_the_interfaces_do_not_import_one_another(nbflow_modules):
    found = interface_imports(nbflow_modules)
    assert not found, report(found)


def test_no_modules_import_each_other_in_a_cycle(nbflow_modules):
    found = import_cycles(nbflow_modules)
    assert not found, report(found)


# -- the checker catches what it is for ---------------------------------------------------------------------------


def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package named nbflow in tmp_path (never imported, only read) with these modules."""
    package = tmp_path / "nbflow"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


CLEAN = {
    "errors.py": "",
    "models.py": "from nbflow.errors import X\n",
    "store/__init__.py": "from nbflow.store.db import Store\n",
    "store/db.py": "from nbflow import models\nfrom . import schema\n",
    "store/schema.py": "",
    "graph.py": "import nbflow.store\n",
    "run/__init__.py": "",
    "run/loop.py": "from ..graph import Pipeline\nfrom .jobs import Job\n",
    "run/jobs.py": "from nbflow.models import TaskError\n",
    "api.py": "from nbflow.run import loop\n",
    "cli.py": "def main():\n    from nbflow.api import load\n",
    "widgets/__init__.py": "from nbflow.widgets.panel import panel\n",
    "widgets/panel.py": "from nbflow import api\nfrom . import views\n",
    "widgets/views.py": "",
}


def test_a_package_that_keeps_the_rules_passes(tmp_path):
    assert layer_violations(fake_package(tmp_path, CLEAN)) == []


def test_a_planted_upward_import_inside_a_function_is_caught_with_its_line(tmp_path):
    planted = "from nbflow.models import TaskError\n\n\ndef show():\n    import nbflow.widgets.views\n"
    assert layer_violations(fake_package(tmp_path, {**CLEAN, "run/jobs.py": planted})) == [
        "nbflow/run/jobs.py:5 (in a function): nbflow.run.jobs imports nbflow.widgets.views: run imports from "
        "interfaces, a higher layer"
    ]


def test_an_import_of_a_name_from_the_package_root_points_at_the_root(tmp_path):
    # `from nbflow import __version__` needs the root; `from nbflow import models` only nbflow.models
    files = {**CLEAN, "__init__.py": '__version__ = "1"\n', "run/jobs.py": "from nbflow import __version__, models\n"}
    assert layer_violations(fake_package(tmp_path, files)) == [
        "nbflow/run/jobs.py:1: nbflow.run.jobs imports nbflow: run imports from interfaces, a higher layer"
    ]


def test_relative_imports_are_resolved_from_the_modules_package(tmp_path):
    files = {**CLEAN, "store/db.py": "from .. import models\nfrom ..run import loop\n"}
    assert layer_violations(fake_package(tmp_path, files)) == [
        "nbflow/store/db.py:2: nbflow.store.db imports nbflow.run.loop: store imports from run, a higher layer"
    ]


def test_a_module_without_a_layer_is_caught(tmp_path):
    found = layer_violations(fake_package(tmp_path, {**CLEAN, "helpers.py": "", "api.py": "import nbflow.nowhere\n"}))
    assert found == [
        f"nbflow/helpers.py: nbflow.helpers belongs to no layer: add it to LAYERS in {Path(__file__).name}",
        "nbflow/api.py:1: nbflow.api imports nbflow.nowhere, which is no module of the package and belongs to no layer",
    ]


def test_interfaces_importing_one_another_are_caught(tmp_path):
    files = {**CLEAN, "cli.py": "from nbflow.widgets import panel\n", "api.py": "import nbflow.cli\n"}
    assert layer_violations(fake_package(tmp_path, files)) == [
        "nbflow/api.py:1: nbflow.api imports nbflow.cli: nbflow.api is what the interfaces share, so it imports none "
        "of them",
        "nbflow/cli.py:1: nbflow.cli imports nbflow.widgets.panel: nbflow.cli and nbflow.widgets never import each "
        "other (both may import nbflow.api)",
        "import cycle nbflow.api -> nbflow.cli -> nbflow.widgets.panel -> nbflow.api (nbflow/api.py:1: nbflow.api "
        "imports nbflow.cli; nbflow/cli.py:1: nbflow.cli imports nbflow.widgets.panel; nbflow/widgets/panel.py:1: "
        "nbflow.widgets.panel imports nbflow.api)",
    ]


def test_a_cycle_within_one_layer_hidden_in_a_function_is_caught(tmp_path):
    files = {**CLEAN, "graph.py": "import nbflow.store\n", "render.py": "from nbflow.graph import Pipeline\n"}
    files["graph.py"] += "\n\ndef draw():\n    from nbflow import render\n"
    assert layer_violations(fake_package(tmp_path, files)) == [
        "import cycle nbflow.graph -> nbflow.render -> nbflow.graph (nbflow/graph.py:5 (in a function): nbflow.graph "
        "imports nbflow.render; nbflow/render.py:1: nbflow.render imports nbflow.graph)"
    ]


def test_a_package_reexporting_its_own_modules_is_no_cycle(tmp_path):
    files = {**CLEAN, "store/schema.py": "from nbflow.store import Store\n"}  # the __init__ imports db, db schema
    assert layer_violations(fake_package(tmp_path, files)) == []


def test_a_package_importing_its_own_module_inside_a_function_that_imports_it_back_is_a_cycle(tmp_path):
    files = {
        **CLEAN,
        "cli/__init__.py": "def main():\n    from nbflow.cli.schedule import add\n",
        "cli/schedule.py": "from nbflow.cli import main\n",
    }
    del files["cli.py"]
    assert layer_violations(fake_package(tmp_path, files)) == [
        "import cycle nbflow.cli -> nbflow.cli.schedule -> nbflow.cli (nbflow/cli/__init__.py:2 (in a function): "
        "nbflow.cli imports nbflow.cli.schedule; nbflow/cli/schedule.py:1: nbflow.cli.schedule imports nbflow.cli)"
    ]
