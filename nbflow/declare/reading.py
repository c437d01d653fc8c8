"""Notebook files -> their cells and metadata, for reading declarations: `.ipynb` files and text notebooks.

An `.ipynb` is read with `json` rather than `nbformat`: importing nbformat also imports jsonschema and its format
plugins, which costs more than reading hundreds of notebooks, and resolution must stay fast (execution uses
nbformat and papermill as usual). The reader accepts nbformat v2/v3 (worksheets, `input`) and v4 (`cells`).

Text notebooks are read by jupytext: a `.py` file in the percent format (`# %%` cell markers) or with a jupytext
header, and a MyST Markdown notebook (`.md` whose front matter has a `jupytext` or `kernelspec` entry). A file
with neither is a plain module or a document, not a notebook, and is never reported. jupytext is imported only
when such a file is found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

NOTEBOOK_SUFFIX = ".ipynb"
TEXT_SUFFIXES = (".py", ".md")
SUFFIXES = (NOTEBOOK_SUFFIX, *TEXT_SUFFIXES)

# What marks a text file as a notebook, looked for in its first lines only (a module's docstring may mention them)
_HEAD_BYTES = 4096
_PERCENT_MARKER = re.compile(r"^# %%", re.MULTILINE)
_PY_HEADER = re.compile(r"\A(#!.*\n)?(# -\*-.*\n)?# ---\s*\n(# .*\n)*?#\s+jupytext:", re.MULTILINE)
_MD_HEADER = re.compile(r"\A---\s*\n(.*\n)*?(jupytext|kernelspec):", re.MULTILINE)


class Unreadable(Exception):
    """The file is not a notebook nbflow can read."""


def read_notebook_json(path: Path) -> dict[str, Any]:
    """The notebook as a dict, upgraded in shape only as far as this module needs (cells with `source`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16; save it as UTF-8)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise Unreadable(f"is not UTF-8 text{hint}") from exc
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        if "<<<<<<<" in text:
            raise Unreadable("holds git merge-conflict markers; resolve the conflict and save it again") from exc
        raise Unreadable(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(nb, dict):
        raise Unreadable("is JSON but not a notebook (the top level is not an object)")
    version = nb.get("nbformat")
    if not isinstance(version, int) or isinstance(version, bool):
        raise Unreadable("is JSON but not a notebook (no integer `nbformat` version)")
    if version == 4:
        cells = nb.get("cells")
    elif version in (2, 3):
        worksheets = nb.get("worksheets")
        if not isinstance(worksheets, list):
            raise Unreadable(f"is an nbformat v{version} notebook without worksheets")
        cells = [c for ws in worksheets if isinstance(ws, dict) for c in (ws.get("cells") or [])]
        cells = [dict(c, source=c.get("input", c.get("source", ""))) if isinstance(c, dict) else c for c in cells]
    else:
        raise Unreadable(f"has nbformat version {version}, which nbflow cannot read (v2 to v4 are supported)")
    if not isinstance(cells, list):
        raise Unreadable("is JSON but its `cells` is not a list")
    nb["cells"] = [c for c in cells if isinstance(c, dict)]
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = {}
    return nb


def is_text_notebook(path: Path) -> bool:
    """A `.py` or `.md` file that jupytext reads as a notebook (its head says so); False for plain files."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    if path.suffix == ".py":
        return bool(_PY_HEADER.search(head) or _PERCENT_MARKER.search(head))
    if path.suffix == ".md":
        return bool(_MD_HEADER.search(head))
    return False


def read_text_notebook(path: Path) -> dict[str, Any]:
    """A jupytext text notebook as a notebook dict (v4: `cells` with `source` strings, `metadata`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise Unreadable("is not UTF-8 text") from exc
    # jupytext's import pulls in nbformat and markdown parsers: paid only by projects with text notebooks
    import jupytext
    from jupytext.myst import matches_mystnb

    try:
        # jupytext tells percent from light scripts itself; a MyST notebook (a jupytext header naming the format,
        # or MyST-NB's `kernelspec` front matter and code-cell directives) must be named as such
        fmt = "md:myst" if path.suffix == ".md" and matches_mystnb(text) else path.suffix[1:]
        notebook = jupytext.reads(text, fmt=fmt)
    except Exception as exc:  # jupytext raises plain exceptions of several kinds for text it cannot read
        raise Unreadable(f"cannot be read as a text notebook by jupytext ({type(exc).__name__}: {exc})") from exc
    data: dict[str, Any] = json.loads(json.dumps(notebook))
    return data


def paired_formats(notebook: dict[str, Any]) -> list[str]:
    """The formats a notebook is paired with through jupytext (`metadata.jupytext.formats`), e.g. ["ipynb", "py"]."""
    jupytext_meta = notebook.get("metadata", {}).get("jupytext")
    formats = jupytext_meta.get("formats") if isinstance(jupytext_meta, dict) else None
    if not isinstance(formats, str):
        return []
    # "ipynb,py:percent" -> ["ipynb", "py"]; a prefix such as "notebooks//ipynb" keeps only the extension
    return [entry.split(":")[0].rsplit("/", 1)[-1].lstrip(".") for entry in formats.split(",") if entry]


def read_notebook(path: Path) -> dict[str, Any]:
    """Any notebook nbflow reads: `.ipynb` or text."""
    return read_notebook_json(path) if path.suffix == NOTEBOOK_SUFFIX else read_text_notebook(path)


def ipynb_text(path: Path) -> str:
    """The notebook as `.ipynb` JSON, whatever its file: what papermill executes (a text notebook converted by
    jupytext; the source file itself is never written)."""
    if path.suffix == NOTEBOOK_SUFFIX:
        return path.read_text(encoding="utf-8")
    return json.dumps(read_text_notebook(path))
