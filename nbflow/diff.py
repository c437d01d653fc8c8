"""What changed for each task instance from one run to another: `nbflow diff`, `GET runs/A/diff/B` and the lab's
comparison of a task's run with its previous one.

Instances are paired by name. Parameters, code and input hashes come from the fingerprint each run judged an
instance with (the store keeps it per run); cells and outputs from the two executed notebooks, paired and diffed
by nbdime (`nbdime.diff_notebooks`), the injected parameters cell left out (its values are the parameters) and
markdown too (it is not code, and has no outputs). Only a run that executed an instance has its notebook: an
instance up to date (skipped) in a run is said to be, not compared. What is shown is bounded (instances, cells,
lines, outputs, text) and the project's secrets are masked in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbflow import history
from nbflow.errors import UsageError
from nbflow.grids import parse_selector
from nbflow.masking import mask
from nbflow.models import TaskRun, TaskState
from nbflow.shapes import CellDiff, Change, InputChange, OutputChange, ParamChange, RunDiff, TaskDiff
from nbflow.store import Store

MAX_TASKS = 200  # instances listed; the rest are not compared (narrow with -t)
MAX_CELLS = 50  # cells listed per instance
MAX_LINES = 80  # source lines kept per side of a cell
MAX_OUTPUTS = 20  # output changes per cell
MAX_TEXT = 2_000  # characters of one text

INJECTED = "injected-parameters"
HIDDEN_TAGS = {INJECTED, "papermill-error-cell-tag"}  # papermill's cells: not the user's code
TEXT_MIME = ("text/plain", "text/markdown", "text/latex", "application/json")


class RunNotFound(UsageError):
    """A run ref that names no run of the project."""


class NothingToCompare(UsageError):
    """Neither run has the task asked about, or no earlier run executed the instance."""


def resolve(store: Store, ref: str) -> str:
    """A run id from a run ref (an id, a unique prefix of one, `latest`, `previous`), or RunNotFound."""
    found = history.find_run(store, ref)
    if found is None:
        raise RunNotFound(
            f"no run {ref!r} in this project (or the prefix is ambiguous); `nbflow runs` lists the run ids, and "
            "`latest` and `previous` name the newest run and the one before it."
        )
    return found


def previous_run(store: Store, run_id: str, instance: str) -> str:
    """The run before `run_id` that executed `instance`: what the lab compares a task's run with."""
    found = store.previous_execution(run_id, instance)
    if found is None:
        raise NothingToCompare(f"no run before {run_id} executed {instance!r}: there is nothing to compare it with.")
    return found


def diff_runs(
    store: Store, ref_a: str, ref_b: str, selector: str | None = None, secrets: Sequence[str] = ()
) -> RunDiff:
    """What changed from run `ref_a` to run `ref_b`, for the instances `selector` names (a task or instances, as
    `run -t` takes them; all without one); `secrets` are values to mask."""
    run_a, run_b = resolve(store, ref_a), resolve(store, ref_b)
    chosen = parse_selector(selector) if selector else None
    tasks_a, tasks_b = (
        {t.name: t for t in store.task_runs(run) if chosen is None or chosen.matches(t.task, t.grid)}
        for run in (run_a, run_b)
    )
    if chosen is not None and not tasks_a and not tasks_b:
        raise NothingToCompare(
            f"neither run {run_a} nor run {run_b} has a task or instance {selector!r}; `nbflow show RUN` lists "
            "a run's instances."
        )
    prints_a, prints_b = store.fingerprints(run_a), store.fingerprints(run_b)
    names = [*tasks_b, *(n for n in tasks_a if n not in tasks_b)]
    listed: list[TaskDiff] = []
    unchanged = 0
    for position, name in enumerate(names):
        if len(listed) == MAX_TASKS:
            return _run_diff(store, run_a, run_b, selector, listed, unchanged, len(names) - position)
        found = _task_diff(
            store.root,
            _Side(run_a, tasks_a.get(name), prints_a.get(name)),
            _Side(run_b, tasks_b.get(name), prints_b.get(name)),
            list(secrets),
        )
        if found is None:
            unchanged += 1
        else:
            listed.append(found)
    return _run_diff(store, run_a, run_b, selector, listed, unchanged, 0)


def _run_diff(
    store: Store, run_a: str, run_b: str, selector: str | None, tasks: list[TaskDiff], unchanged: int, more: int
) -> RunDiff:
    rows = [store.run(run_a), store.run(run_b)]
    assert rows[0] is not None and rows[1] is not None  # resolved from the store just now
    return RunDiff(
        a=history.summary(rows[0]),
        b=history.summary(rows[1]),
        selector=selector,
        tasks=tasks,
        tasks_more=more,
        unchanged=unchanged,
    )


@dataclass
class _Side:
    """One run's side of an instance: the run, the instance there (None: not in it), its fingerprint."""

    run_id: str
    task: TaskRun | None
    fingerprint: dict[str, Any] | None

    @property
    def executed(self) -> bool:
        return self.task is not None and self.task.output_notebook is not None


def _task_diff(root: Path, a: _Side, b: _Side, secrets: list[str]) -> TaskDiff | None:
    """The instance's differences from `a` to `b`; None when there are none worth a look."""
    some = b.task or a.task
    assert some is not None
    change = Change.ADDED if a.task is None else Change.REMOVED if b.task is None else Change.CHANGED
    notes: list[str] = []
    params: list[ParamChange] = []
    inputs: list[InputChange] = []
    code_changed = False
    if change is Change.CHANGED:
        if a.fingerprint is None or b.fingerprint is None:
            missing = a.run_id if a.fingerprint is None else b.run_id
            notes.append(
                f"run {missing} kept no fingerprint of it (not judged, or run before nbflow kept them): parameters "
                "and input files not compared"
            )
        else:
            params = [
                ParamChange(name=name, change=how, before=mask(before, secrets), after=mask(after, secrets))
                for name, how, before, after in _changed(
                    a.fingerprint.get("params", {}), b.fingerprint.get("params", {})
                )
            ]
            inputs = [
                InputChange(path=path, change=how, before=before, after=after)
                for path, how, before, after in _changed(
                    a.fingerprint.get("inputs", {}), b.fingerprint.get("inputs", {})
                )
            ]
            code_changed = a.fingerprint.get("code") != b.fingerprint.get("code")
    cells: list[CellDiff] = []
    if a.executed and b.executed:
        notebooks = [_read(root, side, notes) for side in (a, b)]
        if notebooks[0] is not None and notebooks[1] is not None:
            cells = list(_cell_diffs(notebooks[0], notebooks[1], secrets))
    else:
        for label, side in (("A", a), ("B", b)):
            if side.task is not None and not side.executed:
                notes.append(_not_executed(side.task.state, label, side.run_id))
    states = a.task.state if a.task else None, b.task.state if b.task else None
    state_changed = states[0] != states[1] and not all(s is not None and s.ok for s in states)
    unread = any(n.startswith("the executed notebook") for n in notes)
    if change is Change.CHANGED and not (params or inputs or code_changed or cells or state_changed or unread):
        return None
    return TaskDiff(
        name=some.name,
        task=some.task,
        grid=some.grid,
        change=change,
        state_a=states[0],
        state_b=states[1],
        params=params,
        code_changed=code_changed,
        inputs=inputs,
        cells=cells[:MAX_CELLS],
        cells_more=max(0, len(cells) - MAX_CELLS),
        notes=notes,
    )


def _not_executed(state: TaskState, label: str, run_id: str) -> str:
    if state is TaskState.SKIPPED:
        return f"skipped (up to date) in {label} (run {run_id}): no executed notebook of its own to compare"
    return f"{state.value.replace('_', ' ')} in {label} (run {run_id}): never executed there, no notebook to compare"


def _changed(before: dict[str, Any], after: dict[str, Any]) -> Iterator[tuple[str, Change, Any, Any]]:
    """The keys whose values differ, sorted: each with how, and its value on each side (None where absent)."""
    for key in sorted(set(before) | set(after)):
        if key not in before:
            yield key, Change.ADDED, None, after[key]
        elif key not in after:
            yield key, Change.REMOVED, before[key], None
        elif before[key] != after[key]:
            yield key, Change.CHANGED, before[key], after[key]


def _read(root: Path, side: _Side, notes: list[str]) -> Any:
    """The side's executed notebook without papermill's own cells, or None (and a note) when it cannot be read."""
    import nbformat

    assert side.task is not None and side.task.output_notebook is not None
    path = side.task.output_notebook
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        notes.append(f"the executed notebook of run {side.run_id} ({shown}) cannot be read: {exc}")
        return None
    notebook.cells = [c for c in notebook.cells if not HIDDEN_TAGS & set(c.get("metadata", {}).get("tags", []))]
    return notebook


def _cell_diffs(before: Any, after: Any, secrets: list[str]) -> Iterator[CellDiff]:
    """The code cells that differ in source or outputs, as nbdime pairs them."""
    import nbdime

    top = {entry["key"]: entry["diff"] for entry in nbdime.diff_notebooks(before, after) if entry["op"] == "patch"}
    offset = 0  # nbdime's keys count A's cells: a cell of A at i is at i + offset in B
    for entry in top.get("cells", []):
        key = entry["key"]
        if entry["op"] == "addrange":
            for i, cell in enumerate(entry["valuelist"]):
                yield from _whole_cell(Change.ADDED, None, key + offset + i, cell, secrets)
            offset += len(entry["valuelist"])
        elif entry["op"] == "removerange":
            for i in range(entry["length"]):
                yield from _whole_cell(Change.REMOVED, key + i, None, before.cells[key + i], secrets)
            offset -= entry["length"]
        elif entry["op"] == "patch":
            found = _patched_cell(
                key, key + offset, before.cells[key], after.cells[key + offset], entry["diff"], secrets
            )
            if found is not None:
                yield found


def _whole_cell(
    change: Change, index_a: int | None, index_b: int | None, cell: Any, secrets: list[str]
) -> Iterator[CellDiff]:
    if cell.get("cell_type") != "code":
        return
    lines = _lines(cell, secrets)
    outputs = cell.get("outputs", [])
    outputs = (
        _output_changes(outputs, [], secrets) if change is Change.REMOVED else _output_changes([], outputs, secrets)
    )
    shown = lines[:MAX_LINES]
    yield CellDiff(
        cell_a=index_a,
        cell_b=index_b,
        change=change,
        cell_type="code",
        first_line=_first_line(lines),
        source_changed=True,
        before=shown if change is Change.REMOVED else [],
        after=shown if change is Change.ADDED else [],
        removed=list(range(len(shown))) if change is Change.REMOVED else [],
        added=list(range(len(shown))) if change is Change.ADDED else [],
        lines_more=len(lines) - len(shown),
        outputs=outputs[:MAX_OUTPUTS],
    )


def _patched_cell(
    index_a: int, index_b: int, old: Any, new: Any, diff: list[Any], secrets: list[str]
) -> CellDiff | None:
    if new.get("cell_type") != "code" or old.get("cell_type") != "code":
        return None
    parts = {entry["key"]: entry for entry in diff}
    removed: set[int] = set()
    added: set[int] = set()
    if "source" in parts and parts["source"]["op"] == "patch":
        removed, added = _line_changes(parts["source"]["diff"])
    elif "source" in parts:  # replaced whole
        removed, added = set(range(len(_lines(old, secrets)))), set(range(len(_lines(new, secrets))))
    outputs = _output_changes(old.get("outputs", []), new.get("outputs", []), secrets) if "outputs" in parts else []
    if not (removed or added or outputs):  # only ids, metadata or execution counts differ
        return None
    before, after = _lines(old, secrets), _lines(new, secrets)
    return CellDiff(
        cell_a=index_a,
        cell_b=index_b,
        change=Change.CHANGED,
        cell_type="code",
        first_line=_first_line(after),
        source_changed=bool(removed or added),
        before=before[:MAX_LINES],
        after=after[:MAX_LINES],
        removed=sorted(i for i in removed if i < MAX_LINES),
        added=sorted(i for i in added if i < MAX_LINES),
        lines_more=max(len(before), len(after)) - min(MAX_LINES, max(len(before), len(after))),
        outputs=outputs[:MAX_OUTPUTS],
    )


def _line_changes(diff: list[Any]) -> tuple[set[int], set[int]]:
    """The lines of A that nbdime's source diff removes or modifies, and the lines of B it adds or modifies."""
    removed: set[int] = set()
    added: set[int] = set()
    offset = 0
    for entry in diff:
        key = entry["key"]
        if entry["op"] == "addrange":
            added.update(range(key + offset, key + offset + len(entry["valuelist"])))
            offset += len(entry["valuelist"])
        elif entry["op"] == "removerange":
            removed.update(range(key, key + entry["length"]))
            offset -= entry["length"]
        elif entry["op"] == "patch":  # a line edited in place
            removed.add(key)
            added.add(key + offset)
    return removed, added


def _lines(cell: Any, secrets: list[str]) -> list[str]:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    return [_clip(line, secrets) for line in text.splitlines()]


def _first_line(lines: list[str]) -> str:
    return next((line.strip() for line in lines if line.strip()), "")[:80]


def _output_changes(old: list[Any], new: list[Any], secrets: list[str]) -> list[OutputChange]:
    """The outputs that differ, paired by kind and order (the 2nd image of A with the 2nd image of B)."""
    before, after = _output_parts(old), _output_parts(new)
    changes: list[OutputChange] = []
    for key in [*after, *(k for k in before if k not in after)]:
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        kind = key[0]
        change = Change.ADDED if was is None else Change.REMOVED if now is None else Change.CHANGED
        if kind in ("stdout", "stderr", "error") or kind in TEXT_MIME:
            changes.append(
                OutputChange(
                    kind=kind,
                    change=change,
                    before=_clip(was, secrets) if was is not None else None,
                    after=_clip(now, secrets) if now is not None else None,
                )
            )
        else:
            label = "image" if kind.startswith("image/") else "html" if kind == "text/html" else kind
            changes.append(OutputChange(kind=kind, change=change, note=f"{label} {change.value}"))
    return changes


def _output_parts(outputs: list[Any]) -> dict[tuple[str, int], str]:
    """A cell's outputs as (kind, n-th of that kind) -> content: the streams each joined, an error as its name
    and value, each MIME type of a result or display as its text (binary payloads as they are)."""
    parts: dict[tuple[str, int], str] = {}
    for output in outputs:
        if output.get("output_type") == "stream":
            key = (output.get("name", "stdout"), 0)
            parts[key] = parts.get(key, "") + _text(output.get("text", ""))
    counts: dict[str, int] = {}
    for output in outputs:
        kind = output.get("output_type")
        content: dict[str, Any] = {}
        if kind == "error":
            content = {"error": f"{output.get('ename', '')}: {output.get('evalue', '')}"}
        elif kind in ("execute_result", "display_data"):
            content = output.get("data", {})
        for mime, value in content.items():
            text = _text(value) if isinstance(value, (str, list)) else json.dumps(value, sort_keys=True)
            parts[(mime, counts.get(mime, 0))] = text
            counts[mime] = counts.get(mime, 0) + 1
    return parts


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clip(text: str, secrets: list[str]) -> str:
    shown: str = mask(text, secrets)
    if len(shown) <= MAX_TEXT:
        return shown
    return shown[:MAX_TEXT] + f"… ({len(shown) - MAX_TEXT} more characters)"
