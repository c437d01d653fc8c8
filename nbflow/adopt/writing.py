"""Writing an import: the task files rewritten (each original copied to a backup folder first), the project's
`nbflow.toml` made where it has none, and the result read back by nbflow's resolver to check it."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbflow.errors import PipelineError
from nbflow.graph import load
from nbflow.project import STORE_DIR, discover, find_root, load_project


@dataclass
class Settings:
    """Where the nbflow project's root is, and the nbflow.toml to write there (None: it has settings already)."""

    root: Path
    text: str | None
    uncovered: list[str] = field(default_factory=list)  # task files the existing settings' `notebooks` leave out

    @property
    def path(self) -> Path:
        return self.root / "nbflow.toml"


def settings_for(folder: Path, task_files: list[Path], tool: str) -> Settings:
    """The nbflow root for a project imported in `folder`: its existing settings, or an nbflow.toml naming the task
    files (so nothing else under the folder, such as the other tool's executed notebooks, is read as a task)."""
    root, config_file = find_root(folder)
    if config_file is not None:
        found = set(discover(load_project(root)))
        uncovered = [f.relative_to(root).as_posix() for f in task_files if f not in found]
        return Settings(root, None, uncovered)
    listed = "".join(f'  "{f.relative_to(root).as_posix()}",\n' for f in sorted(task_files))
    text = (
        f"# nbflow settings, written by `nbflow import {tool}`.\n"
        "# The pipeline's tasks are these notebooks only: add a new task's file here (globs such as\n"
        '# "tasks/*.py" work too).\n'
        f"notebooks = [\n{listed}]\n"
    )
    return Settings(root, text)


def backup_folder(root: Path, tool: str) -> Path:
    return root / STORE_DIR / "backup" / f"{tool}-{time.strftime('%Y%m%dT%H%M%S')}"


def write_files(root: Path, changes: dict[Path, str], backup: Path) -> None:
    """Copy each file to `backup` (its path below the root kept), then write its new text."""
    for path in changes:
        copy = backup / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    for path, text in changes.items():
        path.write_text(text, encoding="utf-8")


def check_pipeline(root: Path) -> list[str]:
    """What nbflow's resolver says of the project as it now stands: every problem, or none."""
    try:
        load(root)
    except PipelineError as exc:
        return [p.message for p in exc.problems]
    return []
