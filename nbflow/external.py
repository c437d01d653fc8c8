"""State the file hashes cannot see: a task's `check`, run before the run decides whether the task is up to date.

A check is a shell command (`sqlite3 ../shop.db 'select max(id) from sales'`) or `python:module:function` (the
function's return value, printed); it runs in the notebook's folder, as the kernel would, and what it prints joins
the task's fingerprint, so the task reruns when the output changes. A check that fails or hangs cannot say the task
is up to date, so the task runs.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHECK_TIMEOUT = 60.0  # seconds a check may take
OUTPUT_LIMIT = 1 << 20  # bytes of a check's output that count (and are kept in memory)
_PYTHON_PREFIX = "python:"
_CALL = (
    "import importlib, sys\n"
    "sys.path.insert(0, '')\n"
    "module, _, function = sys.argv[1].rpartition(':')\n"
    "print(repr(getattr(importlib.import_module(module), function)()))\n"
)


@dataclass(frozen=True)
class CheckResult:
    digest: str | None  # of the output; None when the check failed
    shown: str  # a short line for people: the output's start, or why it failed


def run_check(check: str, folder: Path, timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """Run a task's check in its notebook's folder."""
    if check.startswith(_PYTHON_PREFIX):
        target = check[len(_PYTHON_PREFIX) :].strip()
        if ":" not in target:
            return CheckResult(None, f"{check!r} must be python:module:function")
        command: list[str] | str = [sys.executable, "-c", _CALL, target]
    else:
        command = check
    try:
        done = subprocess.run(command, shell=isinstance(command, str), cwd=folder, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CheckResult(None, f"the check took longer than {timeout:g} s")
    except OSError as exc:
        return CheckResult(None, f"the check could not start ({exc.strerror})")
    if done.returncode != 0:
        last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        detail = f": {last[-1][:200]}" if last else ""
        return CheckResult(None, f"the check exited with code {done.returncode}{detail}")
    output = done.stdout[:OUTPUT_LIMIT]
    first = output.decode(errors="replace").strip().splitlines()
    return CheckResult(hashlib.sha256(output).hexdigest(), (first[0][:80] if first else "(no output)"))


class CheckCache:
    """Results of recent checks, for readers that judge often (a panel's status): a check runs at most once per
    `max_age` seconds for them. Runs never use it: they run each check as they judge."""

    def __init__(self, max_age: float = 30.0):
        self.max_age = max_age
        self._results: dict[tuple[str, Path], tuple[float, CheckResult]] = {}
        self._lock = threading.Lock()

    def run(self, check: str, folder: Path) -> CheckResult:
        key = (check, folder)
        with self._lock:
            cached = self._results.get(key)
        if cached and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        result = run_check(check, folder)
        with self._lock:
            self._results[key] = (time.monotonic(), result)
        return result


STATUS_CHECKS = CheckCache()
