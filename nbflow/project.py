"""The project: its root folder, its settings (`nbflow.toml` or `[tool.nbflow]`) and its notebooks."""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.declare.reading import (
    NOTEBOOK_SUFFIX,
    SUFFIXES,
    Unreadable,
    is_text_notebook,
    paired_formats,
    read_notebook_json,
)
from nbflow.errors import PipelineError, Problem
from nbflow.masking import Secret, variable_of
from nbflow.notify_settings import NotifySettings, read_notify_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STORE_DIR = ".nbflow"
_SETTINGS = {
    "notebooks",
    "params",
    "secrets",
    "workers",
    "timeout",
    "retries",
    "outputs_outside_root",
    "kernel",
    "notify",
    "preload",
}


@dataclass
class Project:
    root: Path
    config_file: Path | None = None
    notebooks: list[str] | None = None  # globs relative to the root; None: every notebook under it
    kernel: str = "python3"  # the kernelspec of a notebook that names none
    # `[params]`, and each secret as its `Secret` (the mask): the values in force before a run's own
    params: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # `[secrets]`: parameter name -> environment variable
    workers: int | None = None
    timeout: float | None = None
    retries: int | None = None
    outputs_outside_root: bool = False  # outputs must stay under the root unless the project says otherwise
    notify: NotifySettings = field(default_factory=NotifySettings)
    # `preload`: True (the modules the notebooks import), False (none), or those plus the names listed
    preload: bool | list[str] = True

    @property
    def store_dir(self) -> Path:
        return self.root / STORE_DIR

    @property
    def secret_values(self) -> list[str]:
        """The values of its secrets in this process's environment, to mask wherever text may quote one."""
        return [os.environ[variable] for variable in self.secrets.values() if variable in os.environ]

    @property
    def settings_file(self) -> str:
        """The settings file as messages name it: relative to the root, or `nbflow.toml` where there is none."""
        return self.relative(self.config_file) if self.config_file else "nbflow.toml"

    def relative(self, path: str | Path) -> str:
        """A path as users see it: relative to the root, with `/`; a folder keeps its trailing `/`."""
        shown = Path(os.path.relpath(path, self.root)).as_posix()
        return shown + "/" if isinstance(path, str) and path.endswith("/") and shown != "." else shown


def find_root(start: str | Path | None = None) -> tuple[Path, Path | None]:
    """The project root for `start` (default: the current folder), and the settings file that marks it."""
    start_path = Path(start if start is not None else os.getcwd()).resolve()
    if start_path.is_file():
        start_path = start_path.parent
    if not start_path.is_dir():
        raise PipelineError([Problem("config", f"{start_path}: no such folder; give the folder of the pipeline.")])
    for folder in (start_path, *start_path.parents):
        candidate = folder / "nbflow.toml"
        if candidate.is_file():
            return folder, candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "tool.nbflow" in pyproject.read_text(encoding="utf-8", errors="replace"):
            return folder, pyproject
    return start_path, None


def _read_settings(config_file: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError([Problem("config", f"{config_file}: not valid TOML ({exc}).")]) from exc
    if config_file.name == "pyproject.toml":
        settings: dict[str, Any] = data.get("tool", {}).get("nbflow", {})
        return settings
    return dict(data)


def load_project(start: str | Path | None = None) -> Project:
    """Find the root and read its settings; every mistake in them is reported at once."""
    root, config_file = find_root(start)
    project = Project(root=root, config_file=config_file)
    if config_file is None:
        return project
    settings = _read_settings(config_file)
    where = project.relative(config_file)
    problems = [
        Problem("config", f"{where}: unknown setting `{key}` (known: {', '.join(sorted(_SETTINGS))}).")
        for key in settings
        if key not in _SETTINGS
    ]

    def check(key: str, ok: bool, expected: str) -> Any:
        if key in settings and not ok:
            problems.append(Problem("config", f"{where}: `{key}` must be {expected}, not {settings[key]!r}."))
            return None
        return settings.get(key)

    notebooks = settings.get("notebooks")
    if isinstance(notebooks, str):
        notebooks = [notebooks]
    project.notebooks = (
        check(
            "notebooks",
            isinstance(notebooks, list) and all(isinstance(g, str) for g in notebooks),
            'a list of globs such as ["notebooks/**/*.ipynb"]',
        )
        and notebooks
    )
    project.params = check("params", isinstance(settings.get("params"), dict), "a table of name = value") or {}
    secrets = check("secrets", isinstance(settings.get("secrets"), dict), 'a table of name = "env:VARIABLE"') or {}
    problems += _secret_problems(where, secrets, project.params)
    project.secrets = {name: variable for name, source in secrets.items() if (variable := variable_of(source))}
    project.params = {**project.params, **{name: Secret(variable) for name, variable in project.secrets.items()}}
    workers = settings.get("workers")
    project.workers = check(
        "workers", isinstance(workers, int) and not isinstance(workers, bool) and workers > 0, "a whole number > 0"
    )
    timeout = settings.get("timeout")
    project.timeout = check(
        "timeout",
        isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0,
        "a positive number of seconds",
    )
    retries = settings.get("retries")
    project.retries = check(
        "retries", isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0, "a whole number >= 0"
    )
    kernel = settings.get("kernel", project.kernel)
    project.kernel = check("kernel", isinstance(kernel, str) and bool(kernel), "a kernelspec name") or project.kernel
    outside = settings.get("outputs_outside_root", False)
    project.outputs_outside_root = bool(check("outputs_outside_root", isinstance(outside, bool), "true or false"))
    preload = settings.get("preload", True)
    project.preload = check(
        "preload",
        isinstance(preload, bool) or (isinstance(preload, list) and all(isinstance(m, str) and m for m in preload)),
        'true, false, or a list of modules to import before the kernels fork, e.g. ["pandas", "sklearn"]',
    )
    if project.preload is None:
        project.preload = True
    if "notify" in settings:
        notify = read_notify_settings(where, settings["notify"], problems)
        project.notify = notify or project.notify
    if problems:
        raise PipelineError(problems)
    return project


def _secret_problems(where: str, secrets: dict[str, Any], params: dict[str, Any]) -> list[Problem]:
    """Each `[secrets]` entry must be a parameter name read from `env:VARIABLE`, and no `[params]` entry too."""
    problems = []
    for name, source in secrets.items():
        if not name.isidentifier():
            problems.append(Problem("config", f"{where}: [secrets] `{name}` is no parameter name (a Python name)."))
        elif variable_of(source) is None:
            problems.append(
                Problem(
                    "config",
                    f"{where}: [secrets] `{name}` = {source!r}: a secret names the environment variable it is read "
                    f'from, as `{name} = "env:VARIABLE"` (letters, digits and _).',
                )
            )
        if name in params:
            problems.append(
                Problem(
                    "config",
                    f"{where}: `{name}` is set in both [params] and [secrets]; a secret's value comes from its "
                    "environment variable only, so remove it from [params].",
                )
            )
    return problems


def _hidden(relative_parts: tuple[str, ...]) -> bool:
    # Hidden folders hold checkpoints (.ipynb_checkpoints), the run store (.nbflow), virtualenvs (.venv), ...
    return any(part.startswith(".") for part in relative_parts)


def discover(project: Project) -> list[Path]:
    """Every notebook of the pipeline, sorted: all under the root, or those the `notebooks` globs match.

    Notebooks are `.ipynb` files and jupytext text notebooks (`.py`, `.md`); a text file that is no notebook (a
    module the notebooks import, a README) is left out. Of a notebook paired with a text file through jupytext
    (one stem, `metadata.jupytext.formats` naming both), only the text file is kept: it is the one people edit.
    """
    root = project.root
    candidates: set[Path] = set()
    if project.notebooks is not None:
        for pattern in project.notebooks:
            for match in glob.iglob(str(root / pattern), recursive=True):
                path = Path(match)
                if path.suffix in SUFFIXES and path.is_file() and not _hidden(path.relative_to(root).parts):
                    candidates.add(path)
    else:
        for folder, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            candidates.update(Path(folder, f) for f in filenames if f.endswith(SUFFIXES) and not f.startswith("."))
    notebooks = {p for p in candidates if p.suffix == NOTEBOOK_SUFFIX or is_text_notebook(p)}
    return sorted(notebooks - _paired_ipynb(notebooks))


def _paired_ipynb(notebooks: set[Path]) -> set[Path]:
    """The `.ipynb` files among `notebooks` that jupytext pairs with a text notebook among them."""
    paired = set()
    for path in notebooks:
        if path.suffix == NOTEBOOK_SUFFIX:
            texts = [path.with_suffix(s) for s in SUFFIXES if s != NOTEBOOK_SUFFIX and path.with_suffix(s) in notebooks]
            if not texts:
                continue
            try:
                formats = paired_formats(read_notebook_json(path))
            except Unreadable:
                continue  # reported when it is read as a notebook of its own
            if any(text.suffix.lstrip(".") in formats for text in texts):
                paired.add(path)
    return paired
