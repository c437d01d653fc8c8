"""A first look at a task's input or output file, bounded whatever the file holds: the first rows of a table (CSV,
TSV, JSON, JSON lines, Parquet), an image as a data URL, the first lines of a text.

Nothing here reads more than READ_LIMIT bytes of a text table or TEXT_LIMIT of a text, keeps more than ROWS rows
of COLUMNS columns with cells of CELL_CHARS characters, or embeds an image over IMAGE_LIMIT bytes; what is left out
is said in the preview's `note`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from typing import Any

from nbflow.server.errors import ApiError
from nbflow.shapes import FilePreview, PreviewKind

ROWS = 50
COLUMNS = 50
CELL_CHARS = 200
READ_LIMIT = 1024 * 1024  # of a CSV or JSON-lines file: its first rows are in there
JSON_LIMIT = 8 * 1024 * 1024  # a JSON document is read whole: past this it is not previewed
TEXT_LIMIT = 64 * 1024
TEXT_LINES = 200
IMAGE_LIMIT = 2 * 1024 * 1024

TABLES = {".csv": ",", ".tsv": "\t"}
IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
IMAGES[".svg"] = "image/svg+xml"  # shown in an <img>, where an SVG's scripts never run
TEXTS = {".txt", ".log", ".md", ".html", ".sql", ".yaml", ".yml", ".toml", ".xml"}


def kind_of(path: str) -> PreviewKind | None:
    """What a preview of the file at `path` would show, by its suffix; None when nothing."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in TABLES or suffix in (".json", ".jsonl", ".ndjson", ".parquet"):
        return "table"
    if suffix in IMAGES:
        return "image"
    if suffix in TEXTS:
        return "text"
    return None


def preview(path: str, shown_as: str) -> FilePreview:
    """The preview of the file at `path` (absolute), named `shown_as`; ApiError when it cannot be had."""
    kind = kind_of(path)
    if kind is None:
        raise ApiError(415, f"{shown_as}: nbflow previews tables (CSV, TSV, JSON, Parquet), images and text files.")
    if not os.path.isfile(path):
        raise ApiError(404, f"{shown_as} does not exist (yet): the task writes it when it runs.")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix in TABLES:
            return _csv(path, shown_as, TABLES[suffix])
        if suffix in (".jsonl", ".ndjson"):
            return _json_lines(path, shown_as)
        if suffix == ".json":
            return _json(path, shown_as)
        if suffix == ".parquet":
            return _parquet(path, shown_as)
        if kind == "image":
            return _image(path, shown_as, IMAGES[suffix])
        return _text(path, shown_as)
    except OSError as exc:
        raise ApiError(500, f"{shown_as} cannot be read: {exc.strerror or exc}.") from None


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _table(shown_as: str, columns: list[str], rows: list[list[Any]], more: bool, total: int | None) -> FilePreview:
    notes = []
    if len(columns) > COLUMNS:
        notes.append(f"the first {COLUMNS} of {len(columns)} columns")
    if more:
        notes.append(f"the first {ROWS} rows" + (f" of {total:,}" if total is not None else ""))
    return FilePreview(
        path=shown_as,
        kind="table",
        columns=[_cell(c) for c in columns[:COLUMNS]],
        rows=[[_cell(v) for v in row[:COLUMNS]] for row in rows[:ROWS]],
        total_rows=total,
        note="; ".join(notes) or None,
    )


def _head(path: str, limit: int) -> tuple[str, bool]:
    """The file's first `limit` bytes as text, and whether there is more."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _csv(path: str, shown_as: str, delimiter: str) -> FilePreview:
    text, cut = _head(path, READ_LIMIT)
    lines = text.splitlines(keepends=True)
    if cut and lines:
        lines = lines[:-1]  # the last line may be cut in two
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)
    rows = [row for _, row in zip(range(ROWS + 2), reader)]
    if not rows:
        return FilePreview(path=shown_as, kind="table", note="the file is empty")
    header, body = rows[0], rows[1:]
    return _table(shown_as, header, body, len(body) > ROWS or cut, None)


def _records(records: list[Any], shown_as: str, more: bool, total: int | None) -> FilePreview:
    """Objects as rows (their keys as columns, in the order first seen), or plain values in one column."""
    if records and all(isinstance(r, dict) for r in records[: ROWS + 1]):
        columns: dict[str, None] = {}
        for record in records[:ROWS]:
            columns.update(dict.fromkeys(str(k) for k in record))
        names = list(columns)
        rows = [[record.get(name, "") for name in names] for record in records[:ROWS]]
        return _table(shown_as, names, rows, more, total)
    return _table(shown_as, ["value"], [[r] for r in records[:ROWS]], more, total)


def _json(path: str, shown_as: str) -> FilePreview:
    if os.path.getsize(path) > JSON_LIMIT:
        return _text(path, shown_as, note=f"over {JSON_LIMIT // (1024 * 1024)} MiB: its first lines as text")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"{shown_as} is not valid JSON: {exc}.") from None
    if isinstance(data, list):
        return _records(data, shown_as, len(data) > ROWS, len(data))
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        # columns as lists (pandas' orient="list"): one row per position
        total = max(len(v) for v in data.values())
        rows = [[v[i] if i < len(v) else "" for v in data.values()] for i in range(min(total, ROWS))]
        return _table(shown_as, [str(k) for k in data], rows, total > ROWS, total)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return _bounded_text(shown_as, text, None)


def _json_lines(path: str, shown_as: str) -> FilePreview:
    text, cut = _head(path, READ_LIMIT)
    lines = [line for line in text.splitlines() if line.strip()]
    if cut and lines:
        lines = lines[:-1]
    records = []
    for number, line in enumerate(lines[: ROWS + 1], 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            raise ApiError(422, f"{shown_as}, line {number}: not valid JSON.") from None
    return _records(records, shown_as, len(lines) > ROWS or cut, None)


def _parquet(path: str, shown_as: str) -> FilePreview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ApiError(
            501, f"{shown_as}: previewing Parquet needs pyarrow in the server's environment (pip install pyarrow)."
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        batch = next(parquet.iter_batches(batch_size=ROWS, columns=names[:COLUMNS]), None)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet, or damaged
        raise ApiError(422, f"{shown_as} cannot be read as Parquet: {exc}.") from None
    rows = batch.to_pylist() if batch is not None else []
    total = parquet.metadata.num_rows
    table = _table(shown_as, names, [[r.get(n, "") for n in names[:COLUMNS]] for r in rows], total > ROWS, total)
    if len(names) > COLUMNS:
        table.columns = names[:COLUMNS]
    return table


def _image(path: str, shown_as: str, media_type: str) -> FilePreview:
    size = os.path.getsize(path)
    if size > IMAGE_LIMIT:
        return FilePreview(
            path=shown_as,
            kind="image",
            note=f"{size / (1024 * 1024):.1f} MiB: over the {IMAGE_LIMIT // (1024 * 1024)} MiB shown here",
        )
    with open(path, "rb") as fh:
        encoded = base64.b64encode(fh.read()).decode("ascii")
    return FilePreview(path=shown_as, kind="image", data_url=f"data:{media_type};base64,{encoded}")


def _text(path: str, shown_as: str, note: str | None = None) -> FilePreview:
    text, cut = _head(path, TEXT_LIMIT)
    return _bounded_text(shown_as, text, note or (f"the first {TEXT_LIMIT // 1024} KiB" if cut else None))


def _bounded_text(shown_as: str, text: str, note: str | None) -> FilePreview:
    if len(text) > TEXT_LIMIT:
        text, note = text[:TEXT_LIMIT], note or f"the first {TEXT_LIMIT // 1024} KiB"
    lines = text.splitlines()
    if len(lines) > TEXT_LINES:
        text = "\n".join(lines[:TEXT_LINES])
        note = note or f"the first {TEXT_LINES} lines"
    return FilePreview(path=shown_as, kind="text", text=text, note=note)
