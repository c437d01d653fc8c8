"""The executor registry: executors are found by name in the `nbflow.executors` entry-point group.

nbflow's own, `local` (kernels on this machine) and `dask` (a dask.distributed cluster), are known here without
reading any package metadata, which would cost a noticeable part of the CLI's start-up; another package adds one
by naming an `Executor` subclass in that group (`[project.entry-points."nbflow.executors"]`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from nbflow.errors import UsageError
from nbflow.run.jobs import Executor, ExecutorOptions

GROUP = "nbflow.executors"
BUILT_IN = {"local": "nbflow.run.local:LocalExecutor", "dask": "nbflow.run.dask:DaskExecutor"}


def executor_names() -> list[str]:
    """Every executor that can be named: the built-in ones, then those other packages register."""
    return [*BUILT_IN, *sorted(ep.name for ep in entry_points(group=GROUP) if ep.name not in BUILT_IN)]


def executor_class(name: str) -> type[Executor]:
    if name in BUILT_IN:
        module, _, attribute = BUILT_IN[name].partition(":")
        found = getattr(import_module(module), attribute)
    else:
        registered = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not registered:
            raise UsageError(f"unknown executor {name!r} (known: {', '.join(executor_names())})")
        found = registered[0].load()
    if not (isinstance(found, type) and issubclass(found, Executor)):
        raise UsageError(f"the executor {name!r} registered in {GROUP} is not an nbflow Executor class")
    return found


def make_executor(name: str, options: ExecutorOptions) -> Executor:
    """The named executor, ready for one run."""
    return executor_class(name).from_options(options)
