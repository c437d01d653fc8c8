"""The project the server serves, and the rule that nothing outside the server's root folder is read or run.

Every path the API reads is checked to resolve (symlinks followed) inside the root: a request names runs and tasks,
never files, and what the project and its store say about files is checked too.
"""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

from nbflow.errors import PipelineError, Problem
from nbflow.graph import Pipeline, load
from nbflow.project import Project, load_project
from nbflow.server.errors import ApiError
from nbflow.store import Store, open_store


def inside(root: str, path: str | Path) -> bool:
    """True when `path`, with every symlink resolved, is `root` or lies under it (`root` already resolved)."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_relative(text: str, what: str) -> str:
    """A relative path as given in configuration or a request: no absolute path, no `..`, no backslash tricks."""
    parts = text.replace("\\", "/").split("/")
    if text.startswith(("/", "\\")) or os.path.isabs(text) or ".." in parts or "\x00" in text:
        raise ApiError(400, f"{what} {text!r} must be a path relative to the server's root folder, without `..`.")
    return "/".join(p for p in parts if p not in ("", "."))


def _config_problem(message: str) -> PipelineError:
    return PipelineError([Problem("config", message)])


class ServedProject:
    """The project under the server's root folder `root`: the root itself, or the subfolder `setting`
    (`c.NbflowApp.project`), looked up again on each request so the project can be created or fixed meanwhile."""

    def __init__(self, root: str | Path, setting: str = ""):
        self.root = os.path.realpath(root)
        self.setting = setting

    def folder(self) -> str:
        """The folder nbflow looks for the project from (checked to lie inside the root)."""
        try:
            sub = check_relative(self.setting, "c.NbflowApp.project") if self.setting else ""
        except ApiError as exc:
            raise _config_problem(exc.message) from None
        folder = os.path.join(self.root, sub)
        if not inside(self.root, folder):
            raise _config_problem(
                f"c.NbflowApp.project = {self.setting!r} resolves outside the server's root folder (a symlink?); "
                "nbflow serves only projects inside it."
            )
        if not os.path.isdir(folder):
            raise _config_problem(
                f"c.NbflowApp.project = {self.setting!r}: no such folder under the server's root folder."
            )
        return folder

    def project(self) -> Project:
        project = load_project(self.folder())
        if not inside(self.root, project.root):
            raise ApiError(
                404,
                f"the nbflow project found from the server's root folder is {project.root}, outside it; start "
                "Jupyter in that folder (or above) to use it here.",
            )
        return project

    def store(self, project: Project | None = None) -> closing[Store]:
        """The store of the project (looked up when not given), closed when the `with` block ends."""
        return closing(open_store((project or self.project()).store_dir))

    def load(self) -> Pipeline:
        """The resolved pipeline, refused when its root or a task notebook lies outside the server's root."""
        pipeline = load(self.folder())
        root = str(pipeline.project.root)
        if not inside(self.root, root):
            raise _config_problem(
                f"the nbflow project found from the server's root folder is {root} (marked by "
                f"{pipeline.project.config_file}), outside the server's root folder; start Jupyter in that folder "
                "(or above) to use it here."
            )
        outside = [
            Problem(
                "outside-root",
                f"{task.notebook}: the notebook resolves outside the server's root folder (a symlink?); the server "
                "does not read or run it.",
            )
            for task in pipeline.tasks.values()
            if not inside(self.root, task.spec.notebook)
        ]
        if outside:
            raise PipelineError(outside)
        return pipeline

    def relative_to_root(self, path: str | Path) -> str:
        rel = os.path.relpath(os.path.realpath(path), self.root)
        return "" if rel == "." else Path(rel).as_posix()
