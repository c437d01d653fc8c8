"""Fixtures of the fast tests: each test's project lives in memory where the machine offers a tmpfs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

MEMORY = Path("/dev/shm")


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh folder per test (the `project` fixture builds on it). On disk, the store's SQLite syncing its file
    at each checkpoint would take most of these tests' time; a tmpfs keeps the same files and the same SQLite."""
    if not MEMORY.is_dir():
        yield tmp_path_factory.mktemp("unit")
        return
    folder = Path(tempfile.mkdtemp(prefix="nbflow-unit-", dir=MEMORY))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
