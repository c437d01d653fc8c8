"""What `GET pipeline` keeps between requests: the resolved pipeline and its drawing, and each task's status, each
reused only while everything it was made from is unchanged.

Resolving reads the settings file and every notebook discovery finds (`project.load_project`, `project.discover`);
a pipeline is reused while the settings file, the discovered notebooks and each one's stat signature are the same.
Discovery runs at every request (it is what notices a notebook added or removed), the notebooks are only stat'ed.

The statuses (`history.task_statuses`, judged by `fingerprint.status`) read the pipeline, the store (last runs,
successes and their fingerprints, the file-hash cache, whose hashes stand for files of a given size and mtime) and
the stat of every input and output: a file's stat, a folder's files' stats, the files a glob matches now. They are
reused while the pipeline, the store's files (`nbflow.db` and its WAL: every commit writes the WAL) and those stats
are the same. A task's `check` is state no file shows, so a pipeline with one has its statuses judged at every
request, as before (the checks themselves are cached for 30 s by `external.STATUS_CHECKS`).

A file changed twice within its filesystem's timestamp resolution keeps its mtime (and may keep its size); what
was read from files changed less than `RACY_NS` before it was read is therefore never reused, so a cached answer is
never one a fresh judgement would not give. Errors (an invalid pipeline) are never kept: each request reports them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from nbflow import history, paths, render
from nbflow.graph import Pipeline
from nbflow.project import Project, discover, load_project
from nbflow.server.paths import ServedProject
from nbflow.shapes import Graph, TaskStatusEntry
from nbflow.store import DB_NAME, Store, open_store

# A signature is trusted only when the newest file it stat'ed was changed this long before: longer than any local
# or network filesystem's timestamp resolution (ext4 and XFS: a clock tick; NFS: the server's; 2 s only on FAT).
RACY_NS = 1_000_000_000

Stat = tuple[int, int, int, int, int] | None  # (mode, size, mtime_ns, device, inode); None: missing


def stat_of(path: str | Path) -> Stat:
    """What a file's content is judged by, following symlinks (a new target is a new inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


@dataclass(frozen=True)
class Signature:
    """A cheap stand-in for what a result was made from: equal signatures, equal results. `settled` is False when
    a file in it changed too recently for its stat to be trusted (`RACY_NS`)."""

    key: Hashable
    settled: bool


class _Signer:
    """Collects stats into a signature, noting whether every one is old enough to trust."""

    def __init__(self) -> None:
        self.taken_ns = time.time_ns()  # before any stat: a change after it shows as a newer mtime
        self.parts: list[Hashable] = []
        self.settled = True

    def add(self, name: str, stat: Stat) -> None:
        if stat is not None and stat[2] > self.taken_ns - RACY_NS:
            self.settled = False
        self.parts.append((name, stat))

    def signature(self, *extra: Hashable) -> Signature:
        return Signature((*extra, tuple(self.parts)), self.settled)


def project_signature(served: ServedProject) -> Signature:
    """The settings file and every notebook discovery finds, each with its stat: what `ServedProject.load` reads."""
    project = load_project(served.folder())
    signer = _Signer()
    signer.add(str(project.config_file), stat_of(project.config_file) if project.config_file else None)
    for notebook in discover(project):
        signer.add(str(notebook), stat_of(notebook))
    return signer.signature(served.root, served.setting, str(project.root))


def _declared_stats(path: str, signer: _Signer) -> None:
    """The stats `fingerprint.file_hash(path)` depends on: those of the files a glob matches, of a folder's files,
    or of the file."""
    if paths.is_glob(path):
        signer.parts.append(("glob", path))
        for match in paths.expand(path):
            _declared_stats(match, signer)
    elif path.endswith("/"):
        signer.parts.append(("folder", path, os.path.isdir(path)))
        for folder, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                _declared_stats(os.path.join(folder, name), signer)
    else:
        signer.add(path, stat_of(path))


def status_signature(pipeline: Pipeline, pipeline_key: Signature, store: Store) -> Signature:
    """What the statuses of `pipeline` are judged from: the pipeline, the store's files, every input and output."""
    signer = _Signer()
    for suffix in ("", "-wal"):
        signer.add(f"store{suffix}", stat_of(f"{store.path}{suffix}"))
    declared: dict[str, None] = {}  # each path once: a chain's outputs are the next task's inputs
    for task in pipeline.tasks.values():
        declared.update(dict.fromkeys(task.input_paths))
        declared.update(dict.fromkeys(task.output_paths))
    for path in declared:
        _declared_stats(path, signer)
    return signer.signature(pipeline_key.key)


@dataclass(frozen=True)
class Resolved:
    """The pipeline as `ServedProject.load` returns it, its drawing (`graph --format json`), and its signature."""

    pipeline: Pipeline
    graph: Graph
    signature: Signature


def _same_file(a: Stat, b: Stat) -> bool:
    return a is not None and b is not None and a[3:] == b[3:]


class PipelineCache:
    """The last resolved pipeline and the last statuses of the served project, for `GET pipeline`. Thread-safe:
    the handlers run in a pool; two requests that miss at once resolve once (the second waits, then reuses)."""

    def __init__(self, served: ServedProject):
        self.served = served
        self._resolved: Resolved | None = None
        self._statuses: tuple[Signature, dict[str, TaskStatusEntry]] | None = None
        self._resolve_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._store: tuple[Store, Stat] | None = None
        self._store_lock = threading.Lock()

    def store(self, project: Project) -> Store:
        """The project's store, kept open between requests: opening one writes it (the schema version) and closing
        the last connection checkpoints it, either of which would look like a change to the statuses' signature.
        Runs of dead processes are marked `interrupted` at each call, as `open_store` does; a store file replaced
        or removed since (another inode) is opened anew."""
        with self._store_lock:
            kept = self._store
            current = stat_of(project.store_dir / DB_NAME)
            if kept is not None and kept[0].dir == project.store_dir and _same_file(kept[1], current):
                if not kept[0].read_only:
                    kept[0].mark_dead_runs()
                return kept[0]
            store = open_store(project.store_dir)
            self._store = (store, stat_of(store.path))
            if kept is not None:
                kept[0].close_all()
            return store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store[0].close_all()
                self._store = None

    def load(self) -> Resolved:
        """The pipeline, resolved again only when its settings or notebooks changed; raises what
        `ServedProject.load` raises (every time: errors are not kept)."""
        try:
            signature = project_signature(self.served)
        except Exception:  # no project to discover, or invalid settings: loading says why, every time
            signature = None
        with self._resolve_lock:
            kept = self._resolved
            if signature is not None and kept is not None and kept.signature == signature and signature.settled:
                return kept
            pipeline = self.served.load()
            trusted = signature is not None and signature.settled
            drawing = Graph.model_validate(render.to_dict(pipeline))
            resolved = Resolved(pipeline, drawing, signature if trusted and signature else Signature(None, False))
            self._resolved = resolved if trusted else None
            return resolved

    def statuses(self, resolved: Resolved, store: Store) -> dict[str, TaskStatusEntry]:
        """Each task's status, judged again only when the pipeline, the store or an input or output changed."""
        pipeline = resolved.pipeline
        if not resolved.signature.settled or any(t.spec.check for t in pipeline.tasks.values()):
            return history.task_statuses(pipeline, store)
        # taken before judging: a change while judging makes the next request's signature differ
        signature = status_signature(pipeline, resolved.signature, store)
        with self._status_lock:
            kept = self._statuses
            if kept is not None and kept[0] == signature and signature.settled:
                return kept[1]
            statuses = history.task_statuses(pipeline, store)
            self._statuses = (signature, statuses) if signature.settled else None
            return statuses
