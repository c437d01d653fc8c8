"""Shared fixtures: notebooks written with nbformat into temporary projects, and the nbflow command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from nbflow import processes

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"


def write_notebook(
    path: Path,
    parameters: str | None,
    *cells: str,
    metadata: dict | None = None,
    kernel: str = "python3",
    markdown: str | None = None,
) -> Path:
    """Write a v4 notebook: an optional markdown cell, the `parameters` cell (if given), then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    if markdown is not None:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    if metadata:
        nb.metadata.update(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder marked by an nbflow.toml."""
    (tmp_path / "nbflow.toml").write_text("")
    return tmp_path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real `nbflow` command in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nbflow", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def needs_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared notebook corpus is not here ({CORPUS}); it lives beside the repository in ../shared")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (nbflow's own check, by psutil)."""
    return processes.alive(pid)


@pytest.fixture
def marker(monkeypatch) -> str:
    """A NAME=VALUE of this test's own in the environment of every process it starts; kernels inherit it, forked
    or not, and keep it when orphaned (see test_failures.processes_with)."""
    marker = f"NBFLOW_TEST_MARK={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    return marker
