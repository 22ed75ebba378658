"""The IPython layer: ``%load_ext nbsched``, the ``%schedule`` magics, configuration and
routing of job output away from cells.

Nothing below this package imports IPython, traitlets or ipywidgets.
"""

from __future__ import annotations

from .extension import current as current
from .extension import load as load
from .extension import loaded as loaded
from .extension import unload as unload

__all__ = ["current", "loaded", "load", "unload"]
