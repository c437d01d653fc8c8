"""The panel's task chooser: the tasks to run (each with its upstream) or to focus the drawing on.

A grid task is one entry, saying how many instances it has; choosing it opens its instances below, where some of
them may be chosen instead of the whole task. The chooser's `targets` are what a run is given: the tasks chosen,
each narrowed to its chosen instances where there are any.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbflow.graph import Pipeline
from nbflow.render.scene import in_grid_order


class TaskChooser(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information: VBox is Any
    """The task list, a grid task's instances, a button clearing both, and whether to draw only around them.
    `on_change` is told when a user changes the choice (not when `set_pipeline` does)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        W = widgets
        self.tasks = W.SelectMultiple(rows=12, layout=W.Layout(width="100%"))
        self.instances_note = W.HTML()
        self.instances = W.SelectMultiple(rows=8, layout=W.Layout(width="100%"))
        self.instances_box = W.VBox([self.instances_note, self.instances], layout=W.Layout(display="none"))
        self.clear_button = W.Button(description="Clear selection", layout=W.Layout(width="100%"))
        self.focus = W.Checkbox(
            description="focus on the selection",
            indent=False,
            layout=W.Layout(width="100%"),
            tooltip="draw only the selected tasks, their upstream and their downstream",
        )
        super().__init__(
            [
                W.HTML("<b>Tasks</b> <span style='color:#64748b'>(ctrl/shift-click to select)</span>"),
                self.tasks,
                self.instances_box,
                self.clear_button,
                self.focus,
            ]
        )
        self.pipeline: Pipeline | None = None
        self._on_change = on_change
        self._quiet = False
        self.clear_button.on_click(lambda _: self.clear())
        self.tasks.observe(lambda _: self._changed(open_instances=True), "value")
        self.instances.observe(lambda _: self._changed(), "value")

    def set_pipeline(self, pipeline: Pipeline | None) -> None:
        """List the pipeline's tasks, keeping what is still there of the choice."""
        self.pipeline = pipeline
        instances = pipeline.instances if pipeline else {}
        options = [
            (task if len(names) == 1 else f"{task}  ({len(names)} instances)", task)
            for task, names in instances.items()
        ]
        self._quietly(self.tasks, options=options, value=tuple(v for v in self.tasks.value if v in instances))
        self._open_instances()

    def clear(self) -> None:
        self._quietly(self.instances, value=())
        self.tasks.value = ()

    @property
    def targets(self) -> list[str]:
        """The chosen tasks, each as its chosen instances where some are chosen (else the whole task)."""
        if self.pipeline is None:
            return []
        chosen = set(self.instances.value)
        targets = []
        for task in self.tasks.value:
            mine = [name for name in self.pipeline.instances.get(task, []) if name in chosen]
            targets += mine or [task]
        return targets

    def _changed(self, open_instances: bool = False) -> None:
        if self._quiet:
            return
        if open_instances:
            self._open_instances()
        self._on_change()

    def _open_instances(self) -> None:
        """Below the list: the instances of the chosen grid tasks, for choosing some of them."""
        pipeline = self.pipeline
        instances = pipeline.instances if pipeline else {}
        grids = [task for task in self.tasks.value if len(instances.get(task, [])) > 1]
        names = [name for task in grids for name in in_grid_order(pipeline, instances[task])] if pipeline else []
        self._quietly(self.instances, options=names, value=tuple(v for v in self.instances.value if v in names))
        self.instances.rows = min(8, max(len(names), 2))
        self.instances_box.layout.display = "" if grids else "none"
        if grids:
            shown = ", ".join(grids)
            self.instances_note.value = (
                f"<span style='font-size:12px'>Instances of <b>{shown}</b> "
                "<span style='color:#64748b'>(none chosen: every instance)</span></span>"
            )

    def _quietly(self, widget: widgets.Widget, **values: Any) -> None:
        self._quiet = True
        try:
            for name, value in values.items():
                setattr(widget, name, value)
        finally:
            self._quiet = False
