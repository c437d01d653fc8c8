"""The panel's Schedules tab: the project's schedules with their next fire time; add, pause,
resume and remove one; whether a scheduler is running.

The tab reads the store through the panel's connection (`refresh`, called by the panel's following thread each
round: two small queries, and a redraw only when a schedule or the scheduler changed) and changes schedules through
the public API (`nbflow.schedule`). A mistake (a bad cron expression, an unknown task, ...) is shown in the tab,
never raised into the notebook.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbflow.errors import NbflowError
from nbflow.params import parse_assignments
from nbflow.widgets import views

if TYPE_CHECKING:
    from nbflow.graph import Pipeline
    from nbflow.project import Project
    from nbflow.store import Store

    Context = tuple[Project | None, Store | None, Pipeline | None]

CRON, EVERY = "cron", "every"
_HINTS = {CRON: "0 17 * * *  (minute hour day month weekday)", EVERY: "10m, 30s, 2h, 1d or 1h30m"}


def timing(entry: dict[str, Any]) -> str:
    return f"cron {entry['cron']}" if entry.get("cron") else f"every {entry.get('every')}"


def schedules_table(entries: list[dict[str, Any]]) -> str:
    """One row per schedule (the JSON shape of `list_schedules`), times in this machine's local time."""
    if not entries:
        return views.message("No schedules yet: add one below.")
    rows = []
    for entry in entries:
        params = ", ".join(f"{k}={v!r}" for k, v in entry.get("params", {}).items())
        state = (
            _badge("paused", "#fef3c7", "#d97706") if entry.get("paused") else _badge("active", "#dcfce7", "#16a34a")
        )
        rows.append(
            [
                f"<b>{html.escape(entry['name'])}</b>",
                html.escape(f"{timing(entry)} ({entry['tz']})"),
                html.escape(", ".join(entry.get("targets") or []) or "all tasks"),
                html.escape(params),
                html.escape(views.local_time(entry.get("next_fire")) or "-"),
                html.escape(views.local_time(entry.get("last_fired")) or "never"),
                html.escape(notify_text(entry)),
                state,
            ]
        )
    header = ["name", "when", "targets", "parameters", "next fire (local time)", "last fired", "notify", "state"]
    return views.table(header, rows)


def notify_text(entry: dict[str, Any]) -> str:
    """`failure, deadline 17:30 -> ops@example.com`: the events that notify and where (else the project's)."""
    events = [f"deadline {entry.get('deadline')}" if e == "deadline" else e for e in entry.get("notify_on") or []]
    if not events:
        return "-"
    where = [*(entry.get("notify_email") or []), *(["command"] if entry.get("on_failure_command") else [])]
    where += ["webhook"] if entry.get("on_failure_webhook") else []
    return f"{', '.join(events)} -> {', '.join(where) or '[notify]'}"


def _badge(label: str, fill: str, border: str) -> str:
    return (
        f'<span style="display:inline-block;padding:0 8px;line-height:18px;font-size:12px;border-radius:9px;'
        f'background:{fill};border:1px solid {border}">{label}</span>'
    )


def scheduler_line(holder: dict[str, Any] | None, root: Path | str) -> str:
    if holder:
        return views.message(
            f"A scheduler is running (pid {holder.get('pid')} on {holder.get('host')}): "
            "the schedules below fire at their times.",
            "ok",
        )
    return views.message(
        "No scheduler is running, so no schedule fires. Start one in a terminal with "
        f"`nbflow scheduler {root}` (or run it inside JupyterLab: c.NbflowApp.scheduler = True).",
        "error",
    )


class SchedulesTab(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type information: VBox is Any
    """`context()` gives the panel's (project, store, pipeline); any may be None while the project is invalid."""

    def __init__(self, context: Callable[[], Context]) -> None:
        super().__init__(layout=widgets.Layout(width="100%"))
        from nbflow.schedule import local_zone_name

        self.context = context
        self.entries: list[dict[str, Any]] = []
        self._signature: Any = None
        self._choose: str | None = None  # the schedule just added: chosen in the dropdown
        self._lock = threading.RLock()
        W, style = widgets, {"description_width": "90px"}
        self.status = W.HTML()
        self.table = W.HTML()
        self.note = W.HTML()
        self.chosen = W.Dropdown(description="schedule", style=style, layout=W.Layout(width="300px"))
        self.pause_button = W.Button(description="Pause", icon="pause", layout=W.Layout(width="auto"))
        self.remove_button = W.Button(
            description="Remove",
            icon="trash",
            button_style="danger",
            layout=W.Layout(width="auto"),
            tooltip="delete the schedule (its past runs stay in the history)",
        )
        self.name = W.Text(description="name", placeholder="nightly", style=style, layout=W.Layout(width="300px"))
        self.kind = W.ToggleButtons(
            options=[CRON, EVERY],
            value=CRON,
            style={"button_width": "70px"},
            tooltips=["a cron expression, read in the time zone", "a fixed interval"],
        )
        self.when = W.Text(placeholder=_HINTS[CRON], layout=W.Layout(width="320px"))
        self.tz = W.Combobox(
            description="time zone",
            value=local_zone_name(),
            options=_zones(),
            style=style,
            ensure_option=False,
            layout=W.Layout(width="300px"),
        )
        self.targets = W.SelectMultiple(
            description="targets",
            rows=6,
            style=style,
            layout=W.Layout(width="300px"),
            tooltip="with their upstream; none selected: all tasks",
        )
        self.params = W.Textarea(
            description="parameters",
            placeholder="NAME=VALUE a line, e.g.\nday={date}",
            rows=6,
            style=style,
            layout=W.Layout(width="360px"),
        )
        self.on_failure = W.Checkbox(value=True, description="failure", indent=False, layout=W.Layout(width="90px"))
        self.on_success = W.Checkbox(value=False, description="success", indent=False, layout=W.Layout(width="90px"))
        self.deadline = W.Text(
            description="deadline",
            placeholder="HH:MM, e.g. 17:30",
            style=style,
            layout=W.Layout(width="220px"),
            tooltip="notify when no run of the day has succeeded by this time (in the schedule's zone)",
        )
        self.emails = W.Text(
            description="e-mail",
            placeholder="ops@example.com, ...",
            style=style,
            layout=W.Layout(width="360px"),
            tooltip="addresses to notify; the mail server is [notify.smtp] in nbflow.toml",
        )
        self.replace = W.Checkbox(
            description="replace a schedule of that name", indent=False, layout=W.Layout(width="auto")
        )
        self.add_button = W.Button(
            description="Add schedule", icon="plus", button_style="primary", layout=W.Layout(width="auto")
        )
        form = W.VBox(
            [
                W.HTML("<b>Add a schedule</b>"),
                self.name,
                W.HBox([W.Label("fires", layout=W.Layout(width="90px")), self.kind, self.when]),
                self.tz,
                W.HBox([self.targets, self.params], layout=W.Layout(flex_flow="row wrap")),
                W.HTML(
                    "<span style='color:#64748b;font-size:12px'>targets: none selected runs all tasks; "
                    "parameter values may use {date} and {datetime} (the fire time)</span>"
                ),
                W.HBox([W.Label("notify on", layout=W.Layout(width="90px")), self.on_failure, self.on_success]),
                W.HBox([self.deadline, self.emails], layout=W.Layout(flex_flow="row wrap")),
                W.HBox([self.add_button, self.replace], layout=W.Layout(align_items="center")),
            ],
            layout=W.Layout(margin="10px 0 0 0"),
        )
        self.children = [
            self.status,
            self.table,
            W.HBox(
                [self.chosen, self.pause_button, self.remove_button],
                layout=W.Layout(align_items="center", flex_flow="row wrap"),
            ),
            self.note,
            form,
        ]
        self.kind.observe(lambda change: setattr(self.when, "placeholder", _HINTS[change["new"]]), "value")
        self.chosen.observe(lambda _: self._show_choice(), "value")
        self.pause_button.on_click(lambda _: self.toggle_pause())
        self.remove_button.on_click(lambda _: self.remove())
        self.add_button.on_click(lambda _: self.add())
        self._show_choice()

    def say(self, text: str, kind: str = "info") -> None:
        self.note.value = views.message(text, kind) if text else ""

    # -- reading -----------------------------------------------------------------------------------------------

    def set_pipeline(self, pipeline: Pipeline | None) -> None:
        names = list(pipeline.tasks) if pipeline is not None else []
        if names != list(self.targets.options):
            self.targets.value = tuple(v for v in self.targets.value if v in names)
            self.targets.options = names

    def poll(self) -> None:
        """`refresh`, with a store that cannot be read said in the tab (the panel's thread calls this)."""
        try:
            self.refresh()
        except Exception as exc:
            self._signature = None  # redraw at the next good read
            self.status.value = views.message(f"could not read the schedules: {type(exc).__name__}: {exc}", "error")

    def refresh(self, force: bool = False) -> None:
        """Read the schedules and the scheduler's lease; redraw when something changed (or with `force`)."""
        from nbflow.schedule import read_schedules, running_scheduler

        with self._lock:
            project, store, _ = self.context()
            if store is None:
                self.status.value, self.table.value = "", views.message("The project could not be read.", "error")
                return
            entries = [s.to_json() for s in read_schedules(store)]
            holder = running_scheduler(store)
            signature = (json.dumps(entries, sort_keys=True), (holder["host"], holder["pid"]) if holder else None)
            if not force and signature == self._signature:
                return
            self._signature, self.entries = signature, entries
            self.status.value = scheduler_line(holder, project.root if project else ".")
            self.table.value = schedules_table(entries)
            names = [e["name"] for e in entries]
            if names != list(self.chosen.options):
                value = (
                    self._choose
                    if self._choose in names
                    else self.chosen.value
                    if self.chosen.value in names
                    else (names[0] if names else None)
                )
                self.chosen.options = names
                self.chosen.value = value
            elif self._choose in names:
                self.chosen.value = self._choose
            self._choose = None
            self._show_choice()

    def _show_choice(self) -> None:
        entry = next((e for e in self.entries if e["name"] == self.chosen.value), None)
        self.pause_button.disabled = self.remove_button.disabled = entry is None
        paused = bool(entry and entry["paused"])
        self.pause_button.description, self.pause_button.icon = ("Resume", "play") if paused else ("Pause", "pause")
        self.pause_button.tooltip = (
            "fire again from the next slot (missed slots are not caught up)"
            if paused
            else "stop firing until resumed (a run going on goes on)"
        )

    # -- changing ----------------------------------------------------------------------------------------------

    def _act(self, action: Callable[[Project], str], failed: str) -> None:
        """Call the API; show its outcome, or its error, in the tab; then read the schedules again."""
        project, _, _ = self.context()
        if project is None:
            self.say("The project could not be read: fix it (see above) and reload.", "error")
            return
        try:
            self.say(action(project), "ok")
        except (NbflowError, ValueError) as exc:
            self.say(f"{failed}: {exc}", "error")
        except Exception as exc:
            self.say(f"{failed}: {type(exc).__name__}: {exc}", "error")
        self._signature = None
        self.poll()

    def add(self) -> None:
        from nbflow.schedule import add_schedule

        def action(project: Project) -> str:
            text = self.when.value.strip()
            if not text:
                raise ValueError(
                    f"give the {'cron expression' if self.kind.value == CRON else 'interval'}: "
                    f"{_HINTS[self.kind.value]}."
                )
            when = {"cron": text} if self.kind.value == CRON else {"every": text}
            added = add_schedule(
                project,
                self.name.value.strip(),
                tz=self.tz.value.strip() or None,
                targets=list(self.targets.value),
                params=parse_assignments(self.params.value),
                notify_on=[e for e, box in (("failure", self.on_failure), ("success", self.on_success)) if box.value],
                deadline=self.deadline.value.strip() or None,
                notify_email=[a.strip() for a in self.emails.value.split(",") if a.strip()],
                replace=self.replace.value,
                **when,
            )
            self._choose = added["name"]
            return (
                f"Schedule {added['name']} added ({timing(added)}, {added['tz']}); next fire: "
                f"{views.local_time(added['next_fire'])} local time."
            )

        self._act(action, "The schedule was not added")

    def toggle_pause(self) -> None:
        from nbflow.schedule import get_schedule, pause_schedule, resume_schedule

        name = self.chosen.value

        def action(project: Project) -> str:
            if get_schedule(project, name)["paused"]:
                entry = resume_schedule(project, name)
                return f"Schedule {name} resumed; next fire: {views.local_time(entry['next_fire'])} local time."
            pause_schedule(project, name)
            return f"Schedule {name} paused."

        if name:
            self._act(action, f"Schedule {name} was not changed")

    def remove(self) -> None:
        from nbflow.schedule import remove_schedule

        name = self.chosen.value

        def action(project: Project) -> str:
            remove_schedule(project, name)
            return f"Schedule {name} removed (its past runs stay in the history)."

        if name:
            self._act(action, f"Schedule {name} was not removed")


def _zones() -> list[str]:
    from zoneinfo import available_timezones

    try:
        return sorted(z for z in available_timezones() if "/" in z or z == "UTC")
    except Exception:
        return ["UTC"]
