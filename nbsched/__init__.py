"""nbsched: schedule cells, functions and notebooks from inside a Jupyter kernel."""

from __future__ import annotations

from ._version import __version__ as __version__
