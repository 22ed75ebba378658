"""nbsched's Jupyter server extension: a scheduler for notebook jobs inside the Jupyter
server, and the REST API the JupyterLab extension talks to (``/nbsched/api/...``).

Enabled as ``nbsched.server`` by the ``jupyter_server_config.d/nbsched.json`` the package
installs; see :mod:`nbsched.server.app`.
"""

from __future__ import annotations

from typing import Any

from .app import NbschedServer

__all__ = ["NbschedServer", "_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """How jupyter_server finds the extension app."""
    return [{"module": "nbsched.server", "app": NbschedServer}]
