"""The pipeline parameters as a form: one typed widget per parameter the tasks declare, and a run grid.

The defaults are what a run uses without `-p`: `[params]` in nbflow.toml, else the notebook's literal. Only the
values a user changed are passed to a run, so every notebook keeps its own default for the rest. The run grid (a
parameter's name and its values as text, read as `nbflow run -g NAME VALUES` reads them) makes the run one
instance per value of every selected task using that name: a backfill.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from nbflow.errors import UsageError
from nbflow.graph import Pipeline
from nbflow.grids import parse_grid_values
from nbflow.params import parse_literal
from nbflow.render.summary import grid_text


def declared_params(pipeline: Pipeline) -> dict[str, tuple[Any, str | None]]:
    """Each ordinary parameter of any task -> (default value, source text when the default is no literal)."""
    found: dict[str, tuple[Any, str | None]] = {}
    for spec in pipeline.specs.values():
        for name, param in spec.params.items():
            if name in found and found[name][1] is None:
                continue  # a literal default already found
            found[name] = (param.value, None) if param.literal else (None, param.source)
    for name, value in pipeline.project.params.items():
        found[name] = (value, None)
    return dict(sorted(found.items()))


class ParamsForm(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information: VBox is Any
    """bool -> Checkbox, int -> IntText, float -> FloatText, str -> Text, anything else -> Text holding its repr."""

    children: Sequence[widgets.Widget]  # VBox's trait, declared for mypy, which cannot see it

    def __init__(self, pipeline: Pipeline | None = None):
        super().__init__(layout=widgets.Layout(width="100%"))
        self.fields: dict[str, widgets.ValueWidget] = {}
        self.declared: dict[str, tuple[Any, str | None]] | None = None
        self.defaults: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.reset_button = widgets.Button(
            description="Reset to defaults", icon="undo", layout=widgets.Layout(width="auto")
        )
        self.reset_button.on_click(lambda _: self.reset())
        self.reset_row = widgets.HBox([self.reset_button])
        style = {"description_width": "140px"}
        self.grid_name = widgets.Combobox(
            description="run grid: name",
            placeholder="a parameter, e.g. report_date",
            ensure_option=False,
            style=style,
            layout=widgets.Layout(width="420px"),
        )
        self.grid_values = widgets.Text(
            description="values",
            placeholder="2026-11-01..2026-11-30 (step /7d) or north,south",
            style=style,
            layout=widgets.Layout(width="420px"),
        )
        self.grid_note = widgets.HTML()
        self.grid_box = widgets.VBox(
            [
                widgets.HTML(
                    "<b>Run grid</b> <span style='color:#64748b'>(optional: one run, each selected task using the "
                    "name once per value; instances already up to date are skipped)</span>"
                ),
                self.grid_name,
                self.grid_values,
                self.grid_note,
            ],
            layout=widgets.Layout(margin="10px 0 0 0"),
        )
        self.grid_name.observe(lambda _: self._show_grid(), "value")
        self.grid_values.observe(lambda _: self._show_grid(), "value")
        self.set_pipeline(pipeline)

    def set_pipeline(self, pipeline: Pipeline | None) -> None:
        """Rebuild for the pipeline's parameters, keeping the values a user changed where the type still fits."""
        declared = declared_params(pipeline) if pipeline else {}
        if declared == self.declared:
            return
        self.declared = declared
        previous = self.changed(strict=False)
        for child in self.children:
            if child is not self.reset_row and child is not self.grid_box:
                child.close()
        self.fields, self.defaults, self.kinds = {}, {}, {}
        rows: list[widgets.Widget] = []
        style = {"description_width": "140px"}
        layout = widgets.Layout(width="420px")
        for name, (value, source) in declared.items():
            if source is not None:
                kind, field = (
                    "expr",
                    widgets.Text(
                        value=source, style=style, layout=layout, tooltip=f"an expression in the notebook: {source}"
                    ),
                )
            elif isinstance(value, bool):
                kind, field = "bool", widgets.Checkbox(value=value, indent=False, style=style)
            elif isinstance(value, int):
                kind, field = "int", widgets.IntText(value=value, style=style, layout=layout)
            elif isinstance(value, float):
                kind, field = "float", widgets.FloatText(value=value, style=style, layout=layout)
            elif isinstance(value, str):
                kind, field = "str", widgets.Text(value=value, style=style, layout=layout)
            else:
                kind, field = "repr", widgets.Text(value=repr(value), style=style, layout=layout)
            field.description = name
            self.defaults[name], self.kinds[name], self.fields[name] = field.value, kind, field
            if name in previous:
                try:
                    field.value = previous[name] if kind != "repr" else repr(previous[name])
                except Exception:
                    pass
            rows.append(field)
        if not rows:
            rows.append(widgets.HTML("<i>No task declares an ordinary parameter.</i>"))
        self.grid_name.options = list(declared)
        self.children = [*rows, self.reset_row, self.grid_box]

    def reset(self) -> None:
        for name, field in self.fields.items():
            field.value = self.defaults[name]

    def changed(self, strict: bool = True) -> dict[str, Any]:
        """The values that differ from the defaults, as Python values; UsageError names a field that is no
        Python literal (with `strict`; else such a field is left out)."""
        values = {}
        for name, field in self.fields.items():
            if field.value == self.defaults[name]:
                continue
            if self.kinds[name] in ("repr", "expr"):
                try:
                    values[name] = parse_literal(name, field.value)
                except UsageError:
                    if strict:
                        raise
            else:
                values[name] = field.value
        return values

    def grid(self) -> dict[str, list[Any]]:
        """The run grid ({} when no name is given); UsageError says what is wrong with the values."""
        name, text = self.grid_name.value.strip(), self.grid_values.value.strip()
        if not name:
            if text:
                raise UsageError(f"run grid: values {text!r} given without a name; name the parameter they are for.")
            return {}
        if not text:
            raise UsageError(f"run grid: `{name}` has no values; write a comma list (a,b,c) or a range (A..B).")
        return {name: parse_grid_values(name, text)}

    def _show_grid(self) -> None:
        """What the run grid will run over, or what is wrong with it, as it is typed."""
        if not self.grid_name.value.strip() and not self.grid_values.value.strip():
            self.grid_note.value = ""
            return
        try:
            grid = self.grid()
        except UsageError as exc:
            self.grid_note.value = f"<span style='color:#b91c1c'>{html.escape(str(exc))}</span>"
            return
        self.grid_note.value = f"<span style='color:#15803d'>runs over {html.escape(grid_text(grid))}</span>"
