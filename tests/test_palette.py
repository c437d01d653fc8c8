"""One palette for every interface: each state a task or run can be in has a look of its own, and the JupyterLab
extension's copy is the one `python -m nbflow.palette --typescript` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nbflow import palette
from nbflow.models import RunState, TaskState, TaskStatus

GENERATED = Path(__file__).resolve().parents[1] / "labextension" / "src" / "palette.generated.ts"


def test_every_state_of_a_task_or_run_has_a_look_and_words_of_its_own():
    values = {str(s.value) for enum in (TaskState, RunState, TaskStatus) for s in enum}
    assert values == set(palette.STYLES)
    looks = [(style.fill, style.border) for style in palette.STYLES.values()]
    assert len(set(looks)) == len(looks), "two states look alike"
    words = [style.label for style in palette.STYLES.values()]
    assert len(set(words)) == len(words) and all(words)
    # the states a user tells apart at a glance: a task just run, one up to date, one whose inputs changed
    assert len({palette.STYLES[s].fill for s in ("succeeded", "up_to_date", "skipped", "stale")}) == 4
    assert palette.run_label("skipped") != palette.label("skipped")


def test_the_extension_palette_is_the_generated_one():
    printed = subprocess.run(
        [sys.executable, "-m", "nbflow.palette", "--typescript"], capture_output=True, text=True, check=True
    ).stdout
    assert GENERATED.read_text(encoding="utf-8") == printed, (
        "labextension/src/palette.generated.ts is out of date: "
        "python -m nbflow.palette --typescript > labextension/src/palette.generated.ts"
    )
    for state, style in palette.STYLES.items():
        assert f"  {state}: {{ fill: '{style.fill}', border: '{style.border}'" in printed
    finished = [f"'{s.value}'" for s in TaskState if s.finished]
    assert "FINISHED_TASK_STATES" in printed and all(value in printed for value in finished)
