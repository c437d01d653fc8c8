"""A Ploomber project's `pipeline.yaml` read into plain task entries, each with its line in the file.

Ploomber fills `{{placeholders}}` in the spec from `env.yaml` and from a few of its own (`{{here}}`: the folder of
the spec; `{{root}}`: the project root). Those whose value is fixed by the files are filled here; the others
(`{{now}}`, `{{user}}`, `{{git}}`, `{{cwd}}`, ...) change from build to build, and the task using one is reported as
not converted. Relative paths in the spec are relative to the project root, as Ploomber reads them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nbflow.errors import UsageError

SPEC_NAME = "pipeline.yaml"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_TEMPLATE = re.compile(r"\{\{|\{%")
# Ploomber's placeholders whose value depends on when and where a build runs
_PER_BUILD = {"cwd", "user", "now", "git", "git_hash", "build_time", "env_name"}
_META = {
    "extract_upstream",
    "extract_product",
    "product_default_class",
    "product_relative_to_source",
    "jupyter_hot_reload",
    "source_loader",
    "jupyter_functions_as_notebooks",
    "import_tasks_from",
}


class Lined(dict):  # type: ignore[type-arg]
    """A YAML mapping that knows the line it starts on."""

    line: int = 0


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types: SafeLoader is Any
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[Lined]:
    data = Lined()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Entry:
    """One task of the spec, its placeholders filled."""

    line: int
    data: dict[str, Any]  # the task's keys as written
    unfilled: list[str] = field(default_factory=list)  # placeholders with no fixed value, e.g. "{{now}}"

    @property
    def source(self) -> str:
        return str(self.data["source"])


@dataclass
class Spec:
    """A pipeline.yaml: where it lies, its project root, its `meta` settings and its tasks."""

    path: Path
    root: Path
    meta: dict[str, Any]
    entries: list[Entry]
    ignored: list[str]  # top-level sections nbflow has no use for, each with why
    env_file: Path | None = None


def find_spec(path: str | Path | None) -> Path:
    """The spec for `path`: a file as given, or a folder's pipeline.yaml (or its src/PACKAGE/pipeline.yaml)."""
    given = Path(path if path is not None else ".").resolve()
    if given.is_file():
        return given
    if not given.is_dir():
        raise UsageError(f"{given}: no such file or folder; give a Ploomber project's folder or its pipeline.yaml.")
    if (given / SPEC_NAME).is_file():
        return given / SPEC_NAME
    packaged = sorted(given.glob(f"src/*/{SPEC_NAME}"))
    if len(packaged) == 1:
        return packaged[0]
    raise UsageError(
        f"{given}: no {SPEC_NAME} here (nor in src/PACKAGE/); give the folder that holds the Ploomber project's "
        f"{SPEC_NAME}, or the spec file itself (e.g. pipeline.train.yaml)."
    )


def project_root(spec_path: Path) -> Path:
    """Ploomber's project root: the spec's folder, or for a package (src/PACKAGE/pipeline.yaml beside a setup.py)
    the folder of setup.py."""
    folder = spec_path.parent
    if folder.parent.name == "src" and (folder.parent.parent / "setup.py").is_file():
        return folder.parent.parent
    return folder


def _load_yaml(path: Path, display: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{display}: cannot be read ({exc}).") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: builds plain values only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{display}, line {mark.line + 1}, column {mark.column + 1}" if mark else display
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        what = f"{problem} ({context})" if context else problem
        raise UsageError(
            f"{where}: not valid YAML: {what}. Fix the file (Ploomber would not read it either) and import again."
        ) from exc


def _env_file(spec_path: Path) -> Path | None:
    """The env file Ploomber reads with this spec: env.NAME.yaml for pipeline.NAME.yaml, else env.yaml beside it."""
    parts = spec_path.name.split(".")
    candidates = [spec_path.with_name(f"env.{parts[1]}.yaml")] if len(parts) == 3 else []
    candidates.append(spec_path.with_name("env.yaml"))
    return next((c for c in candidates if c.is_file()), None)


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat[prefix + str(key)] = value
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _fill(value: Any, values: dict[str, Any], unfilled: list[str]) -> Any:
    """`value` with every `{{name}}` with a fixed value filled; the others are left and listed in `unfilled`."""
    if isinstance(value, str):
        # a string that is one placeholder becomes the value itself, as Ploomber casts `{{sample}}` to a bool
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole and whole.group(1) in values and whole.group(1) not in _PER_BUILD:
            return values[whole.group(1)]

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values and name not in _PER_BUILD and not isinstance(values[name], (dict, list)):
                return str(values[name])
            unfilled.append(match.group(0))
            return match.group(0)

        filled = _PLACEHOLDER.sub(replace, value)
        if _TEMPLATE.search(_PLACEHOLDER.sub("", filled)):
            unfilled.append(filled)  # a Jinja expression beyond a plain name
        return filled
    if isinstance(value, Lined):
        result = Lined({k: _fill(v, values, unfilled) for k, v in value.items()})
        result.line = value.line
        return result
    if isinstance(value, dict):
        return {k: _fill(v, values, unfilled) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values, unfilled) for v in value]
    return value


def read_spec(path: str | Path | None) -> Spec:
    """Read the spec (and its env.yaml) for `path`; a spec nbflow cannot read is a UsageError naming the line."""
    spec_path = find_spec(path)
    root = project_root(spec_path)
    display = str(spec_path)
    data = _load_yaml(spec_path, display)
    if isinstance(data, list):
        data = Lined(tasks=data)
    if not isinstance(data, dict):
        raise UsageError(f"{display}: the file is not a Ploomber spec (expected a mapping with `tasks:`).")
    line = getattr(data, "line", 1)
    if "location" in data:
        raise UsageError(
            f"{display}, line {line}: `location: {data['location']}` builds the pipeline in Python, which nbflow "
            "cannot read; list the tasks in pipeline.yaml (`tasks:`) and import again."
        )
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise UsageError(
            f"{display}, line {line}: expected `tasks:` with a list of tasks (each with `source:` and `product:`), "
            f"found {'nothing' if tasks is None else type(tasks).__name__}."
        )
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise UsageError(f"{display}, line {line}: `meta:` must be a mapping, not {type(meta).__name__}.")
    unknown = sorted(set(meta) - _META)
    if unknown:
        close = difflib.get_close_matches(unknown[0], _META, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise UsageError(
            f"{display}, line {getattr(meta, 'line', line)}: unknown `meta` key `{unknown[0]}`; {hint}Ploomber "
            f"knows {', '.join(sorted(_META))}."
        )
    for key in ("source_loader", "import_tasks_from"):
        if meta.get(key):
            raise UsageError(
                f"{display}, line {getattr(meta, 'line', line)}: `meta.{key}` is not supported by nbflow import "
                "ploomber; list every task in pipeline.yaml with its source path and import again."
            )
    ignored = [
        f"`{key}:` ({why})"
        for key, why in (
            ("clients", "database clients: SQL tasks are not converted"),
            ("serializer", "function tasks are not converted"),
            ("unserializer", "function tasks are not converted"),
            ("executor", "nbflow runs tasks in parallel itself: `nbflow run -j N`"),
            ("on_finish", "a pipeline hook; nbflow has none"),
            ("on_render", "a pipeline hook; nbflow has none"),
            ("on_failure", "a pipeline hook; nbflow alerts on failure through schedules"),
            ("config", "Ploomber's DAG settings"),
        )
        if key in data
    ]

    env_file = _env_file(spec_path)
    values: dict[str, Any] = {}
    if env_file is not None:
        env = _load_yaml(env_file, str(env_file))
        if env is not None and not isinstance(env, dict):
            raise UsageError(f"{env_file}: expected a mapping of name: value, not {type(env).__name__}.")
        builtins = {"here": str(spec_path.parent), "root": str(root)}
        values = {k: _fill(v, builtins, []) for k, v in _flatten(dict(env or {})).items() if not k.startswith("_")}
    values.update(here=str(spec_path.parent), root=str(root))

    entries = []
    for index, task in enumerate(tasks):
        task_line = getattr(task, "line", line)
        if isinstance(task, str):
            task = Lined(source=task)
            task.line = task_line
        if not isinstance(task, dict) or not isinstance(task.get("source"), str) or not task["source"]:
            raise UsageError(
                f"{display}, line {task_line}: task {index + 1} has no `source:` (a notebook, a script or a "
                "function's dotted path); every task needs one."
            )
        unfilled: list[str] = []
        filled = _fill(task, values, unfilled)
        entries.append(Entry(task_line, dict(filled), unfilled))
    return Spec(spec_path, root, dict(meta), entries, ignored, env_file)
