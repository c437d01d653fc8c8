"""Benchmark pipelines, generated with nbformat: chains, fan-outs, grids, large graphs for resolution; and a copy of
the example pipeline."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import nbformat


def write_task(path: Path, parameters: str, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}"),
        cell,
        *(nbformat.v4.new_code_cell(src) for src in code),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def chain(folder: Path, length: int, work: str = "x = 1") -> Path:
    """t00 -> t01 -> ...: each reads the previous one's file and writes its own."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbflow.toml").write_text("")
    for i in range(length):
        inputs = f'inputs = ["data/t{i - 1:02d}.txt"]\n' if i else ""
        write_task(
            folder / f"t{i:02d}.ipynb",
            f'{inputs}outputs = ["data/t{i:02d}.txt"]',
            work,
            f"open(outputs[0], 'w').write('{i}')",
        )
    return folder


def fan_out(folder: Path, width: int, work: str = "x = 1") -> Path:
    """`width` independent tasks."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbflow.toml").write_text("")
    for i in range(width):
        write_task(
            folder / f"f{i:02d}.ipynb", f'outputs = ["data/f{i:02d}.txt"]', work, f"open(outputs[0], 'w').write('{i}')"
        )
    return folder


def grid(folder: Path, size: int, work: str = "x = 1") -> Path:
    """One notebook with a `size`-value grid over `i`: `size` instances, each writing `data/g-{i}.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbflow.toml").write_text("")
    values = list(range(size))
    write_task(
        folder / "g.ipynb",
        f'outputs = ["data/g-{{i}}.txt"]\ni = 0\ngrid = {{"i": {values!r}}}',
        work,
        "open(outputs[0], 'w').write(str(i))",
    )
    return folder


def example(folder: Path, source: Path) -> Path:
    """A copy of the example pipeline (notebooks/), without anything a run wrote."""
    generated = shutil.ignore_patterns("data", "reports", ".nbflow", ".ipynb_checkpoints")
    shutil.copytree(source, folder, ignore=generated)
    return folder


def large(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` notebooks in folders of 50, each reading up to three files written by earlier ones."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbflow.toml").write_text('[params]\nday = "2026-11-24"\n')
    for i in range(count):
        reads = sorted({rng.randrange(i) for _ in range(min(i, 3))}) if i else []
        inputs = ", ".join(f'"../g{j // 50:03d}/out/{{day}}/n{j:05d}.csv"' for j in reads)
        write_task(
            folder / f"g{i // 50:03d}" / f"n{i:05d}.ipynb",
            f'inputs = [{inputs}]\noutputs = ["out/{{day}}/n{i:05d}.csv"]\nday = "x"\nrows = {i}',
            "import pandas as pd",
            "df = pd.DataFrame({'a': range(rows)})",
            "df.to_csv(outputs[0])",
        )
    return folder


def ploomber_chain(folder: Path, length: int, work: str = "x = 1", executor: str = "serial") -> Path:
    """The same chain as `chain`, as a ploomber project: `pipeline.yaml` and notebooks with `upstream`/`product`."""
    return _ploomber_project(
        folder, [(f"t{i:02d}", [f"t{i - 1:02d}"] if i else []) for i in range(length)], work, executor
    )


def ploomber_fan_out(folder: Path, width: int, work: str = "x = 1", executor: str = "serial") -> Path:
    """The same tasks as `fan_out`, as a ploomber project."""
    return _ploomber_project(folder, [(f"f{i:02d}", []) for i in range(width)], work, executor)


def ploomber_grid(folder: Path, size: int, work: str = "x = 1", executor: str = "serial") -> Path:
    """The same grid as `grid`, as a ploomber project in its documented form: one task with a `grid`, whose instances
    ploomber names `g-0`, `g-1`, ... and whose products it numbers alike (`data/g-0.txt`, `output/g-0.ipynb`)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_task(
        folder / "g.ipynb",
        "upstream = None\nproduct = None\ni = None",
        work,
        "open(product['data'], 'w').write(str(i))",
    )
    lines = [f"executor: {executor}", "tasks:", "  - source: g.ipynb", "    name: g-", "    product:"]
    lines += ["      nb: output/g.ipynb", "      data: data/g.txt", "    grid:", f"      i: {list(range(size))!r}"]
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return folder


def _ploomber_project(folder: Path, tasks: list[tuple[str, list[str]]], work: str, executor: str) -> Path:
    """Each task writes `data/NAME.txt`; its executed notebook goes to `output/NAME.ipynb` (ploomber's `nb` product).

    `executor` is ploomber's `serial` (its default) or `parallel` (one process per task, up to the CPU count).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"executor: {executor}", "tasks:"]
    for i, (name, upstream) in enumerate(tasks):
        write_task(
            folder / f"{name}.ipynb",
            f"upstream = {upstream or None!r}\nproduct = None",
            work,
            f"open(product['data'], 'w').write('{i}')",
        )
        lines += [
            f"  - source: {name}.ipynb",
            "    product:",
            f"      nb: output/{name}.ipynb",
            f"      data: data/{name}.txt",
        ]
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return folder


def ploomber_example(folder: Path, source: Path, executor: str = "parallel") -> Path:
    """The example pipeline as a ploomber project: the same notebooks, each instance a task of `pipeline.yaml`
    (the grid's five as five tasks of one notebook) given as `params` what nbflow would inject, with
    `local_execution` (run in the notebook's folder, as nbflow does), its files as products and its report as
    the `nb` product, which ploomber converts to HTML. Each notebook's parameters cell gains the `upstream` and
    `product` ploomber reads. A glob input is the list of the instances' outputs it matches (ploomber has no globs).
    `executor`: ploomber's `parallel` (a process per task, up to the CPU count, as nbflow's -j) or `serial`."""
    import fnmatch
    import os

    import yaml

    import nbflow
    from nbflow.declare import paths_of
    from nbflow.run.prepare import injected_parameters, prepare

    example(folder, source)
    prepared = prepare(nbflow.load(folder), None, None)
    pipeline = prepared.pipeline
    names = {name: re.sub(r"\W+", "_", name).strip("_") for name in prepared.selected}
    written = [path for name in prepared.selected for path in paths_of(pipeline.tasks[name].outputs)]
    upstream: dict[str, set[str]] = {}
    tasks = []
    for name in prepared.selected:
        task = pipeline.tasks[name]
        here = Path(task.spec.notebook).parent
        params = injected_parameters(pipeline, task, prepared.task_params.get(task.base, {}))
        if isinstance(task.inputs, dict):  # a glob: the outputs it matches, relative to the notebook as nbflow's
            for key, path in task.inputs.items():
                if any(ch in path for ch in "*?["):
                    matches = sorted(p for p in written if fnmatch.fnmatch(p, path))
                    params["inputs"][key] = [os.path.relpath(p, here) for p in matches]
        products = {"nb": os.path.relpath(task.report, folder) if task.report else f"output/{names[name]}.ipynb"}
        for i, path in enumerate(paths_of(task.outputs)):
            products[f"out{i}"] = os.path.relpath(path, folder)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        params.pop("report", None)
        upstream.setdefault(task.spec.notebook, set()).update(names[u] for u in pipeline.graph.predecessors(name))
        spec = {"source": os.path.relpath(task.spec.notebook, folder), "name": names[name], "product": products}
        tasks.append({**spec, "params": params, "local_execution": True})
    for notebook, needed in upstream.items():
        nb = nbformat.read(notebook, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += f"\nupstream = {sorted(needed) or None!r}\nproduct = None\n"
        nbformat.write(nb, notebook)
    (folder / "nbflow.toml").unlink()
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({"executor": executor, "tasks": tasks}, sort_keys=False))
    return folder
