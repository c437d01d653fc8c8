"""The panel's Outputs tab: each task's executed notebook (rendered by nbconvert), for a failed task its error with
the failing cell, and for a task that declares a `report`, the report its run wrote."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from nbflow import palette
from nbflow.models import TaskRun
from nbflow.store.reports import Report
from nbflow.widgets import views


class OutputsTab(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information: VBox is Any
    """A task chooser, a button, and what the chosen task left behind. `on_shown` is told when a task is shown (the
    panel brings the tab forward)."""

    def __init__(self, on_shown: Callable[[], None]) -> None:
        self.task = widgets.Dropdown(
            description="task", layout=widgets.Layout(width="360px"), style={"description_width": "40px"}
        )
        self.button = widgets.Button(
            description="Show executed notebook", icon="file", layout=widgets.Layout(width="auto")
        )
        self.report_button = widgets.Button(
            description="Show report", icon="file-text", layout=widgets.Layout(width="auto")
        )
        self.view = widgets.HTML()
        super().__init__([widgets.HBox([self.task, self.button, self.report_button]), self.view])
        self._rows: dict[str, TaskRun] = {}
        self._reports: dict[str, Report] = {}
        self._on_shown = on_shown
        self.button.on_click(lambda _: self.show(self.task.value))
        self.report_button.on_click(lambda _: self.show_report(self.task.value))
        self.task.observe(lambda _: self._enable(), names="value")

    def set_tasks(self, tasks: list[TaskRun], reports: dict[str, Report] | None = None) -> None:
        """The task runs there is something to show for (an executed notebook or an error), and the reports those
        runs wrote, by instance."""
        self._rows = {t.name: t for t in tasks if t.output_notebook or t.error}
        self._reports = {name: r for name, r in (reports or {}).items() if name in self._rows}
        options = list(self._rows)
        if options != list(self.task.options):
            value = self.task.value if self.task.value in options else (options[0] if options else None)
            self.task.options, self.task.value = options, value
        self._enable()

    def _enable(self) -> None:
        self.button.disabled = not self._rows
        self.report_button.disabled = self.task.value not in self._reports

    def show_report(self, task: str | None) -> None:
        """Show the report the chosen task's run wrote, as that run kept it."""
        report = self._reports.get(task) if task is not None else None
        if task is None or report is None:
            self.view.value = views.message("No report to show: choose a task whose run wrote one.")
            return
        shown = report.copy if report.copy.is_file() else None
        header = f"{task}: report of run {report.run_id}, written {views.local_time(report.written_at)} · {report.path}"
        if shown is None:
            self.view.value = views.message(f"{header}\nThe run's copy {report.copy} is gone.", "error")
        else:
            self.view.value = views.message(header) + views.report_html(shown)
        if self.task.value != task:
            self.task.value = task
        self._on_shown()

    def show(self, task: str | None) -> None:
        """Show a task's executed notebook and, for a failed task, its error."""
        row = self._rows.get(task) if task is not None else None
        if task is None or row is None:
            self.view.value = views.message("No executed notebook to show: choose a task that ran.")
            return
        path = row.output_notebook
        parts = [
            views.message(f"{task}: {palette.label(row.state)} in run {row.run_id}" + (f" · {path}" if path else ""))
        ]
        notebook = views.read_notebook(path) if path else None
        if row.error:
            parts.append(views.error_html(task, row.error, notebook, row.state))
        if path is not None and notebook is not None:
            try:
                parts.append(views.notebook_html(path))
            except Exception as exc:  # nbconvert fails in many ways on odd notebooks: say so, keep the panel
                parts.append(views.message(f"nbconvert could not render {path}: {exc}", "error"))
        elif path:
            parts.append(views.message(f"{path} is not there (yet).", "error"))
        self.view.value = "".join(parts)
        if self.task.value != task:
            self.task.value = task
        self._on_shown()
