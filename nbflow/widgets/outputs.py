"""The panel's Outputs tab: each task's executed notebook (rendered by nbconvert) and, for a failed task, its error
with the failing cell."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from nbflow import palette
from nbflow.models import TaskRun
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
        self.view = widgets.HTML()
        super().__init__([widgets.HBox([self.task, self.button]), self.view])
        self._rows: dict[str, TaskRun] = {}
        self._on_shown = on_shown
        self.button.on_click(lambda _: self.show(self.task.value))

    def set_tasks(self, tasks: list[TaskRun]) -> None:
        """The task runs there is something to show for (an executed notebook or an error)."""
        self._rows = {t.name: t for t in tasks if t.output_notebook or t.error}
        options = list(self._rows)
        if options != list(self.task.options):
            value = self.task.value if self.task.value in options else (options[0] if options else None)
            self.task.options, self.task.value = options, value
        self.button.disabled = not options

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
