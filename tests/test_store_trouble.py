"""A store that is damaged, cut short, empty, a folder, or read-only: a clear message and exit 2, never a bug, never
silently a new history; read-only, the reading commands still work."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import run_cli, write_notebook

from nbflow.errors import StoreDamaged
from nbflow.store import Store


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one run in its store, its write-ahead log as the run left it."""
    root = tmp_path_factory.mktemp("ran")
    (root / "nbflow.toml").write_text("")
    write_notebook(root / "a.ipynb", 'outputs = ["a.txt"]', "open(outputs[0], 'w').write('a')")
    assert run_cli("run", str(root)).returncode == 0
    return root


@pytest.fixture
def copy(ran: Path, tmp_path: Path) -> Path:
    shutil.copytree(ran, tmp_path / "p")
    return tmp_path / "p"


def checkpointed(project: Path) -> Path:
    """The store with its log folded into the file (as when every connection closed cleanly)."""
    db = project / ".nbflow" / "nbflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    return db


def empty(project: Path) -> str:
    db = checkpointed(project)
    db.write_bytes(b"")
    return "is damaged: it is empty (0 bytes)"


def cut_to_a_third(project: Path) -> str:
    db = checkpointed(project)
    os.truncate(db, db.stat().st_size // 3)
    return "is damaged: it is cut short"


def log_lost_and_cut(project: Path) -> str:
    """The file as a run leaves it (its history still in the log), the log deleted and the file cut."""
    db = project / ".nbflow" / "nbflow.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    os.truncate(db, db.stat().st_size // 3)
    return "is damaged: it is cut short"


def garbled_pages(project: Path) -> str:
    """A whole header, pages after it overwritten: found only when a query reads them."""
    db = checkpointed(project)
    data = bytearray(db.read_bytes())
    data[4096:] = bytes(len(data) - 4096)
    data[4096 : 4096 * 3] = os.urandom(4096 * 2)
    db.write_bytes(bytes(data))
    return "is damaged: database disk image is malformed"


def not_a_database(project: Path) -> str:
    db = checkpointed(project)
    db.write_bytes(os.urandom(20000))
    return "is damaged: it is not an SQLite database"


def a_folder(project: Path) -> str:
    db = checkpointed(project)
    db.unlink()
    db.mkdir()
    return "cannot be used (it is not a file"


@pytest.mark.parametrize(
    "damage",
    [empty, cut_to_a_third, log_lost_and_cut, garbled_pages, not_a_database, a_folder],
    ids=lambda f: f.__name__,
)
def test_a_damaged_store_is_a_clear_error_and_is_left_as_it_is(copy: Path, damage: Callable[[Path], str]):
    expected = damage(copy)
    db = copy / ".nbflow" / "nbflow.db"
    before = db.read_bytes() if db.is_file() else None
    for command in (["runs"], ["status"], ["run"]):
        result = run_cli(*command, str(copy))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert expected in result.stderr and str(db) in result.stderr, result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr
        assert "no runs yet" not in result.stdout
    assert (db.read_bytes() if db.is_file() else None) == before  # never replaced by a new, empty store
    assert not (copy / "a.txt").exists() or (copy / "a.txt").read_text() == "a"


@pytest.fixture
def read_only_store(copy: Path) -> Iterator[Path]:
    """The project's .nbflow on a read-only bind mount (chmod does not stop root, which these tests may run as)."""
    store = copy / ".nbflow"
    if subprocess.run(["mount", "--bind", str(store), str(store)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only mount here (mount --bind needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True, capture_output=True)
        yield copy
    finally:
        subprocess.run(["umount", str(store)], check=True)


@pytest.mark.parametrize("log", ["kept", "folded"])
def test_a_read_only_store_can_be_read_and_refuses_to_run(copy: Path, log: str, request: pytest.FixtureRequest):
    if log == "folded":  # no log and no shared-memory file, which SQLite cannot make on a read-only mount
        checkpointed(copy)
    project = request.getfixturevalue("read_only_store")
    for command in (["runs"], ["show", "latest"], ["status"], ["graph"]):
        result = run_cli(*command, str(project))
        assert result.returncode == 0, (command, result.stderr)
    assert "succeeded" in run_cli("runs", str(project)).stdout
    result = run_cli("run", str(project), "--force")
    assert result.returncode == 2
    assert "is read-only" in result.stderr and "to run, make" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_stores_made_by_several_processes_at_once_are_one_whole_store(tmp_path: Path):
    """A store is made whole under another name and linked into place: no process ever sees it empty (which is
    reported as damage) or half made."""
    code = "import sys; from nbflow.store import Store; Store(__import__('pathlib').Path(sys.argv[1])).close()"
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / ".nbflow")]) for _ in range(6)]
    assert [p.wait(timeout=60) for p in processes] == [0] * 6
    assert Store(tmp_path / ".nbflow").runs() == []
    assert sorted(p.name for p in (tmp_path / ".nbflow").iterdir() if not p.name.startswith("nbflow.db")) == []


def test_the_python_api_raises_the_store_error(copy: Path):
    empty(copy)
    with pytest.raises(StoreDamaged, match="empty"):
        Store(copy / ".nbflow")
