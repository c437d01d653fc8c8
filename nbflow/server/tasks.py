"""One task instance as the pipeline view's drawer shows it (`GET tasks/NAME`), and a first look at its files
(`GET files/preview?path=PATH`).

A preview reads only a path some task declares (a file, a file in a declared folder, a file a declared glob
matches), inside the project and the server's root: a request cannot make the server read any other file.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from nbflow import history, paths
from nbflow.graph import Pipeline
from nbflow.server.cache import PipelineCache
from nbflow.server.errors import ApiError
from nbflow.server.paths import ServedProject, check_relative, inside
from nbflow.server.previews import kind_of, preview
from nbflow.shapes import FileEntry, FilePreview, TaskDetail, TaskRunEntry
from nbflow.store import Store
from nbflow.times import iso, local

FILES_COUNTED = 10_000  # in one folder or glob: past this the drawer says "10000+" rather than walk on


class Tasks:
    def __init__(self, served: ServedProject, cache: PipelineCache):
        self.served = served
        self.cache = cache

    def detail(self, name: str) -> TaskDetail:
        resolved = self.cache.load()
        pipeline = resolved.pipeline
        task = pipeline.tasks.get(name)
        if task is None:
            raise ApiError(404, f"no task {name!r} in this pipeline.")
        store = self.cache.store(pipeline.project)
        status = self.cache.statuses(resolved, store)[name]
        shown = next(t for t in resolved.graph.tasks if t.name == name)
        last = _last_entry(store, name, status.last_run)
        root = pipeline.project.root
        return TaskDetail(
            name=name,
            task=task.base,
            grid=shown.grid,
            notebook=self.served.relative_to_root(root / task.notebook),
            status=status,
            params=shown.params,
            inputs=[self._file(pipeline, p) for p in task.input_paths],
            outputs=[self._file(pipeline, p) for p in paths_of_outputs(task.output_paths, task.report)],
            upstream=sorted(pipeline.graph.predecessors(name)),
            downstream=sorted(pipeline.graph.successors(name)),
            report=self.served.relative_to_root(task.report) if task.report else None,
            last_run=status.last_run,
            last=last,
        )

    def preview(self, path: str) -> FilePreview:
        relative = check_relative(path, "path")
        pipeline = self.cache.load().pipeline
        root = str(pipeline.project.root)
        absolute = os.path.normpath(os.path.join(root, relative))
        if not _declared(pipeline, absolute):
            raise ApiError(
                404, f"{relative} is no input or output a task declares; the drawer previews only those files."
            )
        if not inside(self.served.root, absolute) or not inside(os.path.realpath(root), absolute):
            raise ApiError(404, f"{relative} resolves outside the project (a symlink?); it is not read.")
        return preview(os.path.realpath(absolute), relative)

    def _file(self, pipeline: Pipeline, path: str) -> FileEntry:
        shown = pipeline.project.relative(path)
        if paths.is_folder(path) or paths.is_glob(path):
            files = paths.expand(path) if paths.is_glob(path) else _walk(path)
            found = files[:FILES_COUNTED]
            stats = [s for s in (_stat(f) for f in found) if s is not None]
            return FileEntry(
                path=shown,
                kind="glob" if paths.is_glob(path) else "folder",
                exists=os.path.isdir(path) if paths.is_folder(path) else bool(files),
                size=sum(s.st_size for s in stats) if stats else None,
                modified=_when(max(s.st_mtime for s in stats)) if stats else None,
                files=len(files),
                preview=None,
            )
        stat = _stat(path)
        return FileEntry(
            path=shown,
            kind="file",
            exists=stat is not None,
            size=stat.st_size if stat else None,
            modified=_when(stat.st_mtime) if stat else None,
            files=None,
            preview=kind_of(path),
        )


def paths_of_outputs(outputs: list[str], report: str | None) -> list[str]:
    """The outputs the drawer lists: the report (which `output_paths` ends with) has a line of its own."""
    return [p for p in outputs if p != report]


def _last_entry(store: Store, name: str, run_id: str | None) -> TaskRunEntry | None:
    if run_id is None:
        return None
    entry = next((t for t in store.task_runs(run_id) if t.name == name), None)
    return history.task_entry(entry, store.root) if entry else None


def _declared(pipeline: Pipeline, path: str) -> bool:
    """Some task declares `path`: as a file, a folder holding it, or a glob matching it."""
    for task in pipeline.tasks.values():
        for declared in task.input_paths + task.output_paths:
            if declared == path or (paths.is_folder(declared) and paths.under(path, declared)):
                return True
            if paths.is_glob(declared) and paths.matches(declared, path):
                return True
    return False


def _walk(folder: str) -> list[str]:
    found: list[str] = []
    for top, dirnames, files in os.walk(folder):
        dirnames.sort()
        found += [os.path.join(top, f) for f in sorted(files)]
        if len(found) > FILES_COUNTED:
            break
    return found


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _when(timestamp: float) -> str:
    return local(iso(datetime.fromtimestamp(timestamp, timezone.utc)))
