"""Jupyter widgets for nbflow: `nbflow.panel(path)`."""

from nbflow.widgets.panel import Panel, panel

__all__ = ["Panel", "panel"]
