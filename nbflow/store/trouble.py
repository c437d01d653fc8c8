"""Trouble with the store's file, told as nbflow's errors: damaged, cut short, empty, read-only, on a full disk.

None of this is a bug in nbflow, and none of it may pass for an empty history. `check_file` looks at the file before
SQLite opens it (SQLite takes an empty file for a new database, and reads a file cut short as if the pages it lost
were empty); it costs one `stat` and the 100-byte header, never a scan. `Connection` is the connection every
`Store` uses: any SQLite error that comes from the file or the disk, wherever a query meets it, becomes a
`StoreError` subclass naming the path and what to do. A new store is made under a temporary name and linked into
place whole, so a store file is never empty, not even for a moment, and an empty one is damage to report.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbflow.errors import StoreDamaged, StoreError, StoreFull, StoreReadOnly, StoreUnavailable

HEADER = b"SQLite format 3\x00"


def check_file(path: Path) -> None:
    """Raise StoreDamaged when `path` (which need not exist) is no whole SQLite database."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreUnavailable(_unavailable(path, exc.strerror or str(exc))) from None
    if not path.is_file():
        raise StoreUnavailable(_unavailable(path, "it is not a file (a folder?)"))
    if _wal_size(path) > 0:
        return  # the database is the file and its write-ahead log together: SQLite checks them as it reads
    if size == 0:
        raise StoreDamaged(_damaged(path, "it is empty (0 bytes), so the history it held is lost"))
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise StoreUnavailable(_unavailable(path, exc.strerror or str(exc))) from None
    if not header.startswith(HEADER) or len(header) < 100:
        raise StoreDamaged(_damaged(path, "it is not an SQLite database"))
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count holds when the change counter matches the one it was written with (SQLite's rule).
    if header[24:28] == header[92:96] and pages * page_size > size:
        raise StoreDamaged(_damaged(path, f"it is cut short ({size:,} of its {pages * page_size:,} bytes)"))


def create(path: Path, make: Callable[[sqlite3.Connection], None]) -> None:
    """Make a new store at `path` with `make` (the schema), whole or not at all; someone else's that appeared
    meanwhile is kept."""
    temporary = path.with_name(f".{path.name}.new-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with translated(path):
            connection = sqlite3.connect(temporary, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("BEGIN IMMEDIATE")
                make(connection)
                connection.execute("COMMIT")
            finally:
                connection.close()  # the last connection: the log is folded into the file and removed
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _from_os_error(path, exc) from None
    finally:
        for leftover in (temporary, *(temporary.with_name(temporary.name + s) for s in ("-wal", "-shm"))):
            try:
                leftover.unlink()
            except OSError:
                pass


def writable(path: Path) -> bool:
    """The store's folder and file can be written (a read-only mount says no, even to root)."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def read_only_uri(path: Path, immutable: bool = False) -> str:
    """A read-only SQLite URI; `immutable` where SQLite cannot even make its shared-memory file (no log exists,
    and nobody can write the file: it is complete as it is)."""
    from urllib.parse import quote

    return f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")


def for_store(path: Path, exc: BaseException) -> StoreError | None:
    """The StoreError an SQLite error from the store's file or disk stands for; None for any other error."""
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) or isinstance(
        exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError
    ):
        return None
    text, name = str(exc).lower(), str(getattr(exc, "sqlite_errorname", ""))
    if "database or disk is full" in text or name == "SQLITE_FULL":
        return StoreFull(_full(path, str(exc)))
    if "readonly" in text or name.startswith("SQLITE_READONLY"):
        return StoreReadOnly(
            f"{path} is read-only ({exc}): commands that only read (runs, show, status, graph) work; to run, make "
            f"{path.parent} writable"
        )
    if "malformed" in text or "not a database" in text or name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return StoreDamaged(_damaged(path, str(exc)))
    if "unable to open" in text or "disk i/o error" in text or name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
        return StoreUnavailable(_unavailable(path, str(exc)))
    return None


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise what `for_store` makes of an SQLite error inside the block (other errors as they are)."""
    try:
        yield
    except sqlite3.Error as exc:
        error = for_store(path, exc)
        if error is None:
            raise
        raise error from exc


def _from_os_error(path: Path, exc: OSError) -> StoreError:
    import errno

    if exc.errno == errno.ENOSPC:
        return StoreFull(_full(path, exc.strerror or str(exc)))
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnly(f"{path} cannot be created ({exc.strerror}): make {path.parent} writable")
    return StoreUnavailable(_unavailable(path, exc.strerror or str(exc)))


class Cursor(sqlite3.Cursor):
    """A cursor whose every step raises StoreError for trouble with the file (rows are read as they are fetched,
    so a damaged page may show only there)."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        with translated(self.connection.store_path):  # type: ignore[attr-defined]
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        with translated(self.connection.store_path):  # type: ignore[attr-defined]
            return super().executemany(sql, parameters)

    def fetchone(self) -> Any:
        with translated(self.connection.store_path):  # type: ignore[attr-defined]
            return super().fetchone()

    def fetchall(self) -> list[Any]:
        with translated(self.connection.store_path):  # type: ignore[attr-defined]
            return super().fetchall()

    def __next__(self) -> Any:
        with translated(self.connection.store_path):  # type: ignore[attr-defined]
            return super().__next__()


class Connection(sqlite3.Connection):
    """The store's connection: queries run on `Cursor`s (see there). Opened with `sqlite3.connect(...,
    factory=Connection)`, then given its `store_path` (the path to name in messages)."""

    store_path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self.cursor(Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        return self.cursor(Cursor).executemany(sql, parameters)


def _wal_size(path: Path) -> int:
    try:
        return path.with_name(path.name + "-wal").stat().st_size
    except OSError:
        return 0


def _damaged(path: Path, what: str) -> str:
    return (
        f"{path} is damaged: {what}. Move it aside (the executed notebooks under {path.parent / 'runs'} are kept) "
        "and nbflow starts a new history; `sqlite3 FILE .recover` may save some of the old one."
    )


def _unavailable(path: Path, what: str) -> str:
    return f"{path} cannot be used ({what}): it must be a file nbflow can read and write; check the disk and path."


def _full(path: Path, what: str) -> str:
    return (
        f"the disk holding {path} is full ({what}): free some space, then run again; the history written so far is "
        "kept."
    )
