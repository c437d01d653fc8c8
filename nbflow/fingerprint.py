"""Fingerprints for incremental runs: code, kernel, parameters, input and output contents (SPEC section 3).

A task is up to date when its fingerprint equals the one of its last successful run and its outputs are still
there, unchanged. Code is hashed from code cells only, each as its AST when it parses (so comments and whitespace
do not count); markdown never counts. File contents are hashed with SHA-256, cached in the store by size and
mtime so a big unchanged input is not read again.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from typing import Any

from nbflow.graph import Task
from nbflow.store import Store


def code_hash(code_cells: tuple[str, ...], kernel: str) -> str:
    digest = hashlib.sha256(f"kernel={kernel}\n".encode())
    for source in code_cells:
        try:
            normal = ast.dump(ast.parse(source))
        except (SyntaxError, ValueError):
            normal = "\n".join(line.rstrip() for line in source.strip().splitlines())
        digest.update(hashlib.sha256(normal.encode()).digest())
    return digest.hexdigest()


def file_hash(path: str, store: Store) -> str | None:
    """SHA-256 of a file's content (a folder: of its files' names and contents); None when it does not exist."""
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
    cached = store.cached_hash(path, stat.st_size, stat.st_mtime_ns)
    if cached:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    store.cache_hash(path, stat.st_size, stat.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=repr, sort_keys=True))


def task_fingerprint(task: Task, store: Store, relative) -> dict[str, Any]:
    """What decides whether `task` must run: code, parameter values, input contents, named upstream runs."""
    upstream = {}
    for name in task.spec.upstream:
        last = store.last_success(name)
        upstream[name] = last[0] if last else None
    return {
        "code": code_hash(task.spec.code_cells, task.spec.kernel),
        "params": _jsonable(task.params),
        "inputs": {relative(p) + ("/" if p.endswith("/") else ""): file_hash(p, store) for p in task.input_paths},
        "upstream": upstream,
    }


def output_hashes(task: Task, store: Store, relative) -> dict[str, str | None]:
    return {relative(p) + ("/" if p.endswith("/") else ""): file_hash(p, store) for p in task.output_paths}


def stale_reasons(
    current: dict[str, Any], outputs_now: dict[str, str | None], previous: dict[str, Any] | None
) -> list[str]:
    """Why a task must run, in words; empty when it is up to date."""
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
        if digest is None:
            reasons.append(f"input missing: {path}")
        elif old_inputs.get(path) != digest:
            reasons.append(f"input changed: {path}")
    for name, run_id in current["upstream"].items():
        if previous.get("upstream", {}).get(name) != run_id:
            reasons.append(f"upstream {name} ran again")
    old_outputs = previous.get("outputs", {})
    for path, digest in outputs_now.items():
        if digest is None:
            reasons.append(f"output missing: {path}")
        elif old_outputs.get(path) != digest:
            reasons.append(f"output changed since the last run: {path}")
    return reasons
