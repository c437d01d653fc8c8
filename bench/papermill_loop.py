"""The example pipeline as a user would run it without an orchestrator: one `papermill` command per task instance,
in dependency order, each with the parameters nbflow would inject, then `jupyter nbconvert` for each report.

    python bench/papermill_loop.py FOLDER

The order, the parameters and the paths come from nbflow's own resolution (read once, before the loop), so both
tools run the same notebooks with the same values; a glob input is expanded just before its notebook runs, as
nbflow does. Executed notebooks go to FOLDER/.out/. Used by `bench.py --cases example`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

import nbflow
from nbflow.declare import paths_of
from nbflow.run.prepare import injected_parameters, prepare


def main(folder: Path) -> None:
    pipeline = nbflow.load(folder)
    prepared = prepare(pipeline, None, None)
    out = folder / ".out"  # hidden: nbflow, which resolves the folder for every run, leaves hidden folders out
    out.mkdir(exist_ok=True)
    for name in prepared.selected:
        task = prepared.pipeline.tasks[name]
        for path in paths_of(task.outputs) + ([task.report] if task.report else []):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        values = injected_parameters(prepared.pipeline, task, prepared.task_params.get(task.base, {}))
        # no `[`: nbconvert reads its argument as a glob
        executed = out / (re.sub(r"[^\w.-]", "_", name) + ".ipynb")
        notebook = folder / task.notebook
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as params:
            yaml.safe_dump(values, params)
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "papermill",
                    str(notebook),
                    str(executed),
                    "-f",
                    params.name,
                    "--cwd",
                    str(notebook.parent),
                    "--no-progress-bar",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.unlink(params.name)
        if task.report:
            report = Path(task.report)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--to",
                    "html",
                    "--no-input",
                    str(executed),
                    "--output",
                    report.stem,
                    "--output-dir",
                    str(report.parent),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
