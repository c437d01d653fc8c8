"""Reports: a succeeded task's executed notebook as an HTML page for people who never open Jupyter (nbconvert),
or a PDF of that page, printed by headless Chromium.

A code cell shows its outputs only, unless tagged `show-input`; cells tagged `remove-cell` are left out, and so is
the cell papermill injects the parameters in; `remove-output` and `remove-input` drop a cell's outputs or its code.
Outputs are kept as nbconvert keeps them: images, HTML with its scripts (plotly's, for one), and the ipywidgets
state saved in the notebook. Each file is written beside its place and renamed into it, so a reader never sees half
a report and a write that fails leaves the previous report as it was.

nbconvert's own PDF exporter (webpdf) starts only a browser Playwright downloads; Chromium prints the same page with
its `--print-to-pdf`, so the PDF is the HTML report as a browser prints it.

nbconvert takes long to import and to make ready: the run loop imports this module, and calls `warm_up`, in a
thread of its own once a run that writes reports submits its first task.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters import markdown2html_mistune
from nbconvert.preprocessors import TagRemovePreprocessor

from nbflow.grids import format_value
from nbflow.preflight import chromium

SHOW_INPUT = "show-input"
REMOVE_CELL = ("remove-cell", "injected-parameters")  # papermill tags the cell it injects `injected-parameters`
REMOVE_OUTPUT = "remove-output"
REMOVE_INPUT = "remove-input"
TITLE_CHARS = 200  # a page title past this is cut: a heading is a line, not a paragraph
HEADING_SEARCH_CHARS = 1_000_000  # of each cell's page searched for the heading (an output may be megabytes)
PRINT_TIMEOUT = 120.0  # seconds for Chromium to print one report
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-pdf-header-footer")

# an exporter is slow to make ready and fast to reuse, but sets filters on itself for each notebook: one at a time
_converting = threading.Lock()


class ReportError(Exception):
    """The report could not be made or written; the message says why, for the task's error."""


class ReportCells(TagRemovePreprocessor):
    """nbconvert's removal by tags, with a code cell's input hidden unless it is tagged `show-input`."""

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        cell, resources = super().preprocess_cell(cell, resources, index)  # type: ignore[no-untyped-call]
        if cell.cell_type == "code" and SHOW_INPUT not in cell.get("metadata", {}).get("tags", []):
            cell.metadata["transient"] = {"remove_source": True}  # as `remove_input_tags` marks a cell
        return cell, resources


def write_report(
    executed: Path, name: str, places: Sequence[Path], images_from: Path, grid: Mapping[str, Any] | None = None
) -> None:
    """Convert the executed notebook and write it at each of `places`, in order, each made at once by a rename.
    Markdown cells' relative images are looked up from `images_from` (the source notebook's folder) and embedded.
    The page's title is `report_title`'s, from the instance's `name` and `grid` values."""
    try:
        notebook = nbformat.read(executed, as_version=4)
    except (OSError, ValueError) as exc:  # nbformat's read errors are ValueErrors
        raise ReportError(f"the executed notebook {executed} cannot be read ({exc})") from None
    notebook.metadata["title"] = report_title(notebook, name, grid or {})
    resources: dict[str, Any] = {"metadata": {"name": name, "path": str(images_from)}}
    try:
        with _converting:
            html, _ = _exporter().from_notebook_node(notebook, resources)
    except Exception as exc:  # nbconvert raises many kinds (a template, a filter, an output it cannot render)
        raise ReportError(f"nbconvert could not convert the executed notebook: {type(exc).__name__}: {exc}") from None
    for place in places:
        try:
            if place.suffix.lower() == ".pdf":
                _write_at_once(place, lambda temporary: _print_pdf(html, temporary))
            else:
                _write_at_once(place, lambda temporary: temporary.write_text(html, encoding="utf-8"))
        except OSError as exc:
            raise ReportError(f"{place}: {exc.strerror or exc}") from None


def report_title(notebook: Any, name: str, grid: Mapping[str, Any]) -> str:
    """What a browser's tab and history call a report: the notebook's own `title` (its metadata) if it has one,
    else the first top-level heading a reader of the report sees (a Markdown cell's, or one a cell displayed), else
    the instance's name; with the instance's grid values after it, so that the reports of a grid tell apart."""
    title = str(notebook.metadata.get("title") or "").strip() or _first_heading(notebook)
    if not title:
        return name
    values = ", ".join(f"{key}={format_value(value)}" for key, value in grid.items())
    return f"{title} ({values})" if values else title


def _first_heading(notebook: Any) -> str:
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag in tags for tag in REMOVE_CELL):
            continue
        shown: list[str] = []
        if cell.cell_type == "markdown":
            shown.append(markdown2html_mistune(cell.source))
        elif cell.cell_type == "code" and REMOVE_OUTPUT not in tags:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "text/html" in data:
                    shown.append("".join(data["text/html"]))
                elif "text/markdown" in data:
                    shown.append(markdown2html_mistune("".join(data["text/markdown"])))
        for page in shown:
            finder = _HeadingFinder()
            finder.feed(page[:HEADING_SEARCH_CHARS])
            if finder.text.strip():
                return " ".join(finder.text.split())[:TITLE_CHARS]
    return ""


class _HeadingFinder(HTMLParser):
    """The text of the first <h1> of an HTML fragment, without its ¶ anchor link."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self._depth = 0  # inside the first h1: 1, inside an anchor in it: 2
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if tag == "h1" and self._depth == 0:
            self._depth = 1
        elif tag == "a" and self._depth == 1 and ("class", "anchor-link") in attrs:
            self._depth = 2

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._depth == 2:
            self._depth = 1
        elif tag == "h1" and self._depth == 1:
            self._depth, self._done = 0, True

    def handle_data(self, data: str) -> None:
        if self._depth == 1:
            self.text += data


def _write_at_once(place: Path, write: Callable[[Path], object]) -> None:
    """`write` the file beside `place`, then rename it into place: readers see the old file or the new one."""
    place.parent.mkdir(parents=True, exist_ok=True)
    temporary = place.with_name(f".{place.name}.{uuid.uuid4().hex[:12]}.tmp")  # same folder: the rename is atomic
    try:
        write(temporary)
        os.replace(temporary, place)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _print_pdf(html: str, target: Path) -> None:
    """Print the page to `target` as a PDF with headless Chromium (its own profile, so prints run side by side)."""
    browser = chromium()
    if browser is None:  # preflight found one; it went away since
        raise ReportError("no Chromium to print the PDF with (install it, or set NBFLOW_CHROMIUM to its path)")
    with tempfile.TemporaryDirectory(prefix="nbflow-print-") as scratch:
        page = Path(scratch) / "report.html"
        page.write_text(html, encoding="utf-8")
        command = [
            browser,
            *CHROMIUM_ARGS,
            f"--user-data-dir={Path(scratch) / 'profile'}",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=PRINT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the PDF within {PRINT_TIMEOUT:.0f} s") from None
        if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ReportError(
                f"Chromium ({browser}) did not print the PDF (exit {result.returncode})"
                + (f": {said[-1]}" if said else "")
            )


def warm_up() -> None:
    """Make the exporter ready: its templates are compiled at its first conversion (about half a second)."""
    with _converting:
        _exporter().from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))


@functools.cache
def _exporter() -> HTMLExporter:
    exporter = HTMLExporter(
        template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True
    )
    exporter.register_preprocessor(
        ReportCells(  # type: ignore[no-untyped-call]
            remove_cell_tags=set(REMOVE_CELL),
            remove_all_outputs_tags={REMOVE_OUTPUT},
            remove_input_tags={REMOVE_INPUT},
        ),
        enabled=True,
    )
    return exporter
