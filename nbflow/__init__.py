"""nbflow: a folder of Jupyter notebooks as a pipeline.

The public API (SPEC section 5) is `load`, `panel`, `Pipeline` and `Run`. Imports are lazy so that the CLI starts
fast: nothing heavy (networkx, papermill) is imported until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load", "panel", "Pipeline", "Run", "PipelineError", "__version__"]

if TYPE_CHECKING:
    from nbflow.errors import PipelineError
    from nbflow.graph import Pipeline, load
    from nbflow.run.runner import Run
    from nbflow.widgets.panel import panel

_LAZY = {
    "load": ("nbflow.graph", "load"),
    "Pipeline": ("nbflow.graph", "Pipeline"),
    "PipelineError": ("nbflow.errors", "PipelineError"),
    "Run": ("nbflow.run.runner", "Run"),
    "panel": ("nbflow.widgets.panel", "panel"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'nbflow' has no attribute {name!r}")
