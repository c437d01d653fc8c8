"""The one staleness judgement: fingerprints of code, kernel, parameters, input and output contents.

A task is up to date when its fingerprint equals the one of its last successful run and its outputs are still
there, unchanged. `judge` is what the run loop, the dry run, `nbflow status` and the panels all ask.

Code is hashed from code cells only, each as its AST when it parses (so comments and whitespace do not count);
markdown never counts. File contents are hashed with SHA-256, cached in the store by size and
mtime so a big unchanged input is not read again. Only regular files are read: a device, a FIFO or a socket (an
input that is `/dev/zero`, a glob matching a pipe) is never opened for its content, which would never end; it counts
by its kind. Reading one file is bounded in time too: past `HASH_SECONDS` its size and mtime stand for its content.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import stat as stat_kinds
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow import paths
from nbflow.external import STATUS_CHECKS, CheckResult, run_check
from nbflow.graph import Pipeline, Task
from nbflow.models import TaskRun, TaskState, TaskStatus
from nbflow.store import Store

Relative = Callable[[str], str]
HASH_SECONDS = 60.0  # reading one file for its hash stops after this; its size and mtime then stand for it
CheckRunner = Callable[[str, Path], CheckResult]


@functools.lru_cache(maxsize=4096)  # every instance of a grid has its task's code: hashed once
def code_hash(code_cells: tuple[str, ...], kernel: str) -> str:
    digest = hashlib.sha256(f"kernel={kernel}\n".encode())
    for source in code_cells:
        try:
            normal = ast.dump(ast.parse(source))
        except (SyntaxError, ValueError, MemoryError, RecursionError):  # magics; nesting too deep for the parser
            normal = "\n".join(line.rstrip() for line in source.strip().splitlines())
        digest.update(hashlib.sha256(normal.encode()).digest())
    return digest.hexdigest()


def file_hash(path: str, store: Store) -> str | None:
    """SHA-256 of a file's content; of a folder's files' names and contents; of the names and contents of the
    files a glob matches (so adding or removing one changes it). None when a file or folder does not exist."""
    if paths.is_glob(path):
        digest, base = hashlib.sha256(), paths.glob_base(path)
        for match in paths.expand(path):  # names relative to the glob's folder: a moved project stays up to date
            digest.update(f"{os.path.relpath(match, base)}\0{file_hash(match, store)}\n".encode())
        return digest.hexdigest()
    if path.endswith("/"):
        if not os.path.isdir(path):
            return None
        digest = hashlib.sha256()
        for folder, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(folder, name)
                digest.update(f"{os.path.relpath(full, path)}\0{file_hash(full, store)}\n".encode())
        return digest.hexdigest()
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not stat_kinds.S_ISREG(stat.st_mode):
        return f"special:{paths.special_kind(stat.st_mode)}"  # preflight reports it; its content is never read
    cached = store.cached_hash(path, stat.st_size, stat.st_mtime_ns)
    if cached:
        return cached
    try:
        # non-blocking: a file swapped for a FIFO since the stat does not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat_kinds.S_ISREG(os.fstat(fd).st_mode):
            return f"special:{paths.special_kind(os.fstat(fd).st_mode)}"
        digest = hashlib.sha256()
        deadline = time.monotonic() + HASH_SECONDS
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            if time.monotonic() > deadline:
                return f"stat:{stat.st_size}:{stat.st_mtime_ns}"
    store.cache_hash(path, stat.st_size, stat.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as the store keeps them (JSON; anything JSON cannot hold as its repr)."""
    loaded: dict[str, Any] = json.loads(json.dumps(values, default=repr, sort_keys=True))
    return loaded


def task_fingerprint(task: Task, store: Store, relative: Relative) -> dict[str, Any]:
    """What decides whether `task` must run: code, parameter values, input contents, named upstream runs."""
    upstream = {}
    for other in task.upstream_tasks:  # the instances its `upstream` names
        last = store.last_success(other.base, jsonable(other.params))
        upstream[other.name] = last[0] if last else None
    return {
        "code": code_hash(task.spec.code_cells, task.spec.kernel),
        "params": jsonable(task.params),
        "inputs": {relative(p): file_hash(p, store) for p in task.input_paths},
        "upstream": upstream,
    }


def output_hashes(task: Task, store: Store, relative: Relative) -> dict[str, str | None]:
    return {relative(p): file_hash(p, store) for p in task.output_paths}


def stale_reasons(
    current: dict[str, Any],
    outputs_now: dict[str, str | None],
    previous: dict[str, Any] | None,
    pending_inputs: Collection[str] = (),
    pending_upstream: Collection[str] = (),
) -> list[str]:
    """Why a task must run, in words; empty when it is up to date. Inputs in `pending_inputs` (relative paths an
    upstream task is about to rewrite) and the `upstream` instances in `pending_upstream` (about to run) cannot be
    judged yet and are left out."""
    if previous is None:
        return ["never run successfully"]
    reasons = []
    if current["code"] != previous.get("code"):
        reasons.append("code changed")
    old_params, new_params = previous.get("params", {}), current["params"]
    changed = sorted(k for k in set(old_params) | set(new_params) if old_params.get(k) != new_params.get(k))
    if changed:
        reasons.append("parameters changed: " + ", ".join(changed))
    old_inputs = previous.get("inputs", {})
    for path, digest in current["inputs"].items():
        if path in pending_inputs:
            continue
        if digest is None:
            reasons.append(f"input missing: {path}")
        elif old_inputs.get(path) != digest:
            reasons.append(f"input changed: {path}")
    for name, run_id in current["upstream"].items():
        if name not in pending_upstream and previous.get("upstream", {}).get(name) != run_id:
            reasons.append(f"upstream {name} ran again")
    old_outputs = previous.get("outputs", {})
    for path, digest in outputs_now.items():
        if digest is None:
            reasons.append(f"output missing: {path}")
        elif old_outputs.get(path) != digest:
            reasons.append(f"output changed since the last run: {path}")
    return reasons


@dataclass
class Verdict:
    """Whether a task must run, why, and the fingerprint to record if it then succeeds."""

    reasons: list[str]
    fingerprint: dict[str, Any]

    @property
    def must_run(self) -> bool:
        return bool(self.reasons)


def judge(
    task: Task,
    store: Store,
    relative: Relative,
    *,
    force: bool = False,
    pending_inputs: Collection[str] = (),
    pending_upstream: Collection[str] = (),
    checks: CheckRunner = run_check,
) -> Verdict:
    """The task against its last success: up to date (no reasons), or the reasons it must run. A task's `check`
    runs here (through `checks`), before anything is decided; `always_run` makes it never up to date."""
    current = task_fingerprint(task, store, relative)
    check = checks(task.spec.check, task.spec.notebook.parent) if task.spec.check else None
    if check is not None:
        current["check"] = check.digest
    if force:
        return Verdict(["--force"], current)
    # the success with these parameter values, else the latest (its reasons then name the values that changed)
    # (fingerprints are kept per task and parameter values: each instance of a grid has its own)
    last = store.last_success(task.base, current["params"]) or store.last_success(task.base)
    previous = last[1] if last else None
    outputs = output_hashes(task, store, relative)
    reasons = stale_reasons(current, outputs, previous, pending_inputs, pending_upstream)
    if check is not None and previous is not None:
        if check.digest is None:
            reasons.append(f"check failed: {check.shown}")
        elif previous.get("check") != check.digest:
            reasons.append(f"check changed: {check.shown}")
    if task.spec.always_run and previous is not None:
        reasons.append("always_run is set")
    return Verdict(reasons, current)


@dataclass
class Status:
    """A task judged outside any run (`nbflow status`, the panels): its status, why, and its last run."""

    name: str
    status: TaskStatus
    reasons: list[str] = field(default_factory=list)
    last_run: str | None = None
    last_instance: str | None = None  # its name in `last_run` (where a run grid named it as an instance)
    last_state: TaskState | None = None
    duration_s: float | None = None


def status(pipeline: Pipeline, store: Store) -> dict[str, Status]:
    """Every task judged with the parameter values in force: up to date, stale (why), never run, or failed."""
    relative = pipeline.project.relative
    last_runs = store.last_task_runs()
    by_task: dict[str, list[TaskRun]] = {}
    for entry in last_runs.values():
        by_task.setdefault(entry.task, []).append(entry)
    result: dict[str, Status] = {}
    for name, task in pipeline.tasks.items():
        last = last_runs.get(name) or _same_values(task, by_task.get(task.base, []))
        reasons: list[str] = []
        if last is not None and last.state is TaskState.FAILED:
            judged = TaskStatus.FAILED
            reasons = [f"last run failed: {last.error.ename}: {last.error.evalue}"] if last.error else []
        elif store.last_success(task.base) is None:
            judged = TaskStatus.NEVER_RUN
        else:
            reasons = judge(task, store, relative, checks=STATUS_CHECKS.run).reasons
            reasons += [
                f"upstream {up} is {result[up].status.value.replace('_', ' ')}"
                for up in pipeline.graph.predecessors(name)
                if result[up].status is not TaskStatus.UP_TO_DATE
            ]
            judged = TaskStatus.STALE if reasons else TaskStatus.UP_TO_DATE
        result[name] = Status(
            name,
            judged,
            reasons,
            last_run=last.run_id if last else None,
            last_instance=last.name if last else None,
            last_state=last.state if last else None,
            duration_s=last.duration_s if last else None,
        )
    return result


def _same_values(task: Task, entries: list[TaskRun]) -> TaskRun | None:
    """The latest run of an instance of the task with this task's values for its grid names: the instance a run
    grid made that did this task's work (`clean[report_date=2026-11-24]` for `clean` with that default)."""
    values = jsonable(task.params)
    matching = [e for e in entries if e.grid and all(values.get(k) == v for k, v in e.grid.items())]
    return max(matching, key=lambda e: e.run_id or "") if matching else None  # run ids sort by start time
