"""The HTML the panel shows: the framed drawing, the task tables (a grid task's instances under a row counting
them), the partition x task table of a run over a run grid, a run's label, an executed notebook and its error.

Pure functions of plain data (the store's rows, `history.status`), so they are tested without a widget.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from nbflow import palette
from nbflow.models import CellProgress, TaskError, TaskState
from nbflow.palette import FONT, LABEL_COLOR, TEXT_COLOR
from nbflow.render import summary
from nbflow.render.summary import PartitionTable, counts_text, grid_text, most_urgent, short_word
from nbflow.times import duration

ZOOMS = {"Fit": None, "50%": 0.5, "75%": 0.75, "100%": 1.0, "125%": 1.25, "150%": 1.5, "200%": 2.0}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SVG_OPEN = re.compile(r"<svg\b[^>]*>", re.S)
_VIEWBOX = re.compile(r'viewBox="([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)"')
# A box exactly as wide as the widget holding it, whatever it holds: its own width adds nothing to the widget's (an
# HTML widget's content is a flex item, which grows to hold its widest line and is then cut off by the output area),
# and what is wider than the box scrolls inside it.
FILL = "width:0;min-width:100%;box-sizing:border-box"
# Text that breaks where it must (a long name, path or error with no space in it) rather than widening its box.
WRAP = "white-space:normal;overflow-wrap:anywhere"


def svg_size(svg: str) -> tuple[float, float]:
    """The drawing's natural size (its viewBox)."""
    match = _VIEWBOX.search(svg)
    return (float(match.group(3)), float(match.group(4))) if match else (800.0, 400.0)


def framed_svg(svg: str, zoom: str = "Fit", max_height: int = 560) -> str:
    """The SVG (prolog dropped) at the chosen zoom, in a box that scrolls both ways when the drawing is bigger."""
    body = svg[svg.index("<svg") :] if "<svg" in svg else svg
    width, height = svg_size(body)
    scale = ZOOMS.get(zoom)
    if scale is None:
        size = 'style="max-width:100%;height:auto"'
        size += f' width="{width:.0f}" height="{height:.0f}"'
    else:
        size = f'width="{width * scale:.0f}" height="{height * scale:.0f}"'
    opening = _SVG_OPEN.search(body)
    if opening is not None:  # text with no <svg> tag has no size to set: it is framed as it is
        cleaned = re.sub(r'\s(width|height|style)="[^"]*"', "", opening.group(0))
        body = body.replace(opening.group(0), cleaned[:-1].rstrip("/") + f" {size}>", 1)
    return (
        f'<div class="nbflow-graph" style="overflow:auto;max-height:{max_height}px;border:1px solid #e2e8f0;'
        f'border-radius:8px;padding:8px;background:#ffffff;{FILL}">{body}</div>'
    )


def default_zoom(svg: str) -> str:
    width, _ = svg_size(svg)
    return "Fit" if width <= 1100 else "100%"


def swatch(state: str | None, text: str | None = None) -> str:
    """A task's state or status as a small coloured label (saying `text`, else the state's words)."""
    look = palette.style(state)
    return (
        f'<span style="display:inline-block;padding:0 8px;line-height:18px;font-size:12px;border-radius:9px;'
        f"background:{look.fill};border:1px {'dashed' if look.dashed else 'solid'} {look.border};"
        f'white-space:nowrap">{html.escape(text or palette.label(state) or "-")}</span>'
    )


def counts_swatch(states: list[Any]) -> str:
    """Several instances' states counted (`4 ok · 1 failed`), in the look of the most urgent."""
    return swatch(most_urgent(states), counts_text(states) or "-")


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def local_time(stamp: str | None) -> str:
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S") if stamp else ""


def error_line(error: TaskError | None) -> str:
    return str(error) if error else ""


# How wide a column that wraps may grow (in characters) before its text breaks: the first (names) and the last
# (errors, reasons) of every table, and a running task's progress.
NAME_EM, TEXT_EM, PROGRESS_EM = 28, 40, 30


def table(header: list[str], rows: list[list[str]], wrapping: Mapping[int, int] | None = None) -> str:
    """A table in a box as wide as its widget, scrolling (both ways) inside it when it must. `wrapping` maps a column
    (negative: from the end) to the width in em past which its text breaks; by default the first and the last
    columns wrap, the others (states, durations, counts) keep to one line."""
    wrapping = {0: NAME_EM, -1: TEXT_EM} if wrapping is None else wrapping
    widths = {i % len(header): em for i, em in wrapping.items()} if header else {}
    th = "".join(
        f'<th style="text-align:left;padding:4px 10px;border-bottom:1px solid #cbd5e1;white-space:nowrap">{h}</th>'
        for h in header
    )
    body = "".join(
        "<tr>"
        + "".join(
            '<td style="padding:3px 10px;border-bottom:1px solid #f1f5f9;vertical-align:top;'
            + (f'{WRAP};max-width:{widths[i]}em">' if i in widths else 'white-space:nowrap">')
            + f"{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="nbflow-table" style="max-height:360px;overflow:auto;{FILL}">'
        f'<table style="border-collapse:collapse;font-family:{FONT};font-size:12.5px;color:{TEXT_COLOR}">'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _by_task(items: Iterable[Any], task_of: Any) -> dict[str, list[Any]]:
    """Items by the task they are instances of, in the order each task first comes."""
    grouped: dict[str, list[Any]] = {}
    for item in items:
        grouped.setdefault(task_of(item), []).append(item)
    return grouped


def _task_row(task: str, states: list[Any], width: int) -> list[str]:
    """The row above a grid task's instances: its name, how many, and their states counted."""
    return [f"<b>{html.escape(task)}</b> ({len(states)})", counts_swatch(states), *([""] * (width - 2))]


def _instance_name(name: str, indented: bool) -> str:
    return f'<span style="padding-left:14px">{html.escape(name)}</span>' if indented else html.escape(name)


def running_progress(task: Any) -> CellProgress | None:
    """How far a running instance's notebook has got (None once it has ended: its progress is kept, not shown)."""
    progress = getattr(task, "progress", None)
    return progress if task.state == TaskState.RUNNING and isinstance(progress, CellProgress) else None


def progress_html(progress: CellProgress | None) -> str:
    """`cell 4/40` and the running cell's first line, and under them the last line the cells printed."""
    if progress is None:
        return ""
    said = f"<b>cell {progress.cell}/{progress.cells}</b>"
    if progress.line:
        said += f' <code style="font-size:11.5px;{WRAP}">{html.escape(progress.line)}</code>'
    last = last_printed(progress)
    if last:
        said += f'<div style="color:{LABEL_COLOR};font-size:11.5px">&rsaquo; {html.escape(last)}</div>'
    return said


def last_printed(progress: CellProgress) -> str:
    """The last line the cells printed that says something (ANSI colours dropped)."""
    for line in reversed(progress.tail):
        text = _ANSI.sub("", line).strip()
        if text:
            return text
    return ""


def run_table(tasks: Iterable[Any]) -> str:
    """One row per task run (store rows): state, duration (elapsed while running), attempts, error line; a grid
    task's instances under a row counting them. While an instance runs, a progress column says how far its notebook
    has got (`progress_html`)."""
    tasks = list(tasks)
    with_progress = any(t.state == TaskState.RUNNING for t in tasks)
    width = 6 if with_progress else 5
    rows = []
    for task, instances in _by_task(tasks, lambda t: t.task).items():
        several = len(instances) > 1
        if several:
            rows.append(_task_row(task, [t.state for t in instances], width))
        for instance in instances:
            elapsed = instance.duration_s if instance.finished_at else duration(instance.started_at, None)
            row = [
                _instance_name(instance.name, several),
                swatch(instance.state),
                seconds(elapsed),
                str(instance.attempts) if instance.attempts else "",
                html.escape(error_line(instance.error)),
            ]
            if with_progress:
                row.insert(4, progress_html(running_progress(instance)))
            rows.append(row)
    header = ["task", "state", "duration", "attempts", *(["progress"] if with_progress else []), "error"]
    wrapping = {0: NAME_EM, 4: PROGRESS_EM, -1: TEXT_EM} if with_progress else None
    return table(header, rows, wrapping)


def status_table(order: Iterable[str], status: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per task as `nbflow status` judges it: status, last run and duration, why it is not up to date; a
    grid task's instances under a row counting them."""
    rows = []
    for task, names in _by_task(order, lambda n: status.get(n, {}).get("task") or n).items():
        several = len(names) > 1
        if several:
            rows.append(_task_row(task, [status.get(n, {}).get("status") for n in names], 5))
        for name in names:
            entry = status.get(name, {})
            rows.append(
                [
                    _instance_name(name, several),
                    swatch(entry.get("status")),
                    html.escape(entry.get("last_run") or ""),
                    seconds(entry.get("duration_s")),
                    html.escape("; ".join(entry.get("reasons") or [])),
                ]
            )
    return table(["task", "status", "last run", "duration", "why"], rows)


def run_tables(grid: Mapping[str, list[Any]], tasks: list[Any]) -> str:
    """A run's task table; for a run over a run grid (`grid`), its partition x task table of states first."""
    by_values = summary.partition_table(grid, tasks)
    return (partition_table(by_values) if by_values else "") + run_table(tasks)


def partition_table(grid: PartitionTable) -> str:
    """A run over a run grid: a row per value, a column per task it varies, each cell the state of that task's
    instance for that value (its instances counted, where the task has a grid of its own); hover names them."""
    rows = []
    for row in range(len(grid.rows)):
        cells = [html.escape(grid.row_label(row))]
        for task in grid.tasks:
            instances = grid.cells.get((row, task), [])
            states = [t.state for t in instances]
            shown = short_word(states[0]) if len(states) == 1 else counts_text(states) or "-"
            names = "&#10;".join(html.escape(f"{t.name}: {t.state}") for t in instances)
            cells.append(f'<span title="{names}">{swatch(most_urgent(states), shown)}</span>')
        rows.append(cells)
    once = ""
    if grid.once:
        said = ", ".join(f"{t.name} {palette.label(t.state)}" for t in grid.once)
        once = message(f"Once for the whole run: {said}.")
    header = [html.escape(", ".join(grid.names)), *(html.escape(t) for t in grid.tasks)]
    return table(header, rows) + once


def run_label(row: Any) -> str:
    """A run in one line, for the history list."""
    counts = ", ".join(f"{n} {palette.label(s)}" for s, n in sorted(row.counts.items()))
    took = seconds(row.duration_s) if row.finished_at else "going on"
    grid = f"  grid {grid_text(row.grid)}" if row.grid else ""
    return (
        f"{local_time(row.started_at)}  {palette.run_label(row.state):<11} {row.trigger:<8} {took:>8}  ({counts}){grid}"
    )


def message(text: str, kind: str = "info") -> str:
    colour = {"info": LABEL_COLOR, "error": "#b91c1c", "ok": "#15803d"}[kind]
    return (
        f'<div style="font-family:{FONT};font-size:12.5px;color:{colour};white-space:pre-wrap;overflow-wrap:anywhere">'
        f"{html.escape(text)}</div>"
    )


def failing_cell(notebook: Mapping[str, Any]) -> tuple[int, str] | None:
    """The index and source of the first code cell with an error output, in an executed notebook."""
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            source = cell.get("source", "")
            return index, "".join(source) if isinstance(source, list) else source
    return None


def error_html(task: str, error: TaskError, notebook: Mapping[str, Any] | None, state: str = TaskState.FAILED) -> str:
    """A failed task's error: the exception, the failing cell's code and the traceback."""
    parts = [
        f'<div style="font-family:{FONT};font-size:13px;border:1px solid #fca5a5;background:#fef2f2;'
        f'border-radius:8px;padding:8px 12px;margin-bottom:8px;overflow-wrap:anywhere;{FILL}">'
        f"<b>{html.escape(task)} {html.escape(palette.label(state))}</b>: {html.escape(error_line(error))}"
    ]
    cell = failing_cell(notebook) if notebook else None
    pre = 'style="background:#fff;border:1px solid #fecaca;padding:6px;overflow:auto;max-height:260px;font-size:12px"'
    if cell is not None:
        parts.append(f"<div style='margin-top:6px'>the failing cell:</div><pre {pre}>{html.escape(cell[1])}</pre>")
    traceback = "\n".join(_ANSI.sub("", line) for line in error.traceback)
    if traceback:
        parts.append(f"<details><summary>traceback</summary><pre {pre}>{html.escape(traceback)}</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def read_notebook(path: Path) -> dict[str, Any] | None:
    """The notebook's JSON; None when the file is missing or holds no JSON object."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return notebook if isinstance(notebook, dict) else None


def notebook_html(path: Path) -> str:
    """The executed notebook rendered by nbconvert, in a sandboxed frame (its styles and scripts stay inside)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(path), as_version=4)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(notebook)
    return _framed(Path(path).name, body)


MAX_REPORT_BYTES = 20 * 1024 * 1024  # a report beyond this is named, not sent through the widget's comm


def report_html(path: Path) -> str:
    """A report nbflow wrote, in a sandboxed frame; one too big for the panel is named with its size instead."""
    size = path.stat().st_size
    if size > MAX_REPORT_BYTES:
        return message(f"{path} is {size / 2**20:.0f} MiB, too big to show here: open it in a browser.", "error")
    return _framed(path.name, path.read_text(encoding="utf-8", errors="replace"))


def _framed(title: str, page: str) -> str:
    """A whole HTML page in a frame whose scripts run in an origin of their own (they cannot reach the notebook)."""
    return (
        f'<iframe title="{html.escape(title)}" sandbox="allow-scripts allow-popups" '
        f'style="width:100%;height:640px;border:1px solid #e2e8f0;border-radius:8px;background:#fff" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )
