"""Jupyter widgets for nbflow: `nbflow.panel(path)` (SPEC section 6)."""

from nbflow.widgets.panel import Panel, panel

__all__ = ["Panel", "panel"]
