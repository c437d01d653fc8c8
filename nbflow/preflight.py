"""What must hold before anything runs, beyond the graph itself: every source input is there, every kernel the
tasks name is installed, and a browser prints the PDF reports. `nbflow graph`, `nbflow status` and every run report
all of it at once, with suggestions, so no task fails at its start after others have run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterable

from nbflow import paths
from nbflow.errors import PipelineError, Problem
from nbflow.graph import Pipeline, did_you_mean

NATIVE_KERNEL = "python3"


def problems(pipeline: Pipeline, selected: Iterable[str] | None = None) -> list[Problem]:
    """The missing sources and unknown kernels of the selected tasks (default: all)."""
    names = list(selected) if selected is not None else list(pipeline.tasks)
    return [
        *missing_sources(pipeline, names),
        *special_files(pipeline, names),
        *unknown_kernels(pipeline, names),
        *missing_browser(pipeline, names),
    ]


def check(pipeline: Pipeline, selected: Iterable[str] | None = None) -> None:
    found = problems(pipeline, selected)
    if found:
        raise PipelineError(found)


def missing_sources(pipeline: Pipeline, selected: list[str]) -> list[Problem]:
    """Inputs that do not exist (a glob: match nothing) and that no selected task upstream writes (a run with
    `--no-upstream` leaves the writers out: what they wrote must be there already)."""
    found = []
    chosen = set(selected)
    for name in selected:
        task = pipeline.tasks[name]
        writers: dict[str, list[str]] = {}
        for pred in pipeline.graph.predecessors(name):
            for via in pipeline.graph.edges[pred, name]["via"]:
                writers.setdefault(via, []).append(pred)
        for path in task.input_paths:
            glob = paths.is_glob(path)
            if any(w in chosen for w in writers.get(path, ())) or (
                paths.expand(path) if glob else os.path.exists(path)
            ):
                continue
            shown = pipeline.project.relative(path)
            what = "matches no file" if glob else "does not exist"
            hint = "" if glob else _near(path)
            left_out = writers.get(path)
            why = (
                f"; {', '.join(left_out)} {'writes' if len(left_out) == 1 else 'write'} it but this run leaves "
                f"{'it' if len(left_out) == 1 else 'them'} out (--no-upstream): run {left_out[0]} first, or run "
                "without --no-upstream."
                if left_out
                else " and no task writes it; create it, fix the path, or add the task that writes it."
            )
            found.append(Problem("missing-source", f"{task.notebook}: input {shown} {what}{hint}{why}"))
    return found


def special_files(pipeline: Pipeline, selected: list[str]) -> list[Problem]:
    """Inputs and outputs that exist but are neither a regular file nor a folder (a device, a FIFO, a socket, or a
    symlink to one): nbflow could never read one to its end, so it does not start."""
    found = []
    for name in selected:
        task = pipeline.tasks[name]
        for what, declared in (("input", task.input_paths), ("output", task.output_paths)):
            for path in declared:
                kind = paths.not_a_file(path)
                if kind is None:
                    continue
                shown = pipeline.project.relative(path)
                why = (
                    f"is a folder, declared without the trailing slash that marks one; write {shown}/"
                    if kind == "folder"
                    else f"is a {kind}, not a regular file; nbflow reads and hashes only files and folders, so point "
                    "it at a file"
                )
                found.append(Problem("special-file", f"{task.notebook}: {what} {shown} {why}."))
    return found


def _near(path: str) -> str:
    """` (did you mean 'x'?)` for a file of a close name in the same folder."""
    folder, name = os.path.split(path.rstrip("/"))
    try:
        siblings = os.listdir(folder)
    except OSError:
        return ""
    return did_you_mean(name, siblings)


def unknown_kernels(pipeline: Pipeline, selected: list[str]) -> list[Problem]:
    """Tasks whose kernelspec is not installed where this process would start it."""
    wanted = {pipeline.tasks[name].spec.kernel for name in selected}
    if wanted <= {NATIVE_KERNEL} and importlib.util.find_spec("ipykernel") is not None:
        # jupyter_client always offers the kernel of the Python it runs in, as `python3`, where ipykernel is
        # installed: the usual case is known without importing jupyter_client (a large part of a no-op run's time)
        return []
    from jupyter_client.kernelspec import KernelSpecManager

    installed = sorted(KernelSpecManager().find_kernel_specs())
    found = []
    for name in selected:
        task = pipeline.tasks[name]
        kernel = task.spec.kernel
        if kernel in installed:
            continue
        suggestion = did_you_mean(kernel, installed)
        found.append(
            Problem(
                "unknown-kernel",
                f"{task.notebook}: no kernel named {kernel!r} is installed{suggestion} (installed: "
                f"{', '.join(installed) or 'none'}); set metadata.nbflow.kernel in the notebook (or `kernel` in "
                f"nbflow.toml for notebooks that name none), or install it (python -m ipykernel install --user "
                f"--name {kernel}).",
            )
        )
    return found


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """The Chromium that prints PDF reports: `NBFLOW_CHROMIUM`, else the first of its usual names on PATH."""
    given = os.environ.get("NBFLOW_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def missing_browser(pipeline: Pipeline, selected: list[str]) -> list[Problem]:
    """Tasks with a PDF report where no Chromium is found to print it."""
    printing = [name for name in selected if (pipeline.tasks[name].report or "").lower().endswith(".pdf")]
    if not printing or chromium():
        return []
    given = os.environ.get("NBFLOW_CHROMIUM")
    where = f"NBFLOW_CHROMIUM={given} is not an executable file" if given else "no Chromium is on PATH"
    notebooks = sorted({pipeline.tasks[name].notebook for name in printing})
    return [
        Problem(
            "no-browser",
            f"{', '.join(notebooks)}: `report` names a PDF, which nbflow prints with Chromium, but {where}; install "
            "it (Debian: apt-get install chromium), set NBFLOW_CHROMIUM to its path, or name an .html report.",
        )
    ]
