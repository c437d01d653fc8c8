"""`nbflow.panel(path)`: the pipeline in a notebook.

The graph with each task coloured by its state (a grid task one node counting its instances by state), run
controls (all, or the selected tasks or instances with their upstream, `nbflow.widgets.chooser`; force; the
parameters form with a run grid; cancel), the task table (for a run over a run grid, its partition x task table
first), the run history, each task's executed notebook, and the schedules (`nbflow.widgets.schedules`).

Live state comes from the store, whoever started the run: a daemon thread reads the newest runs every
`poll_interval` seconds (two small SQLite queries) and redraws only when a state changed. A run started from the
panel runs in a thread of the kernel (`nbflow.run.background.start_run`), so the notebook stays usable, and its
events wake the thread at once. `Panel.close()` stops the thread.

What the graph shows ("view"):
- live (the default): each task's status now (up to date, stale, never run, failed), with the states of the newest
  run laid over it while it is going on, and after it ends if it started while the panel was open;
- status: each task's status now, judged with the default parameters, as `nbflow status` judges it;
- a run from the history: that run's task states (tasks it did not select are left uncoloured).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbflow import palette, render
from nbflow.errors import NbflowError
from nbflow.graph import Pipeline, load
from nbflow.history import status as judge_status
from nbflow.models import RunRecord, RunState, TaskRun, TaskState
from nbflow.project import Project, load_project
from nbflow.render.scene import in_grid_order
from nbflow.render.summary import grid_text
from nbflow.run.prepare import split_params
from nbflow.store import Store, open_store
from nbflow.store.reports import reports_of_runs
from nbflow.times import now, parse_time
from nbflow.widgets import views
from nbflow.widgets.chooser import TaskChooser
from nbflow.widgets.form import ParamsForm
from nbflow.widgets.outputs import OutputsTab
from nbflow.widgets.schedules import SchedulesTab

if TYPE_CHECKING:
    from nbflow.run.background import BackgroundRun

# what the graph and table were last drawn from: the view, the run's id and state, and each task's state, try and
# running cell (the graph's labels say which cell runs)
Signature = tuple[str, str | None, RunState | None, tuple[tuple[str, TaskState, int, int | None], ...]]

LIVE, STATUS = "live", "status"
_UNSEEN = object()  # no look at the store yet
HISTORY = 30  # runs listed


TAB_TITLES = ("Tasks", "Parameters", "History", "Outputs", "Schedules")
OUTPUTS_TAB = TAB_TITLES.index("Outputs")


def panel(path: str | Path = ".", **options: Any) -> Panel:
    """The ipywidgets panel for the project at `path` (see `Panel`)."""
    return Panel(path, **options)


class Panel(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information: VBox is Any
    """The widget `nbflow.panel` returns. `follow=False` leaves out the polling thread (call `refresh()`)."""

    def __init__(self, path: str | Path = ".", *, poll_interval: float = 0.75, follow: bool = True) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        self.path, self.poll_interval = path, poll_interval
        self.project: Project | None = None
        self.store: Store | None = None
        self.pipeline: Pipeline | None = None
        self.status: dict[str, dict[str, Any]] = {}  # history.status of every task
        self.states: dict[str, str | None] = {}  # what the graph shows: task -> state
        self.shown_run: RunRecord | None = None  # the run on the graph (None: status only)
        self.shown_tasks: list[TaskRun] = []
        self.handle: BackgroundRun | None = None  # the run started from this panel
        self.view = LIVE
        self.svg = ""
        self._opened_at = now()
        self._followed: set[str] = set()  # runs seen going on, shown in the live view once they end
        self._newest: object = _UNSEEN  # (id, state) of the newest run at the last look; None: no run
        self._signature: Signature | None = None
        self._lock = threading.RLock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._updating = False
        self._zoom_chosen = False
        self._run_pipelines: dict[str, Pipeline] = {}  # runs over a run grid: the pipeline with their instances
        self._build()
        self.reload()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(target=self._follow, name="nbflow-panel", daemon=True)
            self._thread.start()

    # -- layout ---------------------------------------------------------------------------------------------------

    def _build(self) -> None:
        W = widgets
        self.header = W.HTML()
        self.run_button = W.Button(
            description="Run all",
            icon="play",
            button_style="primary",
            tooltip="run the selected tasks and their upstream (all tasks when none is "
            "selected); up-to-date tasks are skipped unless 'force'",
        )
        self.force = W.Checkbox(
            description="force (rerun up-to-date tasks)", indent=False, layout=W.Layout(width="auto")
        )
        self.cancel_button = W.Button(description="Cancel run", icon="stop", disabled=True)
        self.reload_button = W.Button(
            description="Reload", icon="refresh", tooltip="read the notebooks again (after editing them)"
        )
        self.note = W.HTML()
        self.caption = W.HTML()
        # as wide as its column, margins included (100% and the widget's margins overflowed it, cut off at the right)
        self.graph = W.HTML(layout=W.Layout(width="auto"))
        self.chooser = TaskChooser(on_change=lambda: self._on_selection())
        self.tasks_select, self.focus = self.chooser.tasks, self.chooser.focus
        self.zoom = W.Dropdown(
            options=list(views.ZOOMS),
            value="Fit",
            description="zoom",
            layout=W.Layout(width="100%"),
            style={"description_width": "40px"},
        )
        self.table = W.HTML()
        self.form = ParamsForm()
        self.history = W.Select(rows=10, layout=W.Layout(width="auto", min_width="50%", max_width="100%"))
        self.outputs = OutputsTab(on_shown=lambda: setattr(self.tabs, "selected_index", OUTPUTS_TAB))
        self.schedules = SchedulesTab(lambda: (self.project, self.store, self.pipeline))
        side = W.VBox(
            [self.chooser, self.zoom],
            layout=W.Layout(width="240px", min_width="200px", margin="0 0 0 10px", overflow="hidden"),
        )
        self.tabs = W.Tab(
            children=[
                self.table,
                self.form,
                self.history,
                self.outputs,
                self.schedules,
            ]
        )
        for i, title in enumerate(TAB_TITLES):
            self.tabs.set_title(i, title)
        self.children = [
            self.header,
            W.HBox(
                [self.run_button, self.force, self.cancel_button, self.reload_button],
                layout=W.Layout(align_items="center", flex_flow="row wrap"),
            ),
            self.note,
            W.HTML(palette.legend_html()),
            W.HBox(
                [
                    W.VBox(
                        [self.caption, self.graph], layout=W.Layout(flex="1 1 0%", min_width="0", overflow="hidden")
                    ),
                    side,
                ],
                layout=W.Layout(width="100%"),
            ),
            self.tabs,
        ]
        self.run_button.on_click(lambda _: self.run())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.reload_button.on_click(lambda _: self.reload())
        self.focus.observe(lambda _: self._user(self.refresh, redraw=True), "value")
        self.zoom.observe(lambda _: self._user(self._show_svg), "value")  # a user's zoom stays
        self.history.observe(lambda change: self._user(self.show, change["new"]), "value")

    def _user(self, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run `action` for a user's change, not for the panel's own updates of its widgets."""
        if not self._updating:
            action(*args, **kwargs)

    def _set(self, widget: widgets.Widget, **values: Any) -> None:
        self._updating = True
        try:
            for name, value in values.items():
                setattr(widget, name, value)
        finally:
            self._updating = False

    def say(self, text: str, kind: str = "info") -> None:
        self.note.value = views.message(text, kind) if text else ""

    # -- loading and following ------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the project and its notebooks again; judge every task's status."""
        with self._lock:
            try:
                self.project = load_project(self.path)
                if self.store is None:
                    self.store = open_store(self.project.store_dir)
                self.pipeline = load(self.path)
                self.status = judge_status(self.pipeline, self.store)
                self.say("")
            except NbflowError as exc:
                self.pipeline = None
                self.say(str(exc), "error")
            tasks, instances = (len(self.pipeline.instances), len(self.pipeline.tasks)) if self.pipeline else (0, 0)
            counted = f"{tasks} task(s)" + (f" ({instances} instances)" if instances != tasks else "")
            root = self.project.root if self.project else self.path
            self.header.value = (
                f"<div style='font-family:{palette.FONT};font-size:14px'><b>nbflow</b> · "
                f"{html.escape(str(root))} · {counted} · drawn with "
                f"{'Graphviz' if render.has_graphviz() else 'the built-in layout'}</div>"
            )
            self._run_pipelines.clear()
            self.chooser.set_pipeline(self.pipeline)
            self.form.set_pipeline(self.pipeline)
            self.schedules.set_pipeline(self.pipeline)
            self.run_button.disabled = self.pipeline is None
            self._on_selection()
            self.refresh(redraw=True)

    def _follow(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    self.refresh()
                except Exception as exc:
                    self.say(f"could not read the run store: {type(exc).__name__}: {exc}", "error")
        finally:
            if self.store is not None:
                self.store.close()  # this thread's connection

    def refresh(self, redraw: bool = False) -> None:
        """Read the newest runs from the store; redraw when a state changed (or when asked)."""
        with self._lock:
            if self.store is None:
                return
            runs = self.store.runs(limit=HISTORY)
            newest = runs[0] if runs else None
            if newest is not None and newest.state is RunState.RUNNING:
                self._followed.add(newest.id)
                self._check_alive(newest)
            key = (newest.id, newest.state) if newest else None
            if (
                key != self._newest
                and self._newest is not _UNSEEN
                and self.pipeline is not None
                and (newest is None or newest.state is not RunState.RUNNING)
            ):
                self.status = judge_status(self.pipeline, self.store)  # a run ended: statuses moved
                redraw = True
            self._newest = key
            self._show_history(runs)
            run = self._run_to_show(self.store, newest)
            tasks = self.store.task_runs(run.id) if run else []
            signature: Signature = (
                self.view,
                run.id if run else None,
                run.state if run else None,
                tuple((t.name, t.state, t.attempts, _running_cell(t)) for t in tasks),
            )
            if redraw or signature != self._signature:
                self._signature = signature
                self._draw(run, tasks)
            elif run is not None and run.state is RunState.RUNNING:
                self.table.value = views.run_tables(run.grid, tasks)  # elapsed times and printed lines move
            own = self.handle is not None and not self.handle.done and self.handle.run.state is RunState.RUNNING
            self.cancel_button.disabled = not own
            self.cancel_button.button_style = "danger" if own else ""
            self.cancel_button.tooltip = (
                "cancel the run started here" if own else "only a run started from this panel can be cancelled here"
            )
            self.schedules.poll()  # a schedule added, fired, paused or removed anywhere

    def _check_alive(self, row: RunRecord) -> None:
        """A run whose process died stays `running` in the store until someone looks: look."""
        if self.store is not None and not self.store.is_alive(row):
            self.store.mark_dead_runs()

    def _run_to_show(self, store: Store, newest: RunRecord | None) -> RunRecord | None:
        if self.view == STATUS:
            return None
        if self.view != LIVE:
            return store.run(self.view)
        if newest is None:
            return None
        started = parse_time(newest.started_at)
        if newest.id in self._followed or (started is not None and started >= self._opened_at):
            return newest
        return None

    def _show_history(self, runs: list[RunRecord]) -> None:
        options = [
            ("Live: status now, and the newest run as it goes", LIVE),
            ("Status now (default parameters)", STATUS),
        ] + [(views.run_label(r), r.id) for r in runs]
        if options != list(self.history.options):
            value = self.view if self.view in {v for _, v in options} else LIVE
            self._set(self.history, options=options, value=value)

    # -- drawing --------------------------------------------------------------------------------------------------

    def _pipeline_for(self, run: RunRecord | None) -> Pipeline:
        """What a run is drawn on: the pipeline, made again with the run's grid for a run over one (its instances
        are not the pipeline's); the pipeline itself where that no longer resolves (notebooks changed since)."""
        assert self.pipeline is not None
        if run is None or not run.grid:
            return self.pipeline
        if run.id not in self._run_pipelines:
            params, task_params = split_params(run.params)
            try:
                self._run_pipelines[run.id] = self.pipeline.with_params(params, task_params, run.grid)
            except NbflowError:
                self._run_pipelines[run.id] = self.pipeline
        return self._run_pipelines[run.id]

    def _draw(self, run: RunRecord | None, tasks: list[TaskRun]) -> None:
        self.shown_run, self.shown_tasks = run, tasks
        if self.pipeline is None:
            self.graph.value = self.table.value = ""
            return
        drawn = self._pipeline_for(run)
        notes: dict[str, str] = {}
        if run is not None and self.view != LIVE:  # a run from the history: only its own tasks have a state
            states: dict[str, str | None] = {name: None for name in drawn.tasks}
        else:
            states = {name: self.status.get(name, {}).get("status") for name in drawn.tasks}
        for task in tasks:
            if task.name in drawn.tasks:
                states[task.name] = task.state
                took = views.seconds(task.duration_s)
                tries = f" · try {task.attempts}" if task.attempts > 1 else ""
                progress = views.running_progress(task)
                cell = f" · cell {progress.cell}/{progress.cells}" if progress else ""
                notes[task.name] = palette.label(task.state) + (f" · {took}" if took else "") + tries + cell
        selected = self.chooser.targets
        only = render.neighbourhood(drawn, selected) if self.focus.value and selected else None
        self.svg = render.draw_svg(drawn, {k: v for k, v in states.items() if v}, notes, only=only)
        self.states = states  # after the drawing: whoever sees the new states sees them drawn
        if not self._zoom_chosen:
            self._zoom_chosen = True
            self._set(self.zoom, value=views.default_zoom(self.svg))
        self._show_svg()
        if not self.pipeline.tasks:
            self.caption.value = views.message(
                f"No task notebooks under {self.pipeline.project.root}: a notebook is a task when its `parameters` "
                "cell assigns `inputs`, `outputs` or `upstream`. Reload after adding some."
            )
        elif run is None:
            self.caption.value = views.message(
                "Each task's status now, judged with the default parameters (as `nbflow status`)."
            )
            instances = self.pipeline.instances.values()
            order = [name for names in instances for name in in_grid_order(self.pipeline, names)]
            self.table.value = views.status_table(order, self.status)
        else:
            took = views.seconds(run.duration_s) if run.finished_at else "going on"
            self.caption.value = views.message(
                f"Run {run.id} ({run.trigger}), {run.state}: started {views.local_time(run.started_at)}, {took}"
                + (f", over {grid_text(run.grid)}" if run.grid else "")
                + (
                    "; the tasks it did not run show their status now"
                    if self.view == LIVE and len(tasks) < len(drawn.tasks)
                    else ""
                )
            )
            self.table.value = views.run_tables(run.grid, tasks)
        self._list_outputs(self.pipeline, run, tasks)

    def _show_svg(self) -> None:
        if self.svg:
            self.graph.value = views.framed_svg(self.svg, self.zoom.value)

    def show(self, view: str) -> None:
        """Show `live`, `status`, or a run id (the history list does this)."""
        with self._lock:
            self.view = view or LIVE
            self._set(self.history, value=self.view)
            self.refresh(redraw=True)

    def _on_selection(self, *_: Any) -> None:
        chosen = len(self.chooser.targets)
        self.run_button.description = f"Run {chosen} selected + upstream" if chosen else "Run all"
        if self.focus.value and not self._updating:
            self.refresh(redraw=True)

    # -- outputs --------------------------------------------------------------------------------------------------

    def _list_outputs(self, pipeline: Pipeline, run: RunRecord | None, tasks: list[TaskRun]) -> None:
        assert self.store is not None  # the panel draws what it read from its store
        if run is None:  # the status view: each task's most recent run
            last = self.store.last_task_runs()
            tasks = [last[name] for name in pipeline.tasks if name in last]
        written = reports_of_runs(self.store, {t.run_id for t in tasks if t.run_id})
        reports = {t.name: written[key] for t in tasks if (key := (t.run_id or "", t.name)) in written}
        self._updating = True  # choosing a task for the list is not the user's choice
        try:
            self.outputs.set_tasks(tasks, reports)
        finally:
            self._updating = False

    def show_output(self, task: str | None) -> None:
        """Show a task's executed notebook (rendered by nbconvert) and, for a failed task, its error."""
        self.outputs.show(task)

    # -- running --------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Start a run in the background: the selected tasks or instances and their upstream (else all), the
        changed parameters, the run grid, force as ticked. A reason it cannot start (an invalid pipeline,
        parameter or grid, a missing source) is shown in the panel."""
        from nbflow.run.background import start_run

        try:
            self.reload()
            if self.pipeline is None:
                return
            params, grid = self.form.changed(), self.form.grid()
            targets = self.chooser.targets or None
            selected = set(self.pipeline.select(targets))
            bases = {self.pipeline.tasks[t].base for t in selected}
            known = set(self.pipeline.project.params).union(*(self.pipeline.specs[t].params for t in bases))
            # a parameter only other tasks use is not this run's; one the run grid varies takes the grid's values
            params = {k: v for k, v in params.items() if k in known and k not in grid}
            self.handle = start_run(
                self.pipeline,
                trigger="api",
                targets=targets,
                params=params,
                grid=grid,
                force=self.force.value,
                on_event=lambda *_: self._wake.set(),
            )
        except (NbflowError, ValueError) as exc:
            self.say(f"The run did not start: {exc}", "error")
            return
        self._followed.add(self.handle.id)
        what = f"{len(targets)} selected task(s) and their upstream" if targets else "all tasks"
        if grid:
            what += f", over {grid_text(grid)}"
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        self.say(
            f"Run {self.handle.id} started: {what}"
            + (f", with {shown}" if shown else "")
            + (", forced" if self.force.value else "")
            + ".",
            "ok",
        )
        self.show(LIVE)

    def cancel(self) -> None:
        if self.handle is not None and not self.handle.done:
            self.handle.cancel()
            self.say(f"Cancelling run {self.handle.id}: its kernels are being stopped.")
            self._wake.set()

    def close(self) -> None:
        """Stop following the store, and close the panel's widgets (a run started here goes on)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.form.set_pipeline(None)
        for child in self.children:
            _close_tree(child)
        if self.store is not None:
            self.store.close()
        super().close()


def _running_cell(task: TaskRun) -> int | None:
    progress = views.running_progress(task)
    return progress.cell if progress else None


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
