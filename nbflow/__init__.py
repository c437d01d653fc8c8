"""nbflow: a folder of Jupyter notebooks as a pipeline.

The public API is `load`, `panel`, `Pipeline` and `Run`. Imports are lazy so that the CLI starts
fast: nothing heavy (networkx, papermill) is imported until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbflow.version import __version__

__all__ = ["load", "panel", "Pipeline", "Run", "PipelineError", "__version__"]

if TYPE_CHECKING:
    from nbflow.api import Pipeline, load
    from nbflow.errors import PipelineError
    from nbflow.models import Run
    from nbflow.widgets.panel import panel

_LAZY = {
    "load": ("nbflow.api", "load"),
    "Pipeline": ("nbflow.api", "Pipeline"),
    "PipelineError": ("nbflow.errors", "PipelineError"),
    "Run": ("nbflow.models", "Run"),
    "panel": ("nbflow.widgets.panel", "panel"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'nbflow' has no attribute {name!r}")
