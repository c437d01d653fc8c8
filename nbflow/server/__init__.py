"""The Jupyter Server extension of nbflow: the REST API under `/nbflow/api/` that the JupyterLab panel uses.

Enabled on install by `jupyter-config/server-config/nbflow.json` (-> `etc/jupyter/jupyter_server_config.d/`).
"""

from __future__ import annotations

from typing import Any

from nbflow.version import __version__


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from nbflow.server.app import NbflowApp

    return [{"module": "nbflow.server", "app": NbflowApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "../labextension", "dest": "nbflow"}]


__all__ = ["__version__"]
