"""How every state a task or run can be in looks: its fill, border and words, for every interface that draws one.

The one definition: the SVG drawings and the notebook panel read it here, and the JupyterLab extension reads the
TypeScript module generated from it (`python -m nbflow.palette --typescript > labextension/src/palette.generated.ts`),
so a state looks the same wherever it is shown. Fills are light, so the dark text on them stays legible; the border
carries the hue, and the state is always written too, so nothing depends on colour alone.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from nbflow.models import RunState, TaskState, TaskStatus


@dataclass(frozen=True)
class Style:
    """How one state is shown: a box filled with `fill`, outlined with `border`, and `label` written on or by it."""

    fill: str
    border: str
    label: str
    dashed: bool = False  # a task that never ran has no result to show: its outline is dashed
    strong: bool = False  # a task running now has a thicker outline


# Every value of TaskStatus (a task outside any run), TaskState (a task in a run) and RunState (a run). A value
# several enums share (`failed`, `succeeded`, `running`, ...) means the same outcome in each and looks the same.
STYLES: dict[str, Style] = {
    "never_run": Style("#ffffff", "#94a3b8", "never run", dashed=True),
    "up_to_date": Style("#dcfce7", "#4ade80", "up to date"),
    "stale": Style("#fef3c7", "#d97706", "stale"),
    "pending": Style("#f1f5f9", "#64748b", "pending"),
    "waiting": Style("#fef9c3", "#a16207", "waiting for another run", dashed=True),
    "running": Style("#bfdbfe", "#1d4ed8", "running", strong=True),
    "succeeded": Style("#86efac", "#15803d", "succeeded"),
    "failed": Style("#fca5a5", "#b91c1c", "failed"),
    "upstream_failed": Style("#fed7aa", "#c2410c", "upstream failed"),
    "skipped": Style("#ccfbf1", "#0d9488", "skipped (up to date)"),
    "cancelled": Style("#d4d4d8", "#52525b", "cancelled"),
    "interrupted": Style("#e9d5ff", "#7e22ce", "interrupted"),
}
# Where a run's words differ from a task's: a skipped run is a schedule's firing that found its last run going on.
RUN_LABELS: dict[str, str] = {"skipped": "skipped (last run still going)"}
UNKNOWN = Style("#f8fafc", "#94a3b8", "")  # a task with no state to show (not in the run shown)

TEXT_COLOR, LABEL_COLOR, EDGE_COLOR = "#0f172a", "#475569", "#94a3b8"
FONT = "Helvetica, Arial, sans-serif"

# The order of the legend: a task's status first, then the states within a run.
TASK_STATES = tuple(dict.fromkeys([*TaskStatus, *TaskState]))


def style(state: str | None) -> Style:
    return STYLES.get(str(state), UNKNOWN) if state else UNKNOWN


def label(state: str | None) -> str:
    """The words for a task's state or status."""
    if state and str(state) in STYLES:
        return STYLES[str(state)].label
    return str(state or "").replace("_", " ")


def run_label(state: str | None) -> str:
    """The words for a run's state."""
    return RUN_LABELS.get(str(state), label(state))


def legend_html(states: Iterable[str] = TASK_STATES) -> str:
    """The colour key as a row of swatches (HTML), for the panel and any page showing a drawing."""
    items = []
    for state in states:
        shown = STYLES[str(state)]
        items.append(
            f'<span style="display:inline-flex;align-items:center;margin:0 12px 4px 0;white-space:nowrap">'
            f'<span style="display:inline-block;width:14px;height:14px;border-radius:4px;background:{shown.fill};'
            f'border:1.5px {"dashed" if shown.dashed else "solid"} {shown.border};margin-right:5px">'
            f"</span>{html.escape(shown.label)}</span>"
        )
    return (
        f'<div style="font-family:{FONT};font-size:12px;color:{LABEL_COLOR};display:flex;flex-wrap:wrap">'
        + "".join(items)
        + "</div>"
    )


# -- the TypeScript module of the JupyterLab extension ------------------------------------------------------------


_WIDTH = 120  # the extension's prettier printWidth: the module is written as prettier would format it


def _ts_block(opening: str, items: Sequence[str], closing: str) -> list[str]:
    """`opening item, item closing` on one line when it fits, else one item a line (no trailing comma)."""
    line = f"{opening}{', '.join(items)}{closing}"
    if len(line) <= _WIDTH:
        return [line]
    return [opening.rstrip(" "), *(f"  {item}," for item in items[:-1]), f"  {items[-1]}", closing.lstrip(" ")]


def _ts_string(value: str) -> str:
    """A TypeScript string literal in the extension's style: single quotes unless the text holds one."""
    return f"'{value}'" if "'" not in value and "\\" not in value else json.dumps(value)


def _ts_enum(name: str, kind: str, enum: type[Enum]) -> list[str]:
    """A tuple of the enum's values and the type of one of them."""
    values = [_ts_string(str(member.value)) for member in enum]
    return [
        *_ts_block(f"export const {name} = [", values, "] as const;"),
        f"export type {kind} = (typeof {name})[number];",
    ]


def _ts_style(shown: Style) -> str:
    return (
        f"{{ fill: '{shown.fill}', border: '{shown.border}', label: {_ts_string(shown.label)}, "
        f"dashed: {str(shown.dashed).lower()}, strong: {str(shown.strong).lower()} }}"
    )


def typescript() -> str:
    """The palette and the state lists as a TypeScript module (labextension/src/palette.generated.ts)."""
    out = [
        "// Generated by `python -m nbflow.palette --typescript` from nbflow/palette.py and the enums of",
        "// nbflow/models.py: edit those and generate this again, never this file.",
        "",
        "export interface IStateStyle {",
        "  readonly fill: string;",
        "  readonly border: string;",
        "  readonly label: string;",
        "  readonly dashed: boolean;",
        "  readonly strong: boolean;",
        "}",
        "",
        *_ts_enum("TASK_STATES", "TaskState", TaskState),
        *_ts_enum("RUN_STATES", "RunState", RunState),
        *_ts_enum("TASK_STATUSES", "TaskStatus", TaskStatus),
        "",
        "/** Task states that will not change again within their run. */",
        *_ts_block(
            "export const FINISHED_TASK_STATES: readonly TaskState[] = [",
            [_ts_string(s.value) for s in TaskState if s.finished],
            "];",
        ),
        "/** Run states of a run that has ended. */",
        *_ts_block(
            "export const FINISHED_RUN_STATES: readonly RunState[] = [",
            [_ts_string(s.value) for s in RunState if s.finished],
            "];",
        ),
        "",
        *_ts_block(
            "export const STYLES: { readonly [state: string]: IStateStyle } = { ",
            [f"{state}: {_ts_style(shown)}" for state, shown in STYLES.items()],
            " };",
        ),
        "",
        "/** Where a run's words differ from a task's. */",
        *_ts_block(
            "export const RUN_LABELS: { readonly [state: string]: string } = { ",
            [f"{state}: {_ts_string(text)}" for state, text in RUN_LABELS.items()],
            " };",
        ),
        "",
        "/** A task with no state to show. */",
        f"export const UNKNOWN: IStateStyle = {_ts_style(UNKNOWN)};",
        "",
        f"export const TEXT_COLOR = '{TEXT_COLOR}';",
        f"export const LABEL_COLOR = '{LABEL_COLOR}';",
        f"export const EDGE_COLOR = '{EDGE_COLOR}';",
    ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbflow.palette", description=__doc__.splitlines()[0])
    parser.add_argument("--typescript", action="store_true", help="print the TypeScript module of the extension")
    args = parser.parse_args(argv)
    if args.typescript:
        sys.stdout.write(typescript())
    else:
        for state, shown in STYLES.items():
            print(f"{state:<16} fill {shown.fill}  border {shown.border}  {shown.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
